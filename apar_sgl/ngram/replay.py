"""Replay a known answer through an n-gram table: the fewest decode steps its drafts allow.

Every step verifies the table's whole draft tree and nothing is cut for confidence or cost,
so the count is an upper bound on what ANPD's table can save on that answer, and it does not
depend on the machine. Greedy verification accepts the deepest draft path that matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from apar_sgl.ngram.table import NgramTable
from apar_sgl.ngram.tree import ROOT, DraftTree


def accepted_length(tree: DraftTree, upcoming: Sequence[int]) -> int:
    """Draft tokens greedy verification accepts when the target would write `upcoming`."""
    matches: list[bool] = []
    best = 0
    for token, parent, depth in zip(tree.tokens, tree.parents, tree.depths(), strict=True):
        on_path = parent == ROOT or matches[parent]
        match = on_path and depth <= len(upcoming) and token == upcoming[depth - 1]
        matches.append(match)
        if match:
            best = max(best, depth)
    return best


def replay_steps(
    prompt: Sequence[int], answer: Sequence[int], *, max_n: int, depth: int, branching: int = 1
) -> int:
    """Decode steps for `answer` when each step verifies a `depth`-deep, `branching`-wide draft."""
    table = NgramTable(max_n)
    table.extend(prompt)
    steps = done = 0
    while done < len(answer):
        tree = table.draft_tree(depth, branching)
        step = answer[done : done + accepted_length(tree, answer[done:]) + 1]
        table.extend(step)
        done += len(step)
        steps += 1
    return steps
