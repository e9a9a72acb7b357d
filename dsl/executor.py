"""Execute expressions as coroutines that yield request batches; forks merge their batches.

A step coroutine yields ``list[Request]`` and receives the matching ``list[Completion]``.
:func:`gather` runs several steps in lockstep so that the current requests of all branches
of a fork go to the backend as ONE batch, which SGLang schedules on the shared cached prefix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from apar_sgl.dsl.backend import Completion, Request
from apar_sgl.dsl.ops import (
    DslError,
    Expr,
    ForkExpr,
    Gen,
    GenJson,
    RoleBegin,
    RoleEnd,
    Seq,
    Text,
    flatten,
)
from apar_sgl.dsl.run import GenerationError, Step, commit_request, finish_type

if TYPE_CHECKING:
    from apar_sgl.dsl.state import Fork, State

logger = logging.getLogger(__name__)


def execute(state: State, expr: Expr) -> Step:
    chat = None
    for item in flatten(expr):
        if isinstance(item, Text):
            state._append(item.text)
        elif isinstance(item, RoleBegin | RoleEnd):
            chat = chat or state._run.backend.chat_format
            table = chat.prefix if isinstance(item, RoleBegin) else chat.suffix
            state._append(table[item.role])
        elif isinstance(item, Gen):
            label = _label(state, item.name)
            [completion] = yield [Request(state._text, item.params, label)]
            state._append(completion.text)
            state._capture(item.name, _value(item, completion, label), completion.meta)
            state._committed = len(state._text)
        elif isinstance(item, GenJson):
            from apar_sgl.dsl.json_gen import run_gen_json

            yield from run_gen_json(state, item)
        elif isinstance(item, ForkExpr):
            yield from run_fork(state, item.fork)
        else:
            raise DslError(f"unknown expression {item!r}")


def run_fork(parent: State, fork: Fork) -> Step:
    """Commit the shared prefix once, run all branches in lockstep, join in branch order."""
    if len(fork.branches) > 1 and parent._committed < len(parent._text):
        yield [commit_request(parent._text, f"{fork.branches[0].label}:prefix")]
    parent._committed = len(parent._text)
    steps = []
    for b in fork.branches:
        ops, b._pending = b._pending or [], None
        b._text, b._committed = parent._text, parent._committed
        steps.append(execute(b, Seq(tuple(ops))))
    yield from gather(steps)
    start = len(parent._text)
    parent._append(fork.join.join(b._text[start:] for b in fork.branches))
    parent.forks.append(fork.branches)


def gather(steps: Sequence[Step]) -> Step:
    """Run ``steps`` together: each round sends every unfinished step's requests as one batch."""
    waiting: list[tuple[Step, list[Request]]] = []
    for step in steps:
        _advance(step, None, waiting)
    while waiting:
        batch = [r for _, requests in waiting for r in requests]
        completions = yield batch
        current, waiting, start = waiting, [], 0
        for step, requests in current:
            _advance(step, completions[start : start + len(requests)], waiting)
            start += len(requests)


def _advance(step: Step, sent: list[Completion] | None, waiting: list) -> None:
    try:
        requests = next(step) if sent is None else step.send(sent)
    except StopIteration:
        return
    if not requests:
        raise DslError("a step yielded an empty batch")
    waiting.append((step, requests))


def _value(gen: Gen, completion: Completion, label: str) -> Any:
    text = completion.text
    if gen.choices is not None and text not in gen.choices:
        raise GenerationError(f"{label}: output {text!r} is not one of {list(gen.choices)}")
    if "json_schema" not in gen.params:
        return text
    if finish_type(completion.meta) == "length":
        raise GenerationError(
            f"{label}: JSON did not finish within max_tokens={gen.params['max_new_tokens']}: "
            f"{text[:80]!r}"
        )
    try:
        value = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise GenerationError(f"{label}: output is not JSON ({exc}): {text[:80]!r}") from None
    return gen.model.model_validate(value) if gen.model is not None else value


def _label(state: State, name: str | None) -> str:
    name = name or "<unnamed>"
    return f"{state.label}.{name}" if state.label else name
