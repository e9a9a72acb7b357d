"""Benchmark modes: how each one starts its engine and what it adds to a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    description: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    sampling_extra: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # None: the model given on the command line


MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    if mode.name in MODES:
        raise ValueError(f"benchmark mode {mode.name!r} is registered twice")
    MODES[mode.name] = mode
    return mode


register(Mode("ar", "plain SGLang decoding, one token per forward pass"))
register(
    Mode(
        "sglang-ngram",
        "SGLang's built-in NGRAM speculative decoding (its defaults)",
        engine_kwargs={"speculative_algorithm": "NGRAM"},
    )
)
register(
    Mode(
        "apar",
        "the APAR model forking its own answer (APAR runtime on), vs the base model's ar",
        model="apar-smollm2",
    )
)
