"""Benchmark mode ``parallel-json``: one constrained request per object vs ``gen_json`` branches.

Serial is what plain SGLang offers: one request constrained by the model's whole schema.
Parallel generates every leaf in its own branch on the shared prefix, under its tightened
schema (``apar_sgl.dsl.leaf_bounds``). Per model and prompt (``apar_sgl.bench.json_models``):
validity, quality (no empty, placeholder or markup string, ``apar_sgl.dsl.json_quality``),
wall time, and decode steps on the critical path (serial: the request's completion tokens;
parallel: the longest branch of each stage, summed).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from apar_sgl.bench.json_models import CASES, Case
from apar_sgl.dsl.json_quality import flaws

logger = logging.getLogger(__name__)

SERIAL_MAX_TOKENS = 384  # one request for the whole object


class BenchRow(NamedTuple):
    schema: str
    prompt: int
    leaves: int
    serial_s: float
    parallel_s: float
    wall_ratio: float
    serial_steps: int
    parallel_steps: int
    serial_valid: bool
    parallel_valid: bool
    serial_clean: bool  # valid and without empty/placeholder/markup strings
    parallel_clean: bool
    serial_doc: str
    parallel_doc: str


def run_parallel_json_bench(
    engine: Any,
    cases: Sequence[Case] = CASES,
    *,
    max_tokens: int | None = None,
    repeats: int = 1,
) -> list[BenchRow]:
    """One row per case and prompt (times: best of ``repeats``); ``engine``: any DSL backend.

    ``max_tokens`` caps every parallel leaf (default: each leaf's budget from its bound).
    """
    from apar_sgl.dsl.backend import as_backend
    from apar_sgl.dsl.schema_split import split_schema

    backend = as_backend(engine)
    rows = []
    for case in cases:
        plan = split_schema(case.model)
        for index, text in enumerate(case.prompts):
            prompt = _prompt(backend.chat_format, text)
            serial, parallel = _Timed(), _Timed()
            for _ in range(repeats):  # interleaved: serial, parallel, serial, ...
                serial.add(_serial, backend, prompt, case.model)
                parallel.add(_parallel, backend, prompt, case.model, plan, max_tokens)
            rows.append(
                BenchRow(
                    schema=case.name,
                    prompt=index,
                    leaves=len(plan.branches),
                    serial_s=serial.best,
                    parallel_s=parallel.best,
                    wall_ratio=serial.best / parallel.best,
                    serial_steps=serial.steps,
                    parallel_steps=parallel.steps,
                    serial_valid=serial.doc is not None,
                    parallel_valid=parallel.doc is not None,
                    serial_clean=serial.doc is not None and not flaws(serial.doc),
                    parallel_clean=parallel.doc is not None and not flaws(parallel.doc),
                    serial_doc=json.dumps(serial.doc) if serial.doc else serial.error,
                    parallel_doc=json.dumps(parallel.doc) if parallel.doc else parallel.error,
                )
            )
            logger.info("%s", rows[-1])
    return rows


class _Timed:
    """Best wall time over repeats; the last run's document (None if invalid) and steps."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.doc: Any = None
        self.error = ""
        self.steps = 0

    def add(self, run, *args: Any) -> None:
        start = time.perf_counter()
        self.doc, self.steps, self.error = run(*args)
        self.times.append(time.perf_counter() - start)

    @property
    def best(self) -> float:
        return min(self.times)


def _prompt(chat: Any, text: str) -> str:
    return (
        f"{chat.prefix['system']}Answer with the requested fields as JSON.{chat.suffix['system']}"
        f"{chat.prefix['user']}{text}{chat.suffix['user']}{chat.prefix['assistant']}"
    )


def _serial(backend: Any, prompt: str, model: type[BaseModel]) -> tuple[Any, int, str]:
    from apar_sgl.dsl.backend import Request

    params = {
        "max_new_tokens": SERIAL_MAX_TOKENS,
        "temperature": 0.0,
        "json_schema": json.dumps(model.model_json_schema()),
        "custom_params": {"apar": False},
    }
    [out] = backend.generate([Request(prompt, params, "serial")])
    try:
        doc = model.model_validate_json(out.text).model_dump(mode="json")
    except ValidationError as exc:
        return None, out.meta["completion_tokens"], f"invalid: {exc.errors()[0]['msg']}"
    return doc, out.meta["completion_tokens"], ""


def _parallel(
    backend: Any, prompt: str, model: type[BaseModel], plan: Any, max_tokens: int | None
) -> tuple[Any, int, str]:
    import apar_sgl as apar

    program = apar.function(
        lambda s: s.__iadd__(prompt + apar.gen_json("obj", model, max_tokens=max_tokens))
    )
    try:
        state = program.run(backend=backend)
    except apar.GenerationError as exc:
        return None, 0, str(exc)[:200]
    metas = state.meta("obj")
    steps = sum(max(metas[b.pointer]["completion_tokens"] for b in st) for st in plan.stages)
    return state["obj"].model_dump(mode="json"), steps, ""
