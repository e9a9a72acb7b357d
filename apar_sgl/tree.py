"""APAR control tokens, the fork tree of one answer and its in-order join.

A branch's output holds one fork marker per child it spawned; the answer is the branch's
output with the k-th marker replaced by the k-th child's joined output, recursively. Outputs
are either item sequences (token ids, strings as items) where a marker is an item equal to
``fork``, or ``str`` texts where a marker is the substring ``fork``. Pure Python.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

logger = logging.getLogger(__name__)

FORK_TOKEN = "[Fork]"
CHILD_TOKEN = "[Child]"

T = TypeVar("T")


@dataclass(slots=True)
class Branch(Generic[T]):
    """One sequence of a fork tree: its own output and its children, one per fork marker.

    A child's output starts after its forced child token, which it does not contain.
    """

    output: Sequence[T] = field(default_factory=list)
    children: list[Branch[T]] = field(default_factory=list)


class TreeStats(NamedTuple):
    """Shape of a fork tree; a fork marker counts as one item."""

    branches: int
    max_depth: int  # 0 for a tree without children
    total_items: int
    branch_items: tuple[int, ...]  # per branch, pre-order (root first)
    critical_path: int  # longest chain of sequential items; a child starts at its fork

    @property
    def speedup_bound(self) -> float:
        """Items per sequential step if every branch decodes in parallel."""
        return self.total_items / self.critical_path if self.critical_path else 1.0


def join(branch: Branch[T], fork: Any, *, allow_missing: bool = False) -> Any:
    """In-order join of ``branch``: a ``str`` for text outputs, else a list of items.

    ``allow_missing`` accepts fewer children than fork markers (a child not yet spawned);
    a missing child contributes nothing. More children than markers is always an error.
    """
    text = isinstance(branch.output, str)
    out: list[Any] = []
    _emit(branch, fork, allow_missing, text, "root", out)
    return "".join(out) if text else out


def join_text(
    branch: Branch[str], fork_marker: str = FORK_TOKEN, *, allow_missing: bool = False
) -> str:
    """In-order join of a tree whose outputs are texts containing ``fork_marker``."""
    if not isinstance(branch.output, str):
        raise TypeError(f"join_text needs str outputs, got {type(branch.output).__name__}")
    return join(branch, fork_marker, allow_missing=allow_missing)


def tree_stats(branch: Branch[T], fork: Any, *, allow_missing: bool = False) -> TreeStats:
    """Count branches, depth, items and the critical path of a fork tree."""
    text = isinstance(branch.output, str)
    items: list[int] = []
    max_depth, critical = _stats(branch, fork, allow_missing, text, "root", 0, items)
    return TreeStats(len(items), max_depth, sum(items), tuple(items), critical)


def _emit(
    branch: Branch[Any], fork: Any, allow_missing: bool, text: bool, path: str, out: list[Any]
) -> None:
    segments = _checked_segments(branch, fork, allow_missing, text, path)
    for k, segment in enumerate(segments):
        if text:
            out.append(segment)
        else:
            out.extend(segment)
        if k < len(branch.children):
            _emit(branch.children[k], fork, allow_missing, text, f"{path}.children[{k}]", out)


def _stats(
    branch: Branch[Any],
    fork: Any,
    allow_missing: bool,
    text: bool,
    path: str,
    depth: int,
    items: list[int],
) -> tuple[int, int]:
    """Append per-branch item counts (pre-order); return (max depth, critical path)."""
    segments = _checked_segments(branch, fork, allow_missing, text, path)
    length = sum(len(s) for s in segments) + len(segments) - 1
    items.append(length)
    max_depth, critical, position = depth, length, -1
    for k, child in enumerate(branch.children):
        position += len(segments[k]) + 1
        child_depth, child_critical = _stats(
            child, fork, allow_missing, text, f"{path}.children[{k}]", depth + 1, items
        )
        max_depth = max(max_depth, child_depth)
        critical = max(critical, position + 1 + child_critical)
    return max_depth, critical


def _checked_segments(
    branch: Branch[Any], fork: Any, allow_missing: bool, text: bool, path: str
) -> list[Any]:
    """Split ``branch.output`` at its fork markers and check the children against them."""
    if isinstance(branch.output, str) != text:
        kind = "str" if text else "item-sequence"
        raise TypeError(f"{path}: output is {type(branch.output).__name__}, tree is {kind}")
    if text:
        if not isinstance(fork, str) or not fork:
            raise ValueError(f"text trees need a non-empty str fork marker, got {fork!r}")
        segments: list[Any] = branch.output.split(fork)
    else:
        segments = [[]]
        for item in branch.output:
            if item == fork:
                segments.append([])
            else:
                segments[-1].append(item)
    forks, children = len(segments) - 1, len(branch.children)
    if children > forks:
        raise ValueError(f"{path}: {children} children but only {forks} fork markers")
    if children < forks and not allow_missing:
        raise ValueError(
            f"{path}: {forks} fork markers but only {children} children "
            "(pass allow_missing=True while children are still being spawned)"
        )
    return segments
