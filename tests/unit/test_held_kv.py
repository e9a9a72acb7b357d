"""Stable prefix of a running fork tree and the KV its live branches hold."""

from __future__ import annotations

import pytest

from apar_sgl.apar_answer import HeldSpan, stable_join, unique_kv_tokens
from apar_sgl.tree import Branch, join

F = -1


def _done(*branches):
    ids = {id(b) for b in branches}
    return lambda b: id(b) in ids


def test_complete_tree_gives_the_full_join():
    kid = Branch([5, 6])
    root = Branch([1, F, 2], [kid])
    prefix = stable_join(root, F, _done(root, kid))
    assert prefix == (join(root, F), True)


def test_running_child_stops_the_prefix_after_its_own_tokens():
    kid = Branch([5])
    root = Branch([1, F, 2, 3], [kid])
    assert stable_join(root, F, _done(root)) == ([1, 5], False)


def test_fork_without_child_yet_stops_the_prefix():
    root = Branch([1, 2, F, 3])
    assert stable_join(root, F, _done(root)) == ([1, 2], False)


def test_running_root_emits_what_it_has():
    root = Branch([1, 2])
    assert stable_join(root, F, _done()) == ([1, 2], False)


def test_more_children_than_markers_is_an_error():
    kids = [Branch([1]), Branch([2])]
    with pytest.raises(ValueError, match="2 children but only 1 fork markers"):
        stable_join(Branch([F], kids), F, _done(*kids))


def test_live_child_holds_its_parent_prefix_once():
    spans = [HeldSpan(None, 0, 10), HeldSpan(0, 4, 3), HeldSpan(0, 8, 2)]
    assert unique_kv_tokens(5, spans, [True, True, True]) == 5 + 10 + 3 + 2
    # the root finished: its tokens up to the deepest live fork stay held
    assert unique_kv_tokens(5, spans, [False, True, True]) == 5 + 8 + 3 + 2
    assert unique_kv_tokens(5, spans, [False, False, False]) == 0
