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
register(
    Mode(
        "apar-off",
        "the APAR model with the runtime off per request (apar: false): the model's own "
        "text, control tokens included, at plain decoding cost",
        sampling_extra={"custom_params": {"apar": False}},
        model="apar-smollm2",
    )
)
register(
    Mode(
        "apar-always",
        "the APAR model forking wherever it emits a fork token (--apar-fork-policy always)",
        engine_kwargs={"apar_fork_policy": "always"},
        model="apar-smollm2",
    )
)
register(
    Mode(
        "anpd",
        "our adaptive n-gram drafter alone (ANPD, its defaults: width 8; APAR off)",
        engine_kwargs={"speculative_algorithm": "ANPD", "apar_mode": "off"},
    )
)
register(
    Mode(
        "apar+anpd",
        "the APAR model forking its answer, each branch drafted by ANPD",
        engine_kwargs={"speculative_algorithm": "ANPD"},
        model="apar-smollm2",
    )
)
register(
    Mode(
        "sglang-ngram-8",
        "SGLang's NGRAM at ANPD's default draft budget (8 verify tokens per request)",
        engine_kwargs={
            "speculative_algorithm": "NGRAM",
            "speculative_num_draft_tokens": 8,
            "apar_mode": "off",
        },
    )
)
register(
    Mode(
        "anpd-corpus",
        "ANPD with its opt-in cross-request corpus (like SGLang's NGRAM; APAR off)",
        engine_kwargs={
            "speculative_algorithm": "ANPD",
            "anpd_shared_corpus": True,
            "apar_mode": "off",
        },
    )
)
