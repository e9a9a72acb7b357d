"""The KV the live branches of a fork tree hold."""

from __future__ import annotations

from apar_sgl.held_kv import HeldSpan, unique_kv_tokens


def test_live_child_holds_its_parent_prefix_once():
    spans = [HeldSpan(None, 0, 10), HeldSpan(0, 4, 3), HeldSpan(0, 8, 2)]
    assert unique_kv_tokens(5, spans, [True, True, True]) == 5 + 10 + 3 + 2
    # the root finished: its tokens up to the deepest live fork stay held
    assert unique_kv_tokens(5, spans, [False, True, True]) == 5 + 8 + 3 + 2
    assert unique_kv_tokens(5, spans, [False, False, False]) == 0
