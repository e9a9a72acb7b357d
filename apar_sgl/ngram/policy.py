"""How much each request drafts: its length controller, the confidence gate, cost → width."""

from __future__ import annotations

from collections.abc import Sequence

from apar_sgl.ngram.control import DraftLengthController, LevelConfidence, StepCost, best_width
from apar_sgl.ngram.requests import RequestState
from apar_sgl.ngram.settings import AnpdSettings
from apar_sgl.ngram.tree import EMPTY, DraftTree, first_nodes


class DraftPolicy:
    """Draft lengths per request, one `LevelConfidence` shared by all (counts only), and the
    measured decode and verify step costs that pick each batch's verify width."""

    def __init__(self, settings: AnpdSettings) -> None:
        self.settings = settings
        self.confidence = LevelConfidence(settings.max_n)
        self.decode_cost = StepCost()
        self.verify_cost = StepCost()

    def new_controller(self) -> DraftLengthController:
        s = self.settings
        return DraftLengthController(
            max_len=max(1, s.max_width - 1),
            min_acceptance=s.min_acceptance,
            token_budget=s.token_budget,
        )

    def node_cap(self, batch_size: int) -> int:
        """Draft nodes per request: the width SGLang reserved, and the batch's share of the
        token budget."""
        s = self.settings
        return min(s.max_width - 1, max(1, s.token_budget // batch_size))

    def draft(self, state: RequestState, batch_size: int, cap: int) -> tuple[DraftTree, list[int]]:
        """The request's draft tree and the match level of each token of its greedy chain."""
        s = self.settings
        length = state.control.next_length(batch_size)
        levels = state.table.draft_levels(length) if length else []
        length = self.confidence.keep(levels, s.min_confidence)
        tree = state.table.draft_tree(length, s.branching) if length else EMPTY
        return first_nodes(tree, cap), levels

    def fit_width(self, trees: Sequence[DraftTree], levels: Sequence[list[int]]) -> list[DraftTree]:
        """The trees cut to the batch's verify width with the most expected tokens per
        measured second (unchanged when costs are not measured)."""
        if not self.settings.measure_cost:
            return list(trees)
        width = self._best_width(trees, levels)
        return [first_nodes(tree, width - 1) for tree in trees]

    def record(self, state: RequestState, accepted: int) -> int:
        """Learn from one verify step; the accepted count, clipped to what was drafted."""
        count = min(int(accepted), state.drafted)
        state.control.update(state.drafted, count)
        self.confidence.update(state.levels, min(count, len(state.levels)))
        return count

    def observe_step(self, verified: bool, tokens: int, seconds: float) -> None:
        (self.verify_cost if verified else self.decode_cost).observe(tokens, seconds)

    def step_times_ms(self) -> dict[str, float]:
        """The fitted step times (ms) a batch of one would see at each width, once measured."""
        costs = {"decode_ms_1": self.decode_cost.predict(1)}
        for width in (2, 4, self.settings.max_width):
            costs[f"verify_ms_{width}"] = self.verify_cost.predict(width)
        return {
            name: round(1000 * seconds, 2) for name, seconds in costs.items() if seconds is not None
        }

    def _best_width(self, trees: Sequence[DraftTree], levels: Sequence[list[int]]) -> int:
        """A tree's first nodes are its greedy chain, so cutting it to k nodes keeps the chain's
        first k tokens; nodes past the chain (other branches) are counted as costs only."""
        expected = []
        for tree, chain in zip(trees, levels, strict=True):
            gains = self.confidence.expected_accepted(chain)
            expected.append(
                [gains[min(k, len(gains)) - 1] if gains else 0.0 for k in range(1, len(tree) + 1)]
            )
        return best_width(expected, self.decode_cost, self.verify_cost)
