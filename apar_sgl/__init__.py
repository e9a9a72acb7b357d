"""apar-sgl: parallel decoding inside one answer, on SGLang.

`import apar_sgl as apar` stays light: SGLang and torch load only when an engine starts.
"""

from __future__ import annotations

from apar_sgl.engine import Engine
from apar_sgl.models import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "Engine"]

# The DSL (light: no SGLang or torch import until a program generates).
from apar_sgl.dsl import (  # noqa: E402
    BranchError,
    DslError,
    GenerationError,
    SchemaSplitError,
    assistant,
    assistant_begin,
    assistant_end,
    default_backend,
    fork,
    function,
    gen,
    gen_json,
    select,
    set_default_backend,
    system,
    user,
)

__all__ += [
    "BranchError",
    "DslError",
    "GenerationError",
    "SchemaSplitError",
    "assistant",
    "assistant_begin",
    "assistant_end",
    "default_backend",
    "fork",
    "function",
    "gen",
    "gen_json",
    "select",
    "set_default_backend",
    "system",
    "user",
]
