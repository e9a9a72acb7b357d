"""Execute expressions as coroutines that yield request batches; forks merge their batches.

A step coroutine yields ``list[Request]`` and receives the matching ``list[Completion]``.
:func:`gather` runs several steps in lockstep so that the current requests of all branches
of a fork go to the backend as ONE batch, which SGLang schedules on the shared cached prefix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Sequence
from typing import Any

from apar_sgl.dsl.backend import Completion, Request
from apar_sgl.dsl.ops import DslError, Expr, Gen, GenJson, RoleBegin, RoleEnd, Seq, Text, flatten
from apar_sgl.dsl.state import Fork, ForkExpr, Run, State, StreamChunk

logger = logging.getLogger(__name__)

Step = Generator[list[Request], list[Completion], None]


class GenerationError(RuntimeError):
    """A constrained generation did not produce a valid value (names the capture or path)."""


def drive(run: Run, step: Step) -> None:
    """Run ``step`` to completion against the run's backend, one batch per yield."""
    try:
        requests = next(step)
        while True:
            requests = step.send(_call(run, requests))
    except StopIteration:
        return


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


def commit_request(prompt: str, label: str) -> Request:
    """Prefill ``prompt`` into the radix cache so that the branches after it share it."""
    return Request(prompt, {"max_new_tokens": 0, "custom_params": {"apar": False}}, label)


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


def _call(run: Run, requests: list[Request]) -> list[Completion]:
    for r in requests:
        if not r.prompt:
            raise DslError(f"{r.label}: the prompt is empty; add text before generating")
    if run.sink is not None and len(requests) == 1 and requests[0].params.get("max_new_tokens"):
        stream = run.backend.stream(requests[0])
        try:
            while True:
                if delta := next(stream):
                    run.sink(StreamChunk(requests[0].label, delta))
        except StopIteration as done:
            return [done.value]
    completions = run.backend.generate(requests)
    if run.sink is not None:
        for r, c in zip(requests, completions, strict=True):
            if r.params.get("max_new_tokens"):
                run.sink(StreamChunk(r.label, c.text))
    return completions


def _value(gen: Gen, completion: Completion, label: str) -> Any:
    text = completion.text
    if gen.choices is not None and text not in gen.choices:
        raise GenerationError(f"{label}: output {text!r} is not one of {list(gen.choices)}")
    if "json_schema" not in gen.params:
        return text
    if _finish(completion) == "length":
        raise GenerationError(
            f"{label}: JSON did not finish within max_tokens={gen.params['max_new_tokens']}: "
            f"{text[:80]!r}"
        )
    try:
        value = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise GenerationError(f"{label}: output is not JSON ({exc}): {text[:80]!r}") from None
    return gen.model.model_validate(value) if gen.model is not None else value


def _finish(completion: Completion) -> str | None:
    reason = completion.meta.get("finish_reason")
    return reason.get("type") if isinstance(reason, dict) else reason


def _label(state: State, name: str | None) -> str:
    name = name or "<unnamed>"
    return f"{state.label}.{name}" if state.label else name
