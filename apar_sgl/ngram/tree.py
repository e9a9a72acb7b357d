"""A small token tree of draft continuations, stored as parent indices."""

from __future__ import annotations

import logging
from typing import NamedTuple, Protocol

logger = logging.getLogger(__name__)

ROOT = -1
"""Parent index of a node that continues the last accepted token directly."""


class DraftTree(NamedTuple):
    """Draft nodes in topological order: `parents[i]` is ROOT or an index smaller than i."""

    tokens: list[int]
    parents: list[int]

    def __len__(self) -> int:
        return len(self.tokens)

    def depths(self) -> list[int]:
        """Depth of each node; the children of the root have depth 1."""
        out: list[int] = []
        for parent in self.parents:
            out.append(1 if parent == ROOT else out[parent] + 1)
        return out

    def ancestor_mask(self) -> list[list[bool]]:
        """mask[i][j] is True when node j is node i or one of its ancestors (tree attention)."""
        mask: list[list[bool]] = []
        for i, parent in enumerate(self.parents):
            row = [False] * len(self.parents) if parent == ROOT else list(mask[parent])
            row[i] = True
            mask.append(row)
        return mask

    def paths(self) -> list[list[int]]:
        """Token sequence from the root to each leaf, in node order of the leaves."""
        has_child = {p for p in self.parents if p != ROOT}
        leaves = [i for i in range(len(self.tokens)) if i not in has_child]
        return [self._path_to(i) for i in leaves]

    def _path_to(self, node: int) -> list[int]:
        path: list[int] = []
        while node != ROOT:
            path.append(self.tokens[node])
            node = self.parents[node]
        return path[::-1]


class TokenMatcher(Protocol):
    """A grammar cursor at the request's current position (e.g. an xgrammar GrammarMatcher)."""

    def accept_token(self, token: int) -> bool: ...

    def rollback(self, num_tokens: int) -> None: ...


EMPTY = DraftTree([], [])


def first_nodes(tree: DraftTree, cap: int) -> DraftTree:
    """The first `cap` nodes: still a tree (parents come first), the greedy chain kept whole."""
    return tree if len(tree) <= cap else DraftTree(tree.tokens[:cap], tree.parents[:cap])


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
