"""ANPD drafts for a whole decode batch, in the flat layout SGLang's NGRAM verify path reads.

Pure Python + numpy (no torch, no sglang): per-request `NgramTable`s seeded from the prompt and
fed every accepted token, a `DraftLengthController` per request, one `LevelConfidence` (how
often a token matched at each n-gram level is accepted) that cuts each draft where it stops
being likely to pay for its verify slot, and the batch's draft trees packed as node 0 = the
last accepted token (the root), then the draft nodes, then padding.
An APAR child starts from a fork of its parent's table; the children of one parent also share
a family table, so each drafts from its siblings' accepted tokens. With a grammar, drafts the
request's matcher rejects are cut before verification (`cut_tree`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from apar_sgl.ngram import DraftLengthController, DraftTree, LevelConfidence, NgramTable
from apar_sgl.ngram.control import StepCost, best_width
from apar_sgl.ngram.tree import ROOT

if TYPE_CHECKING:
    from apar_sgl.config import AparArgs

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnpdSettings:
    """The drafter's knobs. Their defaults and docs live once, in `AparArgs` (`from_args`)."""

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
        return cls(
            max_width=max_width,
            max_n=args.anpd_max_n,
            branching=args.anpd_branching,
            token_budget=args.anpd_token_budget,
            min_acceptance=args.anpd_min_acceptance,
            min_confidence=args.anpd_min_confidence,
            shared_corpus=args.anpd_shared_corpus,
            measure_cost=args.anpd_measure_cost,
        )


class TokenMatcher(Protocol):
    """A grammar cursor at the request's current position (e.g. an xgrammar GrammarMatcher)."""

    def accept_token(self, token: int) -> bool: ...

    def rollback(self, num_tokens: int) -> None: ...


@dataclass(slots=True)
class AnpdStats:
    """Counters of one drafter since start; per request-step, not per batch."""

    decode_steps: int = 0  # request-steps decoded under ANPD (verified or plain)
    drafting_steps: int = 0  # of those, the ones that verified at least one draft token
    plain_decode_batches: int = 0  # batch-steps with no drafts, run as plain decode (no verify)
    drafted_tokens: int = 0  # draft tokens verified
    accepted_tokens: int = 0  # draft tokens accepted
    cut_tokens: int = 0  # draft tokens the grammar rejected before verification
    inherited_tables: int = 0  # APAR children that started from their parent's table

    def as_dict(self) -> dict[str, float]:
        steps = self.decode_steps
        return {
            "decode_steps": steps,
            "drafting_steps": self.drafting_steps,
            "plain_decode_batches": self.plain_decode_batches,
            "drafted_tokens": self.drafted_tokens,
            "accepted_tokens": self.accepted_tokens,
            "cut_tokens": self.cut_tokens,
            "inherited_tables": self.inherited_tables,
            # tokens per decode step, the bonus token included (SGLang's spec_accept_length)
            "accept_length": (steps + self.accepted_tokens) / steps if steps else 0.0,
            # the same over the steps that carried drafts (the others are plain decode steps)
            "accept_length_when_drafting": (
                (self.drafting_steps + self.accepted_tokens) / self.drafting_steps
                if self.drafting_steps
                else 0.0
            ),
        }


@dataclass(slots=True)
class _RequestState:
    table: NgramTable
    control: DraftLengthController
    fed: int | None = 0  # tokens of prompt + output in the table; None: inherited, re-sync tail
    drafted: int = field(default=0)  # depth of the last draft, for control.update
    levels: list[int] = field(default_factory=list)  # match level of each drafted chain token
    tokens: list[int] = field(default_factory=list)  # prompt + output, kept for the corpus only


class BatchDraft(NamedTuple):
    tokens: np.ndarray  # int64 (batch * width,)
    mask: np.ndarray  # bool (batch * width * width,): mask[b, i, j] = j is i or its ancestor
    width: int
    drafted: list[int]  # draft depth per request (0: verify only the root)


class AnpdDrafter:
    """Per-request n-gram tables and draft lengths for one scheduler process."""

    def __init__(self, settings: AnpdSettings) -> None:
        if settings.max_width < 1:
            raise ValueError(f"max_width must be >= 1, got {settings.max_width}")
        self.settings = settings
        self.stats = AnpdStats()
        self._states: dict[str, _RequestState] = {}
        self._families: dict[str, NgramTable] = {}  # by parent rid: its children's shared table
        self._corpus = NgramTable(settings.max_n) if settings.shared_corpus else None
        self.confidence = LevelConfidence(settings.max_n)  # counts only, shared by requests
        self.decode_cost = StepCost()
        self.verify_cost = StepCost()

    def __repr__(self) -> str:
        return f"AnpdDrafter({self.settings}, requests={len(self._states)})"

    def __contains__(self, rid: str) -> bool:
        return rid in self._states

    def draft_batch(
        self,
        rids: Sequence[str],
        prompts: Sequence[Sequence[int]],
        outputs: Sequence[Sequence[int]],
        matchers: Sequence[TokenMatcher | None] | None = None,
    ) -> BatchDraft:
        """Feed each request's new tokens, then draft for all; the last token is the root.

        `matchers[i]`, when given, is request i's grammar cursor: drafts it rejects are cut.
        """
        matchers = matchers if matchers is not None else [None] * len(rids)
        s = self.settings
        # verify slots per request: the width SGLang reserved, and the batch's share of the budget
        node_cap = min(s.max_width - 1, max(1, s.token_budget // len(rids)))
        trees = []
        for rid, prompt, output, matcher in zip(rids, prompts, outputs, matchers, strict=True):
            state = self._observe(rid, prompt, output)
            length = state.control.next_length(len(rids))
            levels = state.table.draft_levels(length) if length else []
            length = self.confidence.keep(levels, s.min_confidence)
            tree = state.table.draft_tree(length, s.branching) if length else _EMPTY
            tree = _first_nodes(tree, node_cap)
            if matcher is not None and len(tree):
                kept = cut_tree(tree, matcher)
                self.stats.cut_tokens += len(tree) - len(kept)
                tree = kept
            trees.append(tree)
            state.levels = levels[: max(tree.depths(), default=0)]
        if s.measure_cost:
            width = self._best_width(trees, [self._states[r].levels for r in rids])
            trees = [_first_nodes(tree, width - 1) for tree in trees]
        for rid, tree in zip(rids, trees, strict=True):
            state = self._states[rid]
            state.drafted = max(tree.depths(), default=0)
            state.levels = state.levels[: state.drafted]
        width = 1 + max(len(t) for t in trees)
        roots = [
            (output[-1] if len(output) else prompt[-1])
            for prompt, output in zip(prompts, outputs, strict=True)
        ]
        tokens, mask = _pack(trees, roots, width)
        return BatchDraft(tokens, mask, width, [self._states[r].drafted for r in rids])

    def record(self, rids: Sequence[str], accepted: Sequence[int]) -> None:
        """Accepted draft tokens per request from the step that followed draft_batch (0: plain)."""
        for rid, count in zip(rids, accepted, strict=True):
            state = self._states.get(rid)
            if state is not None:
                count = min(int(count), state.drafted)
                state.control.update(state.drafted, count)
                self.confidence.update(state.levels, min(count, len(state.levels)))
                self.stats.decode_steps += 1
                self.stats.drafting_steps += state.drafted > 0
                self.stats.drafted_tokens += state.drafted
                self.stats.accepted_tokens += count

    def report(self) -> dict[str, float]:
        """Counters plus the fitted step times (ms) a batch of one would see at each width."""
        costs = {"decode_ms_1": self.decode_cost.predict(1)}
        for width in (2, 4, self.settings.max_width):
            costs[f"verify_ms_{width}"] = self.verify_cost.predict(width)
        return self.stats.as_dict() | {
            name: round(1000 * seconds, 2) for name, seconds in costs.items() if seconds is not None
        }

    def observe_step(self, verified: bool, tokens: int, seconds: float) -> None:
        """Time of one forward step of `tokens` tokens: a verify step or a plain decode step."""
        (self.verify_cost if verified else self.decode_cost).observe(tokens, seconds)

    def release(self, rids: Iterable[str]) -> None:
        """Forget finished requests (into the shared corpus, if on); children keep their family
        table through their own."""
        for rid in rids:
            state = self._states.pop(rid, None)
            self._families.pop(rid, None)
            if state is not None and self._corpus is not None:
                self._corpus.extend(state.tokens, new_sequence=True)

    def reset(self) -> None:
        self._states.clear()
        self._families.clear()

    def inherit(self, parent_rid: str, child_rid: str) -> bool:
        """Start `child_rid` with a fork of its parent's table (a fork shares the prefix).

        The children of one parent also read and feed a shared family table. False when the
        parent has no table (it never decoded under ANPD, or has already been released).
        """
        parent = self._states.get(parent_rid)
        if parent is None:
            return False
        family = self._families.get(parent_rid)
        if family is None:
            family = self._families[parent_rid] = self._table()
        table = parent.table.fork(family=family)
        self._states[child_rid] = _RequestState(table, self._controller(), fed=None)
        self.stats.inherited_tables += 1
        return True

    def acceptance(self, rid: str) -> float | None:
        state = self._states.get(rid)
        return None if state is None else state.control.acceptance

    def _observe(self, rid: str, prompt: Sequence[int], output: Sequence[int]) -> _RequestState:
        state = self._states.get(rid)
        if state is None:
            state = self._states[rid] = _RequestState(self._table(), self._controller())
        total = len(prompt) + len(output)
        if state.fed is None:  # inherited: the parent's n-grams are there, only the tail is not
            tail = (list(prompt) + list(output))[-(self.settings.max_n - 1) :]
            state.table.extend(tail, new_sequence=True)
        elif state.fed < len(prompt):
            state.table.extend(list(prompt[state.fed :]) + list(output))
        else:
            state.table.extend(output[state.fed - len(prompt) :])
        if self._corpus is not None:
            state.tokens.extend((list(prompt) + list(output))[len(state.tokens) :])
        state.fed = total
        return state

    def _best_width(self, trees: Sequence[DraftTree], levels: Sequence[list[int]]) -> int:
        """The batch's verify width with the most expected tokens per measured second.

        A tree's first nodes are its greedy chain, so cutting it to k nodes keeps the chain's
        first k tokens; nodes past the chain (other branches) are counted as costs only.
        """
        expected = []
        for tree, chain in zip(trees, levels, strict=True):
            gains = self.confidence.expected_accepted(chain)
            expected.append(
                [gains[min(k, len(gains)) - 1] if gains else 0.0 for k in range(1, len(tree) + 1)]
            )
        return best_width(expected, self.decode_cost, self.verify_cost)

    def _table(self) -> NgramTable:
        s = self.settings
        sources = (self._corpus,) if self._corpus is not None else ()
        return NgramTable(s.max_n, s.max_entries_per_level, sources=sources)

    def _controller(self) -> DraftLengthController:
        s = self.settings
        return DraftLengthController(
            max_len=max(1, s.max_width - 1),
            min_acceptance=s.min_acceptance,
            token_budget=s.token_budget,
        )


def cut_tree(tree: DraftTree, matcher: TokenMatcher) -> DraftTree:
    """The nodes whose path from the root `matcher` accepts; the matcher ends where it began.

    A rejected node drops its whole subtree. Cost: one accept and one rollback per kept node
    plus one accept per rejected node (no vocabulary bitmask).
    """
    children: list[list[int]] = [[] for _ in range(len(tree) + 1)]  # slot 0: the root
    for i, parent in enumerate(tree.parents):
        children[parent + 1].append(i)
    kept: dict[int, int] = {}  # old index -> new index
    tokens: list[int] = []
    parents: list[int] = []

    def visit(slot: int) -> None:
        for i in children[slot]:
            if not matcher.accept_token(tree.tokens[i]):
                continue
            parent = tree.parents[i]
            kept[i] = len(tokens)
            tokens.append(tree.tokens[i])
            parents.append(ROOT if parent == ROOT else kept[parent])
            visit(i + 1)
            matcher.rollback(1)

    visit(0)
    return DraftTree(tokens, parents)


_EMPTY = DraftTree([], [])


def _first_nodes(tree: DraftTree, cap: int) -> DraftTree:
    """The first `cap` nodes: still a tree (parents come first), the greedy chain kept whole."""
    return tree if len(tree) <= cap else DraftTree(tree.tokens[:cap], tree.parents[:cap])


def _pack(
    trees: Sequence[DraftTree], roots: Sequence[int], width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat tokens and ancestor masks; padding nodes are extra children of the root."""
    batch = len(trees)
    tokens = np.zeros((batch, width), dtype=np.int64)
    mask = np.zeros((batch, width, width), dtype=bool)
    mask[:, :, 0] = True
    mask[:, np.arange(width), np.arange(width)] = True
    for b, (tree, root) in enumerate(zip(trees, roots, strict=True)):
        tokens[b, :] = root  # padding repeats the root token; verify may accept it only if right
        tokens[b, 1 : len(tree) + 1] = tree.tokens
        for i, parent in enumerate(tree.parents):
            if parent != ROOT:
                mask[b, i + 1] |= mask[b, parent + 1]
    return tokens.reshape(-1), mask.reshape(-1)
