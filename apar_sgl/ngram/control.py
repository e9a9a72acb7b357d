"""Per-request adaptive draft length and the batch-aware draft budget policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


def draft_budget(
    batch_size: int,
    acceptance: float,
    max_len: int,
    *,
    token_budget: int = 64,
    min_acceptance: float = 0.25,
) -> int:
    """Most draft tokens one request may verify this step.

    The batch shares `token_budget` extra verify tokens per step (past that, a forward pass is
    compute-bound and drafts cost throughput), so large batches draft less, then nothing; a
    request whose acceptance is below `min_acceptance` drafts nothing.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= acceptance <= 1.0:
        raise ValueError(f"acceptance must be in [0, 1], got {acceptance}")
    if acceptance < min_acceptance:
        return 0
    return max(0, min(max_len, token_budget // batch_size))


@dataclass(slots=True)
class DraftLengthController:
    """Draft length for one request from an EMA of its acceptance rate (accepted / drafted).

    Full acceptance grows the length by one up to `max_len`; a partial one shrinks it to
    accepted + 1 (at least `min_len`). Below `min_acceptance` the request stops drafting and
    sends a `min_len` probe every `probe_every` steps so it can recover.
    """

    min_len: int = 1
    max_len: int = 8
    smoothing: float = 0.5
    min_acceptance: float = 0.25
    token_budget: int = 64
    probe_every: int = 16
    acceptance: float = field(init=False, default=1.0)  # optimistic start; set by update()
    length: int = field(init=False, default=0)  # set by __post_init__ and update()
    _idle_steps: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got {self.min_len}, {self.max_len}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")
        if self.probe_every < 1:
            raise ValueError(f"probe_every must be >= 1, got {self.probe_every}")
        self.length = self.min_len

    def next_length(self, batch_size: int = 1) -> int:
        """Draft length for this step: 0 means do not draft."""
        budget = self._budget(batch_size, self.acceptance)
        if budget > 0:
            self._idle_steps = 0
            return min(self.length, budget)
        self._idle_steps += 1
        if self._idle_steps < self.probe_every:
            return 0
        self._idle_steps = 0
        # the probe ignores the acceptance floor but still respects the batch share
        return min(self.min_len, self._budget(batch_size, 1.0))

    def update(self, drafted: int, accepted: int) -> None:
        """Record one verify step's outcome; a step that drafted nothing changes nothing."""
        if not 0 <= accepted <= drafted:
            raise ValueError(f"need 0 <= accepted <= drafted, got {accepted}, {drafted}")
        if drafted == 0:
            return
        self.acceptance = (
            self.smoothing * self.acceptance + (1.0 - self.smoothing) * accepted / drafted
        )
        if accepted == drafted:
            self.length = min(self.max_len, self.length + 1)
        else:
            self.length = max(self.min_len, min(self.length, accepted + 1))

    def _budget(self, batch_size: int, acceptance: float) -> int:
        return draft_budget(
            batch_size,
            acceptance,
            self.max_len,
            token_budget=self.token_budget,
            min_acceptance=self.min_acceptance,
        )
