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


@dataclass(slots=True)
class LevelConfidence:
    """How often a draft token is accepted, by the n-gram level it matched at, learned online.

    A bigram match is a guess; a match on three tokens of context is often a copy. `keep`
    cuts a chain where the estimated chance that every token so far is accepted drops below
    a threshold, so a request drafts only what is likely to pay for its verify slots. The
    counts start at `prior_trials` trials with a prior acceptance of (n - 1) / n at level n
    (1/2 for a bigram, 5/6 for a 6-gram: the longer the matched context, the likelier a copy),
    so that a long match gets verified and measured before its counts take over; they are
    halved past `horizon` trials so that they follow the recent text. Only counts are kept:
    no request's tokens.
    """

    max_n: int
    prior_trials: float = 2.0
    horizon: float = 2048.0
    _accepted: list[float] = field(init=False, repr=False)  # by level; set by __post_init__
    _tried: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_n < 2:
            raise ValueError(f"max_n must be >= 2, got {self.max_n}")
        if self.prior_trials <= 0.0:
            raise ValueError(f"prior_trials must be > 0, got {self.prior_trials}")
        levels = range(self.max_n + 1)
        self._accepted = [self.prior_trials * max(0, n - 1) / max(1, n) for n in levels]
        self._tried = [self.prior_trials] * (self.max_n + 1)

    def probability(self, level: int) -> float:
        """Estimated chance that a token matched at `level` is accepted, given its prefix was."""
        return self._accepted[level] / self._tried[level]

    def keep(self, levels: list[int], threshold: float) -> int:
        """How many leading tokens of a chain to draft: while P(all accepted) >= threshold."""
        chance = 1.0
        for kept, level in enumerate(levels):
            chance *= self.probability(level)
            if chance < threshold:
                return kept
        return len(levels)

    def update(self, levels: list[int], accepted: int) -> None:
        """Record a verified chain: its first `accepted` tokens passed, the next one failed."""
        if not 0 <= accepted <= len(levels):
            raise ValueError(f"need 0 <= accepted <= {len(levels)}, got {accepted}")
        for level in levels[: accepted + 1]:
            self._tried[level] += 1.0
        for level in levels[:accepted]:
            self._accepted[level] += 1.0
        if sum(self._tried) > self.horizon:
            self._accepted = [a / 2 for a in self._accepted]
            self._tried = [t / 2 for t in self._tried]

    def expected_accepted(self, levels: list[int]) -> list[float]:
        """Expected accepted tokens if the chain is cut to its first k tokens, for k = 1..len."""
        out: list[float] = []
        chance, total = 1.0, 0.0
        for level in levels:
            chance *= self.probability(level)
            total += chance
            out.append(total)
        return out


@dataclass(slots=True)
class StepCost:
    """Seconds per forward step as a + b * tokens, fitted online; old steps fade by `decay`.

    Keep one per kind of step (plain decode, verify): on a GPU extra verify tokens are nearly
    free, on a CPU each costs about as much as a decode step, and only a measurement tells.
    """

    decay: float = 0.97
    _sums: list[float] = field(default_factory=lambda: [0.0] * 5, repr=False)  # n Σx Σy Σxx Σxy

    def __post_init__(self) -> None:
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")

    @property
    def samples(self) -> float:
        """Steps observed, older ones counted at their faded weight."""
        return self._sums[0]

    def observe(self, tokens: int, seconds: float) -> None:
        if tokens < 1 or seconds < 0.0:
            raise ValueError(f"need tokens >= 1 and seconds >= 0, got {tokens}, {seconds}")
        point = (1.0, tokens, seconds, tokens * tokens, tokens * seconds)
        self._sums = [s * self.decay + p for s, p in zip(self._sums, point, strict=True)]

    def predict(self, tokens: int) -> float | None:
        """Expected seconds for a step of `tokens`; None before any observation.

        With one batch size seen so far the cost is taken as proportional to tokens.
        """
        n, sx, sy, sxx, sxy = self._sums
        if n == 0.0:
            return None
        mean_x, mean_y = sx / n, sy / n
        spread = sxx / n - mean_x * mean_x
        if spread > 1e-6 * mean_x * mean_x:
            slope = max(0.0, (sxy / n - mean_x * mean_y) / spread)
        else:
            slope = mean_y / mean_x
        return max(0.0, mean_y + slope * (tokens - mean_x))


def best_width(
    expected: list[list[float]],
    decode: StepCost,
    verify: StepCost,
    *,
    min_verify_samples: float = 4.0,
) -> int:
    """The verify width (1: plain decode, no drafts) with the most expected tokens per second.

    `expected[r][k - 1]` is request r's expected accepted tokens with its draft cut to k tokens.
    Until verify has `min_verify_samples` observations every draft is kept, so it gets measured.
    """
    widest = 1 + max((len(e) for e in expected), default=0)
    batch = len(expected)
    decode_s = decode.predict(batch)
    if widest == 1 or decode_s is None or verify.samples < min_verify_samples:
        return widest
    best, best_rate = 1, batch / max(decode_s, 1e-9)
    for width in range(2, widest + 1):
        tokens = batch + sum(e[min(width - 1, len(e)) - 1] for e in expected if e)
        rate = tokens / max(verify.predict(batch * width), 1e-9)
        if rate > best_rate:
            best, best_rate = width, rate
    return best
