"""The answer of a running APAR fork tree: its stable prefix and the KV it holds. Pure Python.

While branches still decode, only a prefix of the final in-order join is known: the join
stops at the first branch that is not finished (after emitting what it has so far) and at
the first fork marker whose child has not been spawned yet. That prefix never changes
later, so it is what a stream may send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from apar_sgl.tree import Branch

logger = logging.getLogger(__name__)


class StablePrefix(NamedTuple):
    items: list[Any]
    complete: bool  # True: the whole tree has finished and ``items`` is its full join


def stable_join(
    branch: Branch[Any], fork: Any, done: Callable[[Branch[Any]], bool]
) -> StablePrefix:
    """The part of ``join(branch, fork)`` that can no longer change.

    ``done(b)`` tells whether branch ``b`` finished generating. A fork marker without a child
    yet (the child is about to be spawned) ends the stable part.
    """
    out: list[Any] = []
    return StablePrefix(out, _emit_stable(branch, fork, done, out))


def _emit_stable(
    branch: Branch[Any], fork: Any, done: Callable[[Branch[Any]], bool], out: list[Any]
) -> bool:
    """Append the stable items of ``branch``; return whether the whole subtree is complete."""
    k = 0
    for item in branch.output:
        if item != fork:
            out.append(item)
            continue
        if k >= len(branch.children):
            return False
        if not _emit_stable(branch.children[k], fork, done, out):
            return False
        k += 1
    if len(branch.children) > k:
        raise ValueError(f"{len(branch.children)} children but only {k} fork markers")
    return done(branch)


class HeldSpan(NamedTuple):
    """A live branch's context as the KV pool holds it, for counting unique tokens."""

    parent: int | None  # index of the parent span, None for the root
    fork_pos: int  # tokens of the parent's output this branch's context includes
    own_len: int  # this branch's own tokens (forced child token included)


def unique_kv_tokens(prompt_len: int, spans: Sequence[HeldSpan], live: Sequence[bool]) -> int:
    """KV tokens held by the live branches of a tree, each shared token counted once.

    A live branch holds its own tokens and, through the radix tree, its ancestors' tokens
    up to its fork position.
    """
    held = [0] * len(spans)
    for i, span in enumerate(spans):
        if not live[i]:
            continue
        held[i] = max(held[i], span.own_len)
        child, parent = span, span.parent
        while parent is not None:
            held[parent] = max(held[parent], child.fork_pos)
            child, parent = spans[parent], spans[parent].parent
    if not any(live):
        return 0
    return prompt_len + sum(held)
