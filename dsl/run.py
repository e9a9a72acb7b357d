"""One program run: what its states share, and how a step's request batches reach the backend.

A step coroutine (`Step`) yields ``list[Request]`` and receives the matching
``list[Completion]``; :func:`drive` runs one to completion, one backend call per batch,
streaming text to the run's sink. Imports no state or executor, so both can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from apar_sgl.dsl.backend import Backend, Completion, Request
from apar_sgl.dsl.ops import DslError

Step = Generator[list[Request], list[Completion], None]


class StreamChunk(NamedTuple):
    """Text produced for capture ``label`` (e.g. ``"summary"`` or ``"fork0[1].day"``)."""

    label: str
    text: str


@dataclass(slots=True, eq=False)
class Run:
    """What every state of one program run shares."""

    backend: Backend
    sink: Callable[[StreamChunk], None] | None = None


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


def commit_request(prompt: str, label: str) -> Request:
    """Prefill ``prompt`` into the radix cache so that the branches after it share it."""
    return Request(prompt, {"max_new_tokens": 0, "custom_params": {"apar": False}}, label)


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


def finish_type(meta: Mapping[str, Any]) -> str | None:
    """The finish reason's type in an SGLang ``meta_info`` ("stop", "length", "abort", ...)."""
    reason = meta.get("finish_reason")
    return reason.get("type") if isinstance(reason, dict) else reason
