"""apar-sgl's own server settings, in SGLang's ServerArgs style.

One frozen dataclass of `apar_`-prefixed fields; defaults live only here. It reaches the
scheduler processes as `server_args._apar`: SGLang pickles ServerArgs with its underscore
bookkeeping attributes into every subprocess (see ServerArgs.__reduce__ in 0.5.23).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN

REQUEST_MODES = ("model", "skeleton", "off")  # a chat request's `apar_mode` field


def _opt(default, help: str):
    """A setting with its --help text beside it."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class AparArgs:
    apar_fork_token: str = _opt(FORK_TOKEN, "Control token the model emits to fork a child branch.")
    apar_child_token: str = _opt(
        CHILD_TOKEN, "Control token forced at the start of each child branch."
    )
    apar_mode: str = _opt(
        "auto",
        "APAR forking: auto (on when the tokenizer has both control tokens), on (fail at "
        "start if it does not), off.",
    )
    apar_max_branches: int = _opt(
        16,
        "Most child branches per request; later forks are suppressed and the model "
        "continues serially.",
    )
    apar_max_depth: int = _opt(2, "Deepest nesting of forks (1: only the root forks).")
    apar_max_concurrent_children: int = _opt(
        8,
        "Most children of one request decoding at once; a further child waits until one "
        "finishes (0: no forking at all).",
    )
    apar_max_json_branches: int = _opt(
        64,
        "Most leaves (branches) of one apar_parallel_json request; a schema with more is "
        "rejected with 400.",
    )
    apar_default_mode: str = _opt(
        "model",
        "What a /v1/chat/completions request without an `apar_mode` field gets: model "
        "(the model's own forks, if --apar-mode allows them), skeleton (skeleton-then-"
        "expand prompting for any model, apar_sgl.dsl.skeleton), off (no parallelism).",
    )
    apar_fork_policy: str = _opt(
        "auto",
        "When a branch may fork: auto (decided once per answer, at its first decode step: "
        "forks only if the decode step times measured by batch size say one more row raises "
        "the batch's tokens/s; else the fork token is masked and the answer is written "
        "serially), always, never.",
    )
    anpd_max_n: int = _opt(
        6,
        "ANPD (--speculative-algorithm ANPD): longest n-gram of the per-request table "
        "(levels 2..N). Drafts are at most --speculative-num-draft-tokens - 1 long.",
    )
    anpd_branching: int = _opt(
        1,
        "ANPD: first-token alternatives per draft (1 = a single chain; more makes a tree "
        "verified in the same forward pass).",
    )
    anpd_token_budget: int = _opt(
        64,
        "ANPD: draft tokens one verify step may add over the whole batch; large batches "
        "draft less, then nothing.",
    )
    anpd_min_acceptance: float = _opt(
        0.1,
        "ANPD: a request whose recent acceptance rate falls below this stops drafting "
        "(with an occasional probe to recover).",
    )
    anpd_min_confidence: float = _opt(
        0.3,
        "ANPD: draft a token only while the estimated chance that it and every draft "
        "token before it are accepted stays at or above this (learned online per n-gram "
        "level; 0 drafts whatever matches).",
    )
    anpd_shared_corpus: bool = _opt(
        False,
        "ANPD: also draft from the tokens of earlier finished requests (a cross-request "
        "corpus, as SGLang's NGRAM does; off: no request sees another's text).",
    )
    anpd_measure_cost: bool = _opt(
        True,
        "ANPD: time decode and verify steps online and give each step the verify width (1"
        " = plain decode) with the most expected tokens per second (off: verify every "
        "draft the other limits allow).",
    )

    def __post_init__(self) -> None:
        if self.apar_mode not in ("auto", "on", "off"):
            raise ValueError(f"apar_mode must be auto, on or off; got {self.apar_mode!r}")
        if self.apar_fork_policy not in ("always", "auto", "never"):
            raise ValueError(
                f"apar_fork_policy must be always, auto or never; got {self.apar_fork_policy!r}"
            )
        if self.apar_default_mode not in REQUEST_MODES:
            raise ValueError(
                f"apar_default_mode must be one of {', '.join(REQUEST_MODES)}; "
                f"got {self.apar_default_mode!r}"
            )
        if self.apar_fork_token == self.apar_child_token:
            raise ValueError("apar_fork_token and apar_child_token must differ")
        if self.anpd_max_n < 2 or self.anpd_branching < 1 or self.anpd_token_budget < 0:
            raise ValueError(
                "need anpd_max_n >= 2, anpd_branching >= 1, anpd_token_budget >= 0; got "
                f"{self.anpd_max_n}, {self.anpd_branching}, {self.anpd_token_budget}"
            )
        for name in ("anpd_min_acceptance", "anpd_min_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}")
        if self.apar_max_json_branches < 1:
            raise ValueError(
                f"apar_max_json_branches must be >= 1; got {self.apar_max_json_branches}"
            )
        for name in ("apar_max_branches", "apar_max_depth", "apar_max_concurrent_children"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")

    @staticmethod
    def add_cli_args(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("apar-sgl")
        for field in dataclasses.fields(AparArgs):
            kind = type(field.default)
            group.add_argument(
                "--" + field.name.replace("_", "-"),
                **({"action": argparse.BooleanOptionalAction} if kind is bool else {"type": kind}),
                default=field.default,
                help=field.metadata["help"],
            )

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> AparArgs:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def pop_from_kwargs(cls, kwargs: dict) -> AparArgs:
        """Take the apar_* keys out of Engine-style keyword arguments."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})


def apar_args_of(server_args) -> AparArgs:
    """The AparArgs a launcher attached to SGLang's ServerArgs, or the defaults."""
    return getattr(server_args, "_apar", None) or AparArgs()


def attach(server_args, apar_args: AparArgs) -> None:
    import msgspec

    # ServerArgs seals its fields; underscore bookkeeping attributes are allowed and pickled.
    msgspec.Struct.__setattr__(server_args, "_apar", apar_args)
