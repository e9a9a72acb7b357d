"""The ANPD drafter's knobs, derived from the `anpd_*` fields of `AparArgs`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apar_sgl.config import AparArgs

_PREFIX = "anpd_"


@dataclass(frozen=True, slots=True)
class AnpdSettings:
    """Their defaults and docs live once, in `AparArgs`; `from_args` strips the prefix."""

    max_width: int  # verify tokens per request: the root plus up to max_width - 1 drafts
    max_n: int
    branching: int
    token_budget: int
    min_acceptance: float
    min_confidence: float  # draft a token only if P(it and its prefix accepted) >= this
    shared_corpus: bool  # finished requests' tokens feed every later draft
    measure_cost: bool  # pick each step's width from measured step times (observe_step)
    max_entries_per_level: int = 65536

    @classmethod
    def from_args(cls, args: AparArgs, max_width: int) -> AnpdSettings:
        anpd = {
            f.name.removeprefix(_PREFIX): getattr(args, f.name)
            for f in dataclasses.fields(args)
            if f.name.startswith(_PREFIX)
        }
        return cls(max_width=max_width, **anpd)
