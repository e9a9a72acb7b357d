"""AnpdDrafter: batch layout, feeding, adaptivity, APAR inheritance and families, grammar cuts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_sgl.config import AparArgs
from apar_sgl.ngram import DraftTree
from apar_sgl.ngram.drafter import AnpdDrafter
from apar_sgl.ngram.settings import AnpdSettings
from apar_sgl.ngram.tree import ROOT, cut_tree

CYCLE = [1, 2, 3, 4] * 3  # every n-gram has one continuation


class PrefixMatcher:
    """Fake grammar: accepts a token when the path so far plus it is in `allowed`."""

    def __init__(self, allowed: set[tuple[int, ...]]) -> None:
        self.allowed = allowed
        self.path: list[int] = []
        self.accepts = 0

    def accept_token(self, token: int) -> bool:
        self.accepts += 1
        if (*self.path, token) not in self.allowed:
            return False
        self.path.append(token)
        return True

    def rollback(self, num_tokens: int) -> None:
        assert 0 < num_tokens <= len(self.path)
        del self.path[-num_tokens:]


# Unlike the server's defaults, every match drafts and no step is timed: tests see the table.
DRAFT_EVERY_MATCH = {
    "max_n": 4,
    "branching": 1,
    "token_budget": 64,
    "min_acceptance": 0.25,
    "min_confidence": 0.0,
    "shared_corpus": False,
    "measure_cost": False,
}


def drafter(width: int = 8, **kwargs) -> AnpdDrafter:
    return AnpdDrafter(AnpdSettings(max_width=width, **{**DRAFT_EVERY_MATCH, **kwargs}))


def grow(d: AnpdDrafter, rid: str, prompt: list[int], steps: int) -> list[int]:
    """Draft and fully accept `steps` times; the output so far (last drafts not yet fed)."""
    output: list[int] = []
    for _ in range(steps):
        batch = d.draft_batch([rid], [prompt], [output])
        drafts = batch.tokens[1 : 1 + batch.drafted[0]].tolist()
        d.record([rid], [len(drafts)])
        output += drafts or [prompt[len(output) % len(prompt)]]
    return output


def test_width_below_one_is_rejected():
    with pytest.raises(ValueError, match="max_width must be >= 1, got 0"):
        drafter(width=0)


def test_no_match_means_no_draft_only_the_root():
    d = drafter()
    batch = d.draft_batch(["a"], [[10, 11, 12]], [[13]])
    assert batch.width == 1
    assert batch.drafted == [0]
    assert batch.tokens.tolist() == [13]  # the root is the last output token
    assert batch.mask.tolist() == [True]


def test_plain_draft_is_the_layout_of_a_batch_with_nothing_matched():
    """What the worker falls back to when drafting raised: every request verifies its root."""
    prompts, outputs = [[10, 11, 12], CYCLE], [[13], []]
    plain = drafter().plain_draft(prompts, outputs)
    unmatched = drafter().draft_batch(["a", "b"], [[10, 11, 12], [7]], [[13], []])
    assert plain.width == unmatched.width == 1 and plain.drafted == unmatched.drafted == [0, 0]
    assert plain.tokens.tolist() == [13, CYCLE[-1]]
    assert plain.mask.tolist() == unmatched.mask.tolist()


def test_root_is_the_last_prompt_token_before_any_output():
    batch = drafter().draft_batch(["a"], [CYCLE], [[]])
    assert batch.tokens[0] == CYCLE[-1]
    assert batch.tokens[1:].tolist() == [1]  # first step drafts min_len = 1 token


def test_batch_layout_pads_short_drafts_with_root_children():
    d = drafter()
    out = grow(d, "long", CYCLE, 3)  # full acceptance: the draft length grows to 4
    assert out == [1, 2, 3, 4, 1, 2]
    batch = d.draft_batch(["long", "none"], [CYCLE, [7, 8]], [out, [9]])
    assert batch.drafted == [4, 0]
    assert batch.width == 5
    tokens = batch.tokens.reshape(2, 5)
    assert tokens[0].tolist() == [2, 3, 4, 1, 2]
    assert tokens[1].tolist() == [9] * 5  # padding repeats the root
    mask = batch.mask.reshape(2, 5, 5)
    assert mask[0].tolist() == np.tril(np.ones((5, 5), dtype=bool)).tolist()  # one chain
    pad = np.eye(5, dtype=bool)
    pad[:, 0] = True  # padding nodes see only the root and themselves
    assert mask[1].tolist() == pad.tolist()


def test_adaptive_length_grows_on_full_acceptance_and_shrinks_on_rejection():
    d = drafter(width=8)
    out = grow(d, "a", CYCLE, 5)
    assert d.draft_batch(["a"], [CYCLE], [out]).drafted == [6]
    d.record(["a"], [1])
    assert d.draft_batch(["a"], [CYCLE], [out]).drafted == [2]  # accepted + 1
    assert d.acceptance("a") < 1.0
    assert d.acceptance("missing") is None


def test_draft_never_exceeds_width_minus_one():
    d = drafter(width=3)
    out = grow(d, "a", CYCLE, 10)
    batch = d.draft_batch(["a"], [CYCLE], [out])
    assert batch.drafted == [2] and batch.width == 3


def test_accepted_output_tokens_feed_the_table():
    d = drafter()
    prompt = [5, 6, 7]
    assert d.draft_batch(["a"], [prompt], [[8, 9]]).drafted == [0]
    batch = d.draft_batch(["a"], [prompt], [[8, 9, 5, 6, 7, 8]])  # 8 followed 7 before
    assert batch.tokens[1:].tolist() == [9]


def test_record_counts_stats_and_clamps_to_the_draft():
    d = drafter()
    out = grow(d, "a", CYCLE, 2)  # drafts of 1 then 2, all accepted
    d.record(["unknown"], [3])
    stats = d.stats.as_dict()
    assert stats["decode_steps"] == 2
    assert stats["drafted_tokens"] == stats["accepted_tokens"] == 3
    assert stats["accept_length"] == pytest.approx(2.5)
    assert stats["drafting_steps"] == 2
    assert stats["accept_length_when_drafting"] == pytest.approx(2.5)
    d.draft_batch(["b"], [[7, 8]], [[]])  # no match: a plain decode step
    d.record(["b"], [0])
    stats = d.stats.as_dict()
    assert (stats["decode_steps"], stats["drafting_steps"]) == (3, 2)
    assert stats["accept_length"] == pytest.approx(6 / 3)
    assert stats["accept_length_when_drafting"] == pytest.approx(2.5)
    assert d.draft_batch(["a"], [CYCLE], [out]).drafted == [3]
    d.record(["a"], [99])  # more than drafted: clamped
    assert d.stats.accepted_tokens == d.stats.drafted_tokens == 6


def test_no_cross_request_leakage():
    d = drafter()
    grow(d, "a", CYCLE, 3)
    assert d.draft_batch(["b"], [[1, 2]], [[3]]).drafted == [0]


def test_shared_corpus_lets_later_requests_draft_from_finished_ones():
    d = drafter(shared_corpus=True)
    d.draft_batch(["a"], [[9, 8]], [[5, 6, 7, 5, 6, 7]])
    assert d.draft_batch(["b"], [[1, 5]], [[6]]).drafted == [0]  # a is still running
    d.release(["a"])
    batch = d.draft_batch(["c"], [[1, 5]], [[6]])
    assert batch.drafted[0] > 0 and batch.tokens[1] == 7


def test_release_forgets_a_request():
    d = drafter()
    grow(d, "a", CYCLE, 2)
    d.release(["a", "never-seen"])
    assert "a" not in d
    assert d.acceptance("a") is None


def test_child_inherits_the_parent_table():
    d = drafter()
    parent_prompt = [20, 21, 22, 23, 24]
    d.draft_batch(["p"], [parent_prompt], [[30, 31, 32, 33]])
    assert not d.inherit("unknown", "x")
    assert d.inherit("p", "p-fork0")
    assert d.stats.inherited_tables == 1
    d.release(["p"])  # the child keeps its copy
    child_prompt = [*parent_prompt, 30, 99]  # the prefix up to the fork, then the child token
    batch = d.draft_batch(["p-fork0"], [child_prompt], [[31]])
    assert batch.tokens[1:].tolist() == [32]


def test_child_table_is_independent_of_the_parent():
    d = drafter()
    d.draft_batch(["p"], [[1, 2, 3]], [[]])
    d.inherit("p", "c")
    d.draft_batch(["c"], [[1, 2, 3, 9]], [[1, 2, 5]])  # the child sees 1 2 -> 5
    parent = d.draft_batch(["p"], [[1, 2, 3]], [[1, 2]])
    assert parent.tokens[1:].tolist() == [3]


def test_siblings_draft_from_each_other_through_the_family_table():
    d = drafter()
    prompt = [1, 2, 3]
    d.draft_batch(["p"], [prompt], [[4]])
    assert d.inherit("p", "p-fork0") and d.inherit("p", "p-fork1")
    d.draft_batch(["other"], [[8, 8]], [[]])
    assert d.inherit("other", "other-fork0")  # another parent: another family
    d.draft_batch(["p-fork0"], [[*prompt, 50]], [[60]])  # first decode: one token so far
    d.draft_batch(["p-fork0"], [[*prompt, 50]], [[60, 61, 62, 63]])
    for _ in range(3):  # full acceptance lets the draft length grow
        d.record(["p-fork1"], [d.draft_batch(["p-fork1"], [[*prompt, 51]], [[60]]).drafted[0]])
    sibling = d.draft_batch(["p-fork1"], [[*prompt, 51]], [[60]])
    assert sibling.tokens[1:].tolist() == [61, 62, 63]
    cousin = d.draft_batch(["other-fork0"], [[8, 8, 51]], [[60]])
    assert cousin.drafted == [0]


def test_release_and_reset_drop_families():
    d = drafter()
    d.draft_batch(["p"], [[1, 2]], [[]])
    d.inherit("p", "c")
    d.release(["p"])
    assert not d.inherit("p", "c2")
    d.reset()
    assert "c" not in d


def test_report_counts_live_tables_and_families_until_released():
    d = drafter()
    d.draft_batch(["p"], [[1, 2]], [[]])
    d.inherit("p", "p-fork0")
    assert (d.report()["live_tables"], d.report()["live_families"]) == (2, 1)
    d.release(["p", "p-fork0"])
    assert (d.report()["live_tables"], d.report()["live_families"]) == (0, 0)


def test_cut_tree_drops_rejected_subtrees_and_restores_the_matcher():
    # root -> 1 -> 2 -> 3, root -> 4 -> 5
    tree = DraftTree([1, 2, 3, 4, 5], [ROOT, 0, 1, ROOT, 3])
    matcher = PrefixMatcher({(1,), (1, 2), (4,), (4, 5), (2,), (2, 3)})
    kept = cut_tree(tree, matcher)
    assert kept == DraftTree([1, 2, 4, 5], [ROOT, 0, ROOT, 2])
    assert matcher.path == []
    assert matcher.accepts == 5  # 4 kept + 1 rejected (3); nothing below a rejection


@st.composite
def trees(draw) -> DraftTree:
    size = draw(st.integers(0, 12))
    parents = [draw(st.integers(ROOT, i - 1)) for i in range(size)]
    tokens = draw(st.lists(st.integers(0, 3), min_size=size, max_size=size))
    return DraftTree(tokens, parents)


@given(trees(), st.sets(st.lists(st.integers(0, 3), min_size=1, max_size=4).map(tuple)))
@settings(max_examples=200, deadline=None)
def test_cut_tree_keeps_exactly_the_accepted_paths(tree, allowed):
    closed = {p for p in allowed if all(p[:i] in allowed for i in range(1, len(p)))}
    matcher = PrefixMatcher(closed)
    kept = cut_tree(tree, matcher)
    assert matcher.path == []
    expected = sorted(tuple(p) for p in _node_paths(tree) if tuple(p) in closed)
    assert sorted(tuple(p) for p in _node_paths(kept)) == expected
    assert all(p == ROOT or p < i for i, p in enumerate(kept.parents))


def _node_paths(tree: DraftTree) -> list[list[int]]:
    return [tree._path_to(i) for i in range(len(tree))]


def test_draft_batch_cuts_grammar_rejected_drafts_and_counts_them():
    d = drafter()
    out = grow(d, "a", CYCLE, 4)  # draft length 5 now; the draft would be 3 4 1 2 3
    matcher = PrefixMatcher({(3,), (3, 4)})
    batch = d.draft_batch(["a", "b"], [CYCLE, [7]], [out, [8]], [matcher, None])
    assert batch.drafted == [2, 0]
    assert batch.tokens.reshape(2, -1)[0].tolist() == [2, 3, 4]
    assert d.stats.cut_tokens == 3
    d.record(["a", "b"], [2, 0])
    assert d.stats.accepted_tokens == 1 + 2 + 3 + 4 + 2


def test_drafter_imports_neither_torch_nor_sglang():
    code = (
        "import sys, apar_sgl.ngram.drafter\n"
        "bad = [m for m in ('torch', 'sglang') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_branching_tree_never_exceeds_the_reserved_width():
    d = drafter(width=4, branching=3, min_confidence=0.0)
    history = [1, 2, 8, 9, 1, 3, 8, 9, 1, 4, 8, 9, 1]  # after 1: 2, 3 or 4, each then 8, 9
    for _ in range(4):  # full acceptance grows the chain to width - 1 = 3
        d.record(["a"], d.draft_batch(["a"], [history], [[]]).drafted)
    batch = d.draft_batch(["a"], [history], [[]])
    assert batch.width == 4 and batch.drafted == [3]  # 3 candidates x 3 tokens, cut to 3 nodes
    assert len(batch.tokens) == batch.width


def test_measured_costs_decide_whether_a_batch_verifies_its_drafts():
    def draft_after(decode_s: float, verify_per_token_s: float) -> int:
        d = drafter(measure_cost=True)
        for tokens in (2, 3, 4, 5) * 2:
            d.observe_step(verified=True, tokens=tokens, seconds=verify_per_token_s * tokens)
        d.observe_step(verified=False, tokens=1, seconds=decode_s)
        grow(d, "a", CYCLE, 3)
        return d.draft_batch(["a"], [CYCLE], [CYCLE[:6]]).width

    assert draft_after(decode_s=0.050, verify_per_token_s=0.001) > 1  # cheap verify: draft
    assert draft_after(decode_s=0.050, verify_per_token_s=0.050) == 1  # each token costs a step


def test_report_adds_fitted_step_times_once_measured():
    d = drafter(width=4)
    assert "decode_ms_1" not in d.report() and "verify_ms_2" not in d.report()
    d.observe_step(verified=False, tokens=1, seconds=0.050)
    for tokens in (2, 4):
        d.observe_step(verified=True, tokens=tokens, seconds=0.040 + 0.010 * tokens)
    report = d.report()
    assert report["decode_ms_1"] == pytest.approx(50.0)
    assert report["verify_ms_2"] == pytest.approx(60.0)
    assert report["verify_ms_4"] == pytest.approx(80.0)
    assert report["decode_steps"] == d.stats.decode_steps


def test_settings_come_from_the_server_args():
    args = AparArgs(
        anpd_max_n=5,
        anpd_branching=2,
        anpd_token_budget=9,
        anpd_min_acceptance=0.5,
        anpd_min_confidence=0.7,
        anpd_shared_corpus=True,
        anpd_measure_cost=False,
    )
    s = AnpdSettings.from_args(args, max_width=3)
    assert (s.max_width, s.max_n, s.branching, s.token_budget) == (3, 5, 2, 9)
    assert (s.min_acceptance, s.min_confidence, s.shared_corpus, s.measure_cost) == (
        0.5,
        0.7,
        True,
        False,
    )


def test_every_anpd_server_arg_is_a_drafter_setting():
    """`from_args` strips the prefix: a new `anpd_*` field needs a setting of the same name."""
    import dataclasses

    anpd = [f.name for f in dataclasses.fields(AparArgs) if f.name.startswith("anpd_")]
    settings = AnpdSettings.from_args(AparArgs(), max_width=8)
    assert [getattr(settings, name.removeprefix("anpd_")) for name in anpd] == [
        getattr(AparArgs(), name) for name in anpd
    ]
