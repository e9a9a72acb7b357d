"""The KV a running APAR fork tree holds, each token shared through the radix tree once. Pure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

logger = logging.getLogger(__name__)


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
