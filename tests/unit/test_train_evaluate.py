from __future__ import annotations

from apar_sgl.train.evaluate import Node, contains_list, expand
from apar_sgl.tree import join, tree_stats

FORK, CHILD, EOS = 90, 91, 2


class FakeEngine:
    """Answers by the last input token: a root forks twice, a child forks once, a grandchild
    ends; records each call's batch size."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def generate(self, input_ids, sampling_params):
        self.batches.append(len(input_ids))
        outs = []
        for ids in input_ids:
            depth = ids.count(CHILD)
            if depth == 0:
                out = [10, FORK, 11, FORK, EOS]
            elif depth == 1:
                out = [20, FORK, 21, EOS]
            else:
                out = [30, EOS]
            outs.append({"output_ids": out})
        return outs


def test_expand_generates_level_by_level_with_runtime_style_prefixes():
    engine = FakeEngine()
    root = Node([1, 5], 0)
    expand(engine, [root], {}, FORK, CHILD, max_depth=2)
    assert engine.batches == [1, 2, 2]
    first = root.children[0]
    assert first.input_ids == [1, 5, 10, FORK, CHILD]
    assert root.children[1].input_ids == [1, 5, 10, FORK, 11, FORK, CHILD]
    assert first.children[0].input_ids == [1, 5, 10, FORK, CHILD, 20, FORK, CHILD]
    tree = root.branch()
    assert join(tree, FORK) == [10, 20, 30, EOS, 21, EOS, 11, 20, 30, EOS, 21, EOS, EOS]
    stats = tree_stats(tree, FORK)
    assert stats.branches == 5 and stats.max_depth == 2


def test_expand_stops_at_max_depth():
    engine = FakeEngine()
    root = Node([1], 0)
    expand(engine, [root], {}, FORK, CHILD, max_depth=1)
    assert engine.batches == [1, 2]
    assert all(not c.children for c in root.children)
    assert join(root.branch(), FORK, allow_missing=True).count(FORK) == 0


def test_contains_list():
    assert contains_list("Steps:\n1. Mix.\n2. Bake.")
    assert contains_list("- one\n- two")
    assert not contains_list("Paris is the capital of France. It has 2 million people.")
