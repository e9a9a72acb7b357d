"""Python DSL for parallel decoding inside one answer.

``@function`` programs build a state with chat roles and ``gen``; ``fork`` blocks generate
branches together on the shared prefix; ``gen_json`` generates each leaf of a JSON schema in
its own constrained branch. Backends: the embedded Engine (default) or a server URL.
"""

from __future__ import annotations

from apar_sgl.dsl.backend import (
    Backend,
    BackendError,
    EngineBackend,
    HttpBackend,
    default_backend,
    set_default_backend,
)
from apar_sgl.dsl.json_gen import BranchError
from apar_sgl.dsl.ops import (
    DslError,
    assistant,
    assistant_begin,
    assistant_end,
    gen,
    gen_json,
    select,
    system,
    user,
)
from apar_sgl.dsl.program import Program, ProgramStream, function
from apar_sgl.dsl.run import GenerationError, StreamChunk
from apar_sgl.dsl.schema_split import SchemaSplitError
from apar_sgl.dsl.skeleton import SkeletonAnswer, skeleton
from apar_sgl.dsl.state import DeferredError, State, fork

# pyproject maps this folder into apar_sgl; loading it as `dsl` too would make two copies.
if __name__ != "apar_sgl.dsl":
    raise ImportError(f"import apar_sgl.dsl, not {__name__}")


__all__ = [
    "Backend",
    "BackendError",
    "BranchError",
    "DeferredError",
    "DslError",
    "EngineBackend",
    "GenerationError",
    "HttpBackend",
    "Program",
    "ProgramStream",
    "SchemaSplitError",
    "SkeletonAnswer",
    "State",
    "StreamChunk",
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
    "skeleton",
    "system",
    "user",
]
