"""ANPD drafts for a whole decode batch, in the flat layout SGLang's NGRAM verify path reads.

Pure Python + numpy (no torch, no sglang). `AnpdDrafter` composes three small objects: the
per-request tables (`RequestTables`: observe, inherit, release), the draft policy
(`DraftPolicy`: length controller, confidence gate, cost → width) and the counters
(`AnpdStats`). The batch's draft trees are packed as node 0 = the last accepted token (the
root), then the draft nodes, then padding. With a grammar, drafts the request's matcher
rejects are cut before verification (`cut_tree`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from apar_sgl.ngram.policy import DraftPolicy
from apar_sgl.ngram.requests import RequestTables
from apar_sgl.ngram.settings import AnpdSettings
from apar_sgl.ngram.stats import AnpdStats
from apar_sgl.ngram.tree import ROOT, DraftTree, TokenMatcher, cut_tree

logger = logging.getLogger(__name__)


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
        self.policy = DraftPolicy(settings)
        self.tables = RequestTables(
            settings.max_n,
            settings.max_entries_per_level,
            settings.shared_corpus,
            self.policy.new_controller,
        )

    def __repr__(self) -> str:
        return f"AnpdDrafter({self.settings}, requests={len(self.tables)})"

    def __contains__(self, rid: str) -> bool:
        return rid in self.tables

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
        cap = self.policy.node_cap(len(rids))
        states, trees = [], []
        for rid, prompt, output, matcher in zip(rids, prompts, outputs, matchers, strict=True):
            state = self.tables.observe(rid, prompt, output)
            tree, levels = self.policy.draft(state, len(rids), cap)
            if matcher is not None and len(tree):
                kept = cut_tree(tree, matcher)
                self.stats.cut_tokens += len(tree) - len(kept)
                tree = kept
            state.levels = levels[: max(tree.depths(), default=0)]
            states.append(state)
            trees.append(tree)
        trees = self.policy.fit_width(trees, [state.levels for state in states])
        for state, tree in zip(states, trees, strict=True):
            state.drafted = max(tree.depths(), default=0)
            state.levels = state.levels[: state.drafted]
        width = 1 + max(len(t) for t in trees)
        tokens, mask = _pack(trees, _roots(prompts, outputs), width)
        return BatchDraft(tokens, mask, width, [state.drafted for state in states])

    def plain_draft(
        self, prompts: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]
    ) -> BatchDraft:
        """A step with no drafts (each request verifies only its last token): what the worker
        falls back to when drafting failed, so the batch still decodes."""
        roots = _roots(prompts, outputs)
        tokens, mask = _pack([DraftTree([], []) for _ in roots], roots, 1)
        return BatchDraft(tokens, mask, 1, [0] * len(roots))

    def record(self, rids: Sequence[str], accepted: Sequence[int]) -> None:
        """Accepted draft tokens per request from the step that followed draft_batch (0: plain)."""
        for rid, count in zip(rids, accepted, strict=True):
            state = self.tables.get(rid)
            if state is not None:
                self.stats.record_step(state.drafted, self.policy.record(state, count))

    def report(self) -> dict[str, float]:
        """Counters, live tables (0 once idle: nothing leaked) and the fitted step times (ms)."""
        live = {"live_tables": len(self.tables), "live_families": self.tables.families}
        return self.stats.as_dict() | live | self.policy.step_times_ms()

    def observe_step(self, verified: bool, tokens: int, seconds: float) -> None:
        """Time of one forward step of `tokens` tokens: a verify step or a plain decode step."""
        self.policy.observe_step(verified, tokens, seconds)

    def release(self, rids: Iterable[str]) -> None:
        self.tables.release(rids)

    def reset(self) -> None:
        self.tables.reset()

    def inherit(self, parent_rid: str, child_rid: str) -> bool:
        """Start an APAR child with a fork of its parent's table; False if the parent has none."""
        inherited = self.tables.inherit(parent_rid, child_rid)
        self.stats.inherited_tables += inherited
        return inherited

    def acceptance(self, rid: str) -> float | None:
        state = self.tables.get(rid)
        return None if state is None else state.control.acceptance


def _roots(prompts: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]) -> list[int]:
    """Each request's last token: the root its draft hangs from."""
    return [
        output[-1] if len(output) else prompt[-1]
        for prompt, output in zip(prompts, outputs, strict=True)
    ]


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
