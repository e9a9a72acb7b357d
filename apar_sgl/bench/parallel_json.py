"""Benchmark mode ``parallel-json``: one constrained request per object vs ``gen_json`` branches.

Serial is what plain SGLang offers: one request constrained by the whole schema. Parallel
generates every leaf in its own branch on the shared prefix. Decode steps: serial counts the
request's completion tokens, parallel sums the longest branch of each stage.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field, ValidationError

logger = logging.getLogger(__name__)


class Address(BaseModel):
    street: str = Field(max_length=40)
    city: str = Field(max_length=30)
    country: str = Field(max_length=30)


class Person(BaseModel):
    name: str = Field(max_length=40)
    age: int = Field(ge=0, le=120)
    email: str = Field(max_length=40)
    job: Literal["engineer", "doctor", "teacher", "artist", "other"]
    home: Address


class Product(BaseModel):
    title: str = Field(max_length=40)
    brand: str = Field(max_length=30)
    price: float = Field(ge=0, le=100000)
    currency: Literal["EUR", "USD", "GBP"]
    in_stock: bool
    rating: int = Field(ge=1, le=5)
    tags: tuple[str, str] = Field(description="two short keywords")


class Event(BaseModel):
    name: str = Field(max_length=40)
    city: str = Field(max_length=30)
    month: Literal[
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    ]
    day: int = Field(ge=1, le=31)
    attendees: int = Field(ge=0, le=1000000)
    free: bool
    organizer: str = Field(max_length=40)
    venue: Address


class Case(NamedTuple):
    name: str
    model: type[BaseModel]
    text: str


CASES = (
    Case(
        "person",
        Person,
        "Dana Kim (38) is a teacher, dana@kim.org, living at 12 Elm Road, Leeds, UK.",
    ),
    Case(
        "product",
        Product,
        "The Zento X2 headphones by Zento cost 129.99 EUR, are in stock, rated 4 of 5; "
        "tags: wireless, travel.",
    ),
    Case(
        "event",
        Event,
        "PyCon Lisboa, organised by the Python PT association, takes place on 14 Oct in "
        "Lisbon at 1 Rua Augusta, Lisbon, Portugal; free entry, 900 attendees expected.",
    ),
)


class BenchRow(NamedTuple):
    schema: str
    leaves: int
    serial_s: float
    parallel_s: float
    wall_ratio: float
    serial_steps: int
    parallel_steps: int
    serial_valid: bool
    parallel_valid: bool


def run_parallel_json_bench(
    engine: Any, cases: Sequence[Case] = CASES, *, max_tokens: int = 48, repeats: int = 1
) -> list[BenchRow]:
    """Rows per case (times are the best of ``repeats``); ``engine`` may be any DSL backend."""
    import apar_sgl as apar
    from apar_sgl.dsl.backend import Request, as_backend
    from apar_sgl.dsl.executor import commit_request
    from apar_sgl.dsl.schema_split import split_schema

    backend = as_backend(engine)
    chat = backend.chat_format
    rows = []
    for case in cases:
        prompt = (
            f"{chat.prefix['system']}Extract the fields as JSON.{chat.suffix['system']}"
            f"{chat.prefix['user']}{case.text}{chat.suffix['user']}{chat.prefix['assistant']}"
        )
        plan = split_schema(case.model)
        schema = json.dumps(case.model.model_json_schema())
        serial_params = {
            "max_new_tokens": max_tokens * len(plan.branches),
            "temperature": 0.0,
            "json_schema": schema,
            "custom_params": {"apar": False},
        }

        serial_times, parallel_times = [], []
        for _ in range(repeats):
            backend.generate([commit_request(prompt, "warm prefix")])
            start = time.perf_counter()
            [serial] = backend.generate([Request(prompt, serial_params, case.name)])
            serial_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            try:
                state = _extract(backend, prompt, case.model, max_tokens)
                parallel_valid = True
            except apar.GenerationError as exc:
                logger.warning("%s: parallel JSON failed: %s", case.name, exc)
                state, parallel_valid = None, False
            parallel_times.append(time.perf_counter() - start)
        serial_valid = _valid(case.model, serial.text)
        rows.append(
            BenchRow(
                schema=case.name,
                leaves=len(plan.branches),
                serial_s=min(serial_times),
                parallel_s=min(parallel_times),
                wall_ratio=min(serial_times) / min(parallel_times),
                serial_steps=serial.meta["completion_tokens"],
                parallel_steps=_parallel_steps(plan, state) if state else 0,
                serial_valid=serial_valid,
                parallel_valid=parallel_valid,
            )
        )
        logger.info("%s", rows[-1])
    return rows


def _extract(backend: Any, prompt: str, model: type[BaseModel], max_tokens: int) -> Any:
    import apar_sgl as apar

    program = apar.function(
        lambda s: s.__iadd__(prompt + apar.gen_json("obj", model, max_tokens=max_tokens))
    )
    return program.run(backend=backend)


def _valid(model: type[BaseModel], text: str) -> bool:
    try:
        model.model_validate_json(text)
    except ValidationError:
        return False
    return True


def _parallel_steps(plan: Any, state: Any) -> int:
    metas = state.meta("obj")
    return sum(max(metas[b.pointer]["completion_tokens"] for b in stage) for stage in plan.stages)
