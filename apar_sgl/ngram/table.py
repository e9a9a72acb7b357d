"""Multi-level n-gram count table over token ids, LRU-bounded, with copy-on-write fork."""

from __future__ import annotations

import logging
import operator
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence

from apar_sgl.ngram.tree import ROOT, DraftTree

logger = logging.getLogger(__name__)

Context = tuple[int, ...]
_Level = OrderedDict[Context, "_Entry"]
_MAX_FROZEN_LAYERS = 4


class _Entry:
    """Continuations of one context: token -> (count, last position); `best` is their argmax."""

    __slots__ = ("best", "conts")

    def __init__(self, conts: dict[int, tuple[int, int]], best: int) -> None:
        self.conts = conts
        self.best = best

    def copy(self) -> _Entry:
        return _Entry(dict(self.conts), self.best)

    def add(self, token: int, pos: int, cap: int) -> None:
        old = self.conts.get(token)
        if old is None and len(self.conts) >= cap:
            # the weakest is never `best` unless cap == 1, where the new token becomes best below
            del self.conts[min(self.conts, key=self.conts.__getitem__)]
        stat = (1 if old is None else old[0] + 1, pos)
        self.conts[token] = stat
        best = self.conts.get(self.best)
        # pos is newer than every stored position, so ">= count" means "wins the tie too"
        if best is None or stat[0] >= best[0]:
            self.best = token

    def ranked(self) -> list[int]:
        return sorted(self.conts, key=self.conts.__getitem__, reverse=True)


class NgramTable:
    """Per-request n-gram table: level n (2..max_n) maps the last n-1 tokens to next-token counts.

    Lookups try the longest context first; at each level they read this table, then the frozen
    layers it shares with its forks, then `sources` (e.g. a shared corpus or family table).
    `extend` also writes every n-gram, with this table's context, into each table of `feeds`.
    Not thread-safe; meant for one scheduler process.
    """

    def __init__(
        self,
        max_n: int = 4,
        max_entries_per_level: int = 65536,
        max_continuations: int = 8,
        *,
        sources: Sequence[NgramTable] = (),
        feeds: Sequence[NgramTable] = (),
    ) -> None:
        if max_n < 2:
            raise ValueError(f"max_n must be >= 2 (level n uses n-1 context tokens), got {max_n}")
        if max_entries_per_level < 1:
            raise ValueError(f"max_entries_per_level must be >= 1, got {max_entries_per_level}")
        if max_continuations < 1:
            raise ValueError(f"max_continuations must be >= 1, got {max_continuations}")
        self.max_n = max_n
        self.max_entries_per_level = max_entries_per_level
        self.max_continuations = max_continuations
        self.sources: tuple[NgramTable, ...] = tuple(sources)
        self.feeds: tuple[NgramTable, ...] = tuple(feeds)
        self._levels: list[_Level] = _empty_levels(max_n)
        self._frozen: tuple[list[_Level], ...] = ()  # newest first; shared by forks, never mutated
        self._tail: deque[int] = deque(maxlen=max_n - 1)
        self._pos = 0

    def __repr__(self) -> str:
        return (
            f"NgramTable(max_n={self.max_n}, sizes={self.sizes}, "
            f"frozen_layers={self.frozen_layers}, sources={len(self.sources)}, "
            f"feeds={len(self.feeds)})"
        )

    @property
    def sizes(self) -> tuple[int, ...]:
        """Entries (contexts) held in this table's own levels, for n = 2..max_n."""
        return tuple(len(level) for level in self._levels)

    @property
    def frozen_layers(self) -> int:
        return len(self._frozen)

    @property
    def tail(self) -> Context:
        """The last max_n - 1 tokens seen: the default drafting context."""
        return tuple(self._tail)

    def extend(self, tokens: Iterable[int], *, new_sequence: bool = False) -> None:
        """Add tokens (prompt or accepted), O(max_n) each; `new_sequence` drops the left context."""
        if new_sequence:
            self._tail.clear()
        for token in tokens:
            token = operator.index(token)
            ctx = tuple(self._tail)
            self._insert(ctx, token)
            for feed in self.feeds:
                feed._insert(ctx, token)
            self._tail.append(token)

    def draft(self, k: int, context: Sequence[int] | None = None) -> list[int]:
        """Greedy chain of up to k tokens after `context` (default: own tail); [] when no match."""
        if k < 0:
            raise ValueError(f"draft length k must be >= 0, got {k}")
        return [token for token, _ in self._chain(k, self._context(context))]

    def draft_levels(self, k: int, context: Sequence[int] | None = None) -> list[int]:
        """The level n (context length + 1) each token of `draft(k, context)` matched at."""
        if k < 0:
            raise ValueError(f"draft length k must be >= 0, got {k}")
        return [level for _, level in self._chain(k, self._context(context))]

    def draft_tree(self, k: int, branching: int, context: Sequence[int] | None = None) -> DraftTree:
        """Up to `branching` first tokens (longest context first), each chained to depth k."""
        if k < 0 or branching < 0:
            raise ValueError(f"k and branching must be >= 0, got k={k}, branching={branching}")
        ctx = self._context(context)
        tokens: list[int] = []
        parents: list[int] = []
        for first in self._first_candidates(ctx, branching if k else 0):
            parent = ROOT
            for token in (first, *self.draft(k - 1, (*ctx, first))):
                tokens.append(token)
                parents.append(parent)
                parent = len(tokens) - 1
        return DraftTree(tokens, parents)

    def fork(self, family: NgramTable | None = None) -> NgramTable:
        """O(1) independent copy: both tables keep the current counts as a shared frozen layer.

        With `family`, the child also reads it and writes its n-grams into it, so sibling
        branches forked with the same family table draft from each other's accepted tokens.
        """
        if any(self._levels):
            self._frozen = (self._levels, *self._frozen)
            self._levels = _empty_levels(self.max_n)
        if len(self._frozen) > _MAX_FROZEN_LAYERS:
            self._frozen = (self._merged_frozen(),)
        extra = () if family is None else (family,)
        child = NgramTable(
            self.max_n,
            self.max_entries_per_level,
            self.max_continuations,
            sources=(*self.sources, *(t for t in extra if t not in self.sources)),
            feeds=(*self.feeds, *(t for t in extra if t not in self.feeds)),
        )
        child._frozen = self._frozen
        child._tail.extend(self._tail)
        child._pos = self._pos
        return child

    def _chain(self, k: int, ctx: Context) -> list[tuple[int, int]]:
        """Greedy chain of (token, level) pairs, each looked up longest context first."""
        out: list[tuple[int, int]] = []
        while len(out) < k:
            match = next(iter(self._entries(ctx)), None)
            if match is None:
                break
            level, entry = match
            out.append((entry.best, level))
            ctx = (*ctx, entry.best)[-(self.max_n - 1) :]
        return out

    def _context(self, context: Sequence[int] | None) -> Context:
        if context is None:
            return tuple(self._tail)
        start = max(0, len(context) - (self.max_n - 1))
        return tuple(operator.index(t) for t in context[start:])

    def _insert(self, ctx: Context, token: int) -> None:
        self._pos += 1
        for n in range(2, min(len(ctx) + 1, self.max_n) + 1):
            key = ctx[len(ctx) - (n - 1) :]
            level = self._levels[n - 2]
            entry = level.get(key)
            if entry is None:
                shared = self._frozen_entry(n, key)
                entry = _Entry({}, token) if shared is None else shared.copy()
                level[key] = entry
                if len(level) > self.max_entries_per_level:
                    level.popitem(last=False)
            else:
                level.move_to_end(key)
            entry.add(token, self._pos, self.max_continuations)

    def _frozen_entry(self, n: int, key: Context) -> _Entry | None:
        for layer in self._frozen:
            entry = layer[n - 2].get(key)
            if entry is not None:
                return entry
        return None

    def _entry(self, n: int, key: Context) -> _Entry | None:
        if n > self.max_n:
            return None
        entry = self._levels[n - 2].get(key)
        return entry if entry is not None else self._frozen_entry(n, key)

    def _entries(self, ctx: Context) -> Iterable[tuple[int, _Entry]]:
        """(level, entry) matches, longest context first; within a level: self, then sources."""
        for n in range(min(len(ctx) + 1, self.max_n), 1, -1):
            key = ctx[len(ctx) - (n - 1) :]
            for store in (self, *self.sources):
                entry = store._entry(n, key)
                if entry is not None:
                    yield n, entry

    def _first_candidates(self, ctx: Context, limit: int) -> list[int]:
        out: list[int] = []
        for _, entry in self._entries(ctx):
            for token in entry.ranked():
                if len(out) >= limit:
                    return out
                if token not in out:
                    out.append(token)
        return out

    def _merged_frozen(self) -> list[_Level]:
        """Flatten the frozen layers (newest wins), keeping the most recent entries per level."""
        merged = _empty_levels(self.max_n)
        for layer in reversed(self._frozen):
            for level, frozen_level in zip(merged, layer, strict=True):
                for key, entry in frozen_level.items():
                    level[key] = entry
                    level.move_to_end(key)
        for level in merged:
            while len(level) > self.max_entries_per_level:
                level.popitem(last=False)
        return merged


def _empty_levels(max_n: int) -> list[_Level]:
    return [OrderedDict() for _ in range(max_n - 1)]
