"""When a branch may fork: from decode step times measured by batch size. Pure Python.

A fork adds one row to the decode batch. Forking pays when the batch's tokens per second
grow with that row: ``(rows + 1) / t(rows + 1) >= MIN_GAIN * rows / t(rows)``. Where a step
costs about the same for one more row (a memory-bound step, as on a GPU or a small CPU
batch), the child's tokens come almost free and the answer finishes sooner; where each row
costs its share (a compute-bound batch), the child's tokens slow every other request as
much as they speed this one, so the fork token is masked and the model writes the item
inline (the answer stays complete). Until both batch sizes are measured, forks are allowed,
which measures them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple

logger = logging.getLogger(__name__)

POLICIES = ("always", "auto", "never")
# The throughput gain a fork must promise: it also costs the child's one-token prefill and
# the join's bookkeeping, and step times are noisy.
MIN_GAIN = 1.05


@dataclass(slots=True)
class StepTimes:
    """Mean seconds of a decode step by batch size (rows); older steps fade by `decay`."""

    decay: float = 0.9
    min_samples: int = 3  # steps of a batch size before its mean counts as measured
    _mean: dict[int, float] = field(default_factory=dict)
    _count: dict[int, int] = field(default_factory=dict)

    def observe(self, rows: int, seconds: float) -> None:
        if rows < 1 or seconds < 0.0:
            raise ValueError(f"need rows >= 1 and seconds >= 0, got {rows}, {seconds}")
        count = self._count.get(rows, 0)
        mean = self._mean.get(rows, seconds)
        weight = max(1.0 - self.decay, 1.0 / (count + 1))
        self._mean[rows] = mean + weight * (seconds - mean)
        self._count[rows] = count + 1

    def predict(self, rows: int) -> float | None:
        """Measured mean at `rows`, else interpolated between measured neighbours, else None."""
        if self._count.get(rows, 0) >= self.min_samples:
            return self._mean[rows]
        measured = sorted(r for r, n in self._count.items() if n >= self.min_samples)
        below = [r for r in measured if r < rows]
        above = [r for r in measured if r > rows]
        if not below or not above:
            return None
        lo, hi = below[-1], above[0]
        share = (rows - lo) / (hi - lo)
        return self._mean[lo] + share * (self._mean[hi] - self._mean[lo])

    def as_ms(self) -> dict[int, float]:
        """The measured means, in milliseconds, by batch size."""
        return {
            rows: round(1000 * self._mean[rows], 2)
            for rows in sorted(self._mean)
            if self._count[rows] >= self.min_samples
        }


class ForkDecision(NamedTuple):
    allow: bool
    reason: str  # "policy": always/never; "unmeasured": exploring; "gain": measured
    rows: int  # decode batch size the decision was made at
    step_ms: float | None  # measured step at `rows`
    step_ms_forked: float | None  # expected step at `rows + 1`
    gain: float | None  # expected batch tokens/s with the fork over without

    def as_dict(self) -> dict[str, object]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self._asdict().items()}


def decide(policy: str, rows: int, times: StepTimes, min_gain: float = MIN_GAIN) -> ForkDecision:
    """Whether a branch of a decode batch of `rows` rows may fork now (see the module doc)."""
    if policy not in POLICIES:
        raise ValueError(f"fork policy must be one of {POLICIES}; got {policy!r}")
    now, forked = times.predict(rows), times.predict(rows + 1)
    ms = (None if now is None else 1000 * now, None if forked is None else 1000 * forked)
    if policy != "auto":
        return ForkDecision(policy == "always", "policy", rows, *ms, None)
    if now is None or forked is None:
        return ForkDecision(True, "unmeasured", rows, *ms, None)
    gain = (rows + 1) * now / (rows * max(forked, 1e-9))
    return ForkDecision(gain >= min_gain, "gain", rows, *ms, gain)
