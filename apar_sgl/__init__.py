"""apar-sgl: parallel decoding inside one answer, on SGLang.

`import apar_sgl as apar` stays light: SGLang and torch load only when an engine starts or a
DSL program generates.
"""

from __future__ import annotations

from apar_sgl import dsl as _dsl
from apar_sgl.dsl import *  # noqa: F403  (the DSL is the package's top-level API)
from apar_sgl.engine import Engine
from apar_sgl.models import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "Engine", *_dsl.__all__]
