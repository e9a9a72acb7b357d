from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apar_sgl.tree import (
    CHILD_TOKEN,
    FORK_TOKEN,
    Branch,
    BranchView,
    JoinCursor,
    TreeStats,
    join,
    join_text,
    tree_stats,
)

F = -1  # fork marker in token-id trees
REPO = Path(__file__).resolve().parents[2]


def test_join_token_ids_in_order() -> None:
    tree = Branch([1, 2, F, 3, F, 4], [Branch([10, 11]), Branch([20])])
    assert join(tree, F) == [1, 2, 10, 11, 3, 20, 4]


def test_join_nested_children() -> None:
    grandchild = Branch([100])
    tree = Branch([1, F, 2], [Branch([10, F, 11], [grandchild])])
    assert join(tree, F) == [1, 10, 100, 11, 2]


def test_join_string_items() -> None:
    tree = Branch(["a", FORK_TOKEN, "c"], [Branch(["b1", "b2"])])
    assert join(tree, FORK_TOKEN) == ["a", "b1", "b2", "c"]


def test_join_text_drops_control_tokens() -> None:
    tree = Branch(
        f"1. Sleep:{FORK_TOKEN}\n2. Eat:{FORK_TOKEN}\n",
        [Branch(f" well, e.g.{FORK_TOKEN}", [Branch(" eight hours.")]), Branch(" greens.")],
    )
    answer = join_text(tree)
    assert answer == "1. Sleep: well, e.g. eight hours.\n2. Eat: greens.\n"
    assert FORK_TOKEN not in answer and CHILD_TOKEN not in answer


def test_fork_at_edges_and_empty_outputs() -> None:
    tree = Branch([F, F], [Branch([]), Branch([7])])
    assert join(tree, F) == [7]
    assert join_text(Branch("")) == ""


def test_fewer_children_than_forks_is_strict_by_default() -> None:
    tree = Branch([1, F, 2, F], [Branch([5])])
    with pytest.raises(ValueError, match=r"root: 2 fork markers but only 1 children"):
        join(tree, F)
    assert join(tree, F, allow_missing=True) == [1, 5, 2]


def test_missing_grandchild_error_names_its_path() -> None:
    tree = Branch([F], [Branch([F, 3])])
    with pytest.raises(ValueError, match=r"root\.children\[0\]: 1 fork markers"):
        join(tree, F)


def test_more_children_than_forks_always_fails() -> None:
    tree = Branch([1, F], [Branch([2]), Branch([3])])
    with pytest.raises(ValueError, match="2 children but only 1 fork markers"):
        join(tree, F, allow_missing=True)


def test_mixed_text_and_item_outputs_rejected() -> None:
    with pytest.raises(TypeError, match=r"root\.children\[0\]: output is list"):
        join(Branch(f"a{FORK_TOKEN}", [Branch([1])]), FORK_TOKEN)
    with pytest.raises(TypeError, match="join_text needs str outputs"):
        join_text(Branch([1]))


def test_text_tree_needs_nonempty_marker() -> None:
    with pytest.raises(ValueError, match="non-empty str fork marker"):
        join(Branch("abc"), "")


def test_tree_stats_by_hand() -> None:
    # root: 6 items, forks at 2 and 4; child0 has 5 items with a fork at 1; grandchild 4 items
    tree = Branch(
        [1, 2, F, 3, F, 4],
        [Branch([10, F, 11, 12, 13], [Branch([7, 7, 7, 7])]), Branch([20])],
    )
    stats = tree_stats(tree, F)
    # critical = max(6, 2 + 1 + max(5, 1 + 1 + 4), 4 + 1 + 1) = 9
    assert stats == TreeStats(
        branches=4, max_depth=2, total_items=16, branch_items=(6, 5, 4, 1), critical_path=9
    )
    assert stats.speedup_bound == pytest.approx(16 / 9)


def test_tree_stats_text_counts_marker_as_one_item() -> None:
    stats = tree_stats(Branch(f"ab{FORK_TOKEN}c", [Branch("xyz")]), FORK_TOKEN)
    assert stats.branch_items == (4, 3)
    assert stats.critical_path == 2 + 1 + 3
    assert tree_stats(Branch([]), F) == TreeStats(1, 0, 0, (0,), 0)


def _cut(items: list[int], draw: st.DrawFn, depth: int) -> Branch[int]:
    """Cut random non-overlapping spans of ``items`` out into children, recursively."""
    if depth == 0 or not items:
        return Branch(list(items))
    bounds = sorted(draw(st.lists(st.integers(0, len(items)), max_size=6)))
    spans = list(zip(bounds[::2], bounds[1::2], strict=False))
    output: list[int] = []
    children: list[Branch[int]] = []
    pos = 0
    for start, end in spans:
        output += items[pos:start] + [F]
        children.append(_cut(items[start:end], draw, depth - 1))
        pos = end
    output += items[pos:]
    return Branch(output, children)


@st.composite
def cut_trees(draw: st.DrawFn) -> tuple[list[int], Branch[int]]:
    items = draw(st.lists(st.integers(0, 50), max_size=40))
    return items, _cut(items, draw, depth=3)


@given(cut_trees())
def test_join_inverts_any_cutting(case: tuple[list[int], Branch[int]]) -> None:
    items, tree = case
    assert join(tree, F) == items
    stats = tree_stats(tree, F)
    forks = stats.branches - 1
    assert stats.total_items == len(items) + forks
    assert len(tree.output) <= stats.critical_path <= stats.total_items


def _done(*branches: Branch[int]):
    ids = {id(b) for b in branches}
    return lambda b: id(b) in ids


def _stable(root: Branch[int], done) -> tuple[list[int], bool]:
    cursor = JoinCursor.over(root, F, done)
    return cursor.items, cursor.advance()


def test_stable_prefix_of_a_complete_tree_is_the_full_join() -> None:
    kid = Branch([5, 6])
    root = Branch([1, F, 2], [kid])
    assert _stable(root, _done(root, kid)) == (join(root, F), True)


def test_running_child_stops_the_prefix_after_its_own_tokens() -> None:
    kid = Branch([5])
    root = Branch([1, F, 2, 3], [kid])
    assert _stable(root, _done(root)) == ([1, 5], False)


def test_fork_without_child_yet_stops_the_prefix() -> None:
    root = Branch([1, 2, F, 3])
    assert _stable(root, _done(root)) == ([1, 2], False)
    assert _stable(Branch([1, 2]), _done()) == ([1, 2], False)


def test_stable_prefix_with_more_children_than_markers_is_an_error() -> None:
    kids = [Branch([1]), Branch([2])]
    with pytest.raises(ValueError, match="2 children but only 1 fork markers"):
        _stable(Branch([F], kids), _done(*kids))


class _Growing:
    """A branch of a tree being decoded: a prefix of its final output, its spawned children."""

    def __init__(self, final: Branch[int]) -> None:
        self.final, self.output, self.children, self.done = final, [], [], False

    def grow(self) -> None:
        item = self.final.output[len(self.output)]
        self.output.append(item)
        if item == F:
            self.children.append(_Growing(self.final.children[len(self.children)]))

    def live(self) -> list[_Growing]:
        own = [] if self.done else [self]
        return own + [b for c in self.children for b in c.live()]


def _reference_stable(branch: _Growing, out: list[int]) -> bool:
    """The stable prefix walked from scratch (the algorithm before the cursor)."""
    k = 0
    for item in branch.output:
        if item != F:
            out.append(item)
            continue
        if k >= len(branch.children) or not _reference_stable(branch.children[k], out):
            return False
        k += 1
    return branch.done


@given(cut_trees(), st.randoms(use_true_random=False), st.integers(1, 3))
def test_incremental_join_equals_the_full_join_at_every_step(case, rng, per_step) -> None:
    items, final = case
    root = _Growing(final)
    cursor = JoinCursor(
        root, F, lambda b, path: BranchView(b.output, len(b.output), b.done, b.children)
    )
    while live := root.live():
        for branch in rng.sample(live, min(per_step, len(live))):  # branches of one batch
            if len(branch.output) < len(branch.final.output):
                branch.grow()
            else:
                branch.done = True
        complete = cursor.advance()
        expected: list[int] = []
        assert complete == _reference_stable(root, expected)
        assert cursor.items == expected
    assert cursor.items == join(final, F) == items


def test_pure_modules_import_without_sglang_or_torch() -> None:
    code = (
        "import sys, apar_sgl.tree, apar_sgl.held_kv, apar_sgl.fork_policy, "
        "apar_sgl.train.convert, apar_sgl.train.prompts; "
        "print(sorted(m for m in ('sglang', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
