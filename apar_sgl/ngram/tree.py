"""A small token tree of draft continuations, stored as parent indices."""

from __future__ import annotations

import logging
from typing import NamedTuple

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
