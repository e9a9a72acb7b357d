"""APAR control tokens, the fork tree of one answer and its in-order join.

A branch's output holds one fork marker per child it spawned; the answer is the branch's
output with the k-th marker replaced by the k-th child's joined output, recursively. Outputs
are either item sequences (token ids, strings as items) where a marker is an item equal to
``fork``, or ``str`` texts where a marker is the substring ``fork``. Pure Python.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
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
    cursor = JoinCursor.over(branch, fork, missing="skip" if allow_missing else "error")
    cursor.advance()
    return "".join(cursor.items) if text else cursor.items


def join_text(
    branch: Branch[str], fork_marker: str = FORK_TOKEN, *, allow_missing: bool = False
) -> str:
    """In-order join of a tree whose outputs are texts containing ``fork_marker``."""
    if not isinstance(branch.output, str):
        raise TypeError(f"join_text needs str outputs, got {type(branch.output).__name__}")
    return join(branch, fork_marker, allow_missing=allow_missing)


def tree_stats(branch: Branch[T], fork: Any, *, allow_missing: bool = False) -> TreeStats:
    """Count branches, depth, items and the critical path of a fork tree."""
    join(branch, fork, allow_missing=allow_missing)  # checks markers against children
    text = isinstance(branch.output, str)
    items: list[int] = []
    max_depth, critical = _stats(branch, fork, text, 0, items)
    return TreeStats(len(items), max_depth, sum(items), tuple(items), critical)


class BranchView(NamedTuple):
    """What a join cursor reads of one branch at one moment."""

    items: Sequence[Any]  # its output so far; only ``items[:stable]`` is read
    stable: int  # how many items can no longer change
    done: bool  # the branch finished: ``items[:stable]`` is all of it
    children: Sequence[Any]  # its children so far, the k-th for its k-th fork marker


@dataclass(slots=True)
class _Frame:
    node: Any
    path: str
    pos: int = 0  # items of the node already joined
    k: int = 0  # children already entered
    view: BranchView | None = None  # kept once the node is done (it cannot change)


class JoinCursor:
    """The in-order join of a fork tree as far as it is known, extended as branches grow.

    The one walker of the join: ``join`` runs it once over a finished tree; a running tree
    calls ``advance`` after each step, which reads only what is new since the last call.
    It stops at the first branch that is not done (after its stable items) and, with
    ``missing="stop"``, at the first fork marker without a child yet; ``"skip"`` passes such
    a marker, ``"error"`` raises. ``view(node)`` reads a node as a ``BranchView``.
    """

    __slots__ = ("items", "complete", "_fork", "_view", "_missing", "_stack")

    def __init__(
        self, root: Any, fork: Any, view: Callable[[Any, str], BranchView], missing: str = "stop"
    ) -> None:
        if missing not in ("stop", "skip", "error"):
            raise ValueError(f"missing must be stop, skip or error; got {missing!r}")
        self.items: list[Any] = []  # the join so far; it only ever grows
        self.complete = False  # every branch is done and joined
        self._fork, self._view, self._missing = fork, view, missing
        self._stack = [_Frame(root, "root")]

    @classmethod
    def over(
        cls,
        branch: Branch[Any],
        fork: Any,
        done: Callable[[Branch[Any]], bool] = lambda b: True,
        missing: str = "stop",
    ) -> JoinCursor:
        """A cursor over a ``Branch`` tree; ``done(b)`` tells whether ``b`` finished."""
        text = isinstance(branch.output, str)
        if text and (not isinstance(fork, str) or not fork):
            raise ValueError(f"text trees need a non-empty str fork marker, got {fork!r}")

        def view(b: Branch[Any], path: str) -> BranchView:
            if isinstance(b.output, str) != text:
                kind = "str" if text else "item-sequence"
                raise TypeError(f"{path}: output is {type(b.output).__name__}, tree is {kind}")
            items = _text_items(b.output, fork) if text else b.output
            return BranchView(items, len(items), done(b), b.children)

        return cls(branch, fork, view, missing)

    def advance(self) -> bool:
        """Join what became stable since the last call; return whether the join is complete."""
        stack, out, fork = self._stack, self.items, self._fork
        while stack:
            frame = stack[-1]
            view = frame.view or self._view(frame.node, frame.path)
            if view.done:
                frame.view = view
            items, children, pos = view.items, view.children, frame.pos
            while pos < view.stable:
                item = items[pos]
                if item != fork:
                    out.append(item)
                elif frame.k < len(children):
                    break
                elif self._missing == "stop":
                    break
                elif self._missing == "error":
                    raise ValueError(
                        f"{frame.path}: {_markers(view, fork)} fork markers but only "
                        f"{len(children)} children "
                        "(pass allow_missing=True while children are still being spawned)"
                    )
                pos += 1
            frame.pos = pos
            if pos < view.stable:
                if frame.k >= len(children):
                    return False  # the marker's child is not spawned yet
                frame.pos += 1
                frame.k += 1
                stack.append(_Frame(children[frame.k - 1], f"{frame.path}.children[{frame.k - 1}]"))
                continue
            if len(children) > frame.k:
                raise ValueError(
                    f"{frame.path}: {len(children)} children but only {frame.k} fork markers"
                )
            if not view.done:
                return False
            stack.pop()
        self.complete = True
        return True


def _markers(view: BranchView, fork: Any) -> int:
    return sum(1 for item in view.items[: view.stable] if item == fork)


def _text_items(output: str, fork: str) -> list[str]:
    """A text output as items: its segments between markers, with ``fork`` between them."""
    items: list[str] = []
    for k, segment in enumerate(output.split(fork)):
        items += [fork, segment] if k else [segment]
    return items


def _segments(output: Sequence[Any], fork: Any, text: bool) -> list[Any]:
    """``output`` split at its fork markers."""
    if text:
        return output.split(fork)
    segments: list[list[Any]] = [[]]
    for item in output:
        if item == fork:
            segments.append([])
        else:
            segments[-1].append(item)
    return segments


def _stats(
    branch: Branch[Any], fork: Any, text: bool, depth: int, items: list[int]
) -> tuple[int, int]:
    """Append per-branch item counts (pre-order); return (max depth, critical path)."""
    segments = _segments(branch.output, fork, text)
    length = sum(len(s) for s in segments) + len(segments) - 1
    items.append(length)
    max_depth, critical, position = depth, length, -1
    for k, child in enumerate(branch.children):
        position += len(segments[k]) + 1
        child_depth, child_critical = _stats(child, fork, text, depth + 1, items)
        max_depth = max(max_depth, child_depth)
        critical = max(critical, position + 1 + child_critical)
    return max_depth, critical
