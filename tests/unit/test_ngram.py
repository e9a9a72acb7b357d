"""ANPD n-gram drafter: levels, fallback, updates, bounds, forks, adaptivity, budget."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_sgl.ngram import (
    DraftLengthController,
    DraftTree,
    LevelConfidence,
    NgramTable,
    StepCost,
    best_width,
    draft_budget,
)
from apar_sgl.ngram import table as table_module
from apar_sgl.ngram.replay import accepted_length, replay_steps
from apar_sgl.ngram.tree import ROOT


def reference_draft(history: list[int], max_n: int, k: int) -> list[int]:
    """Slow reference: rescan the whole history for every drafted token."""
    ctx = list(history)
    out: list[int] = []
    for _ in range(k):
        token = None
        for n in range(max_n, 1, -1):
            m = n - 1
            if len(ctx) < m:
                continue
            stats: dict[int, tuple[int, int]] = {}
            for i in range(m, len(history)):
                if history[i - m : i] == ctx[-m:]:
                    count = stats.get(history[i], (0, 0))[0]
                    stats[history[i]] = (count + 1, i)
            if stats:
                token = max(stats, key=stats.__getitem__)
                break
        if token is None:
            return out
        out.append(token)
        ctx.append(token)
    return out


def occurs_after(history: list[int], ctx: list[int], token: int) -> bool:
    """True when `token` follows at least the last context token somewhere in history."""
    return any(history[i - 1] == ctx[-1] and history[i] == token for i in range(1, len(history)))


def table_of(tokens: list[int], **kwargs: int) -> NgramTable:
    table = NgramTable(**kwargs)
    table.extend(tokens)
    return table


# --- levels, fallback, updates ---------------------------------------------------------------


def test_longest_level_beats_more_frequent_bigram() -> None:
    history = [1, 2, 3, 9, 7, 3, 5, 8, 3, 5, 6, 3, 5, 1, 2, 3]
    assert table_of(history, max_n=4).draft(1) == [9]
    assert table_of(history, max_n=2).draft(1) == [5]


def test_falls_back_level_by_level() -> None:
    table = table_of([1, 2, 3, 9, 7, 3, 5, 8, 3, 5])
    assert table.draft(1, context=[42, 43, 3]) == [5]
    assert table.draft(1, context=[42, 8, 3]) == [5]
    assert table.draft(1, context=[1, 2, 3]) == [9]


def test_no_match_means_no_draft() -> None:
    assert NgramTable().draft(4) == []
    assert table_of([1, 2, 3]).draft(4, context=[77]) == []
    assert table_of([1, 2, 1, 2]).draft(0) == []
    assert table_of([1, 2, 3]).draft(4, context=[]) == []


def test_greedy_chain_extends_context_with_drafted_tokens() -> None:
    table = table_of([10, 11, 12, 13, 14, 10])
    assert table.draft(3) == [11, 12, 13]
    assert table.draft(10) == [11, 12, 13, 14, 10, 11, 12, 13, 14, 10]


def test_frequency_wins_then_recency_breaks_ties() -> None:
    assert table_of([1, 5, 1, 5, 1, 6, 1], max_n=2).draft(1) == [5]
    assert table_of([1, 5, 1, 6, 1], max_n=2).draft(1) == [6]


def test_accepted_tokens_change_the_next_draft() -> None:
    table = table_of([1, 2, 3, 1, 2])
    assert table.draft(1) == [3]
    table.extend([4, 1, 2])
    assert table.draft(1) == [4]


def test_new_sequence_drops_left_context() -> None:
    corpus = table_of([1, 2])
    corpus.extend([3, 4], new_sequence=True)
    assert corpus.draft(1, context=[2]) == []
    assert corpus.draft(1, context=[3]) == [4]


@settings(max_examples=200, deadline=None)
@given(
    history=st.lists(st.integers(0, 5), max_size=40),
    max_n=st.integers(2, 5),
    k=st.integers(0, 6),
)
def test_draft_matches_slow_reference(history: list[int], max_n: int, k: int) -> None:
    table = table_of(history, max_n=max_n, max_continuations=64)
    assert table.draft(k) == reference_draft(history, max_n, k)


@settings(max_examples=200, deadline=None)
@given(
    history=st.lists(st.integers(0, 9), max_size=60),
    context=st.lists(st.integers(0, 9), min_size=1, max_size=5),
    k=st.integers(1, 6),
)
def test_every_drafted_token_followed_its_context_in_history(
    history: list[int], context: list[int], k: int
) -> None:
    draft = table_of(history).draft(k, context=context)
    for i, token in enumerate(draft):
        assert occurs_after(history, context + draft[:i], token)


# --- tree drafting ----------------------------------------------------------------------------


def test_tree_first_level_takes_longest_context_then_falls_back() -> None:
    table = table_of([1, 2, 3, 4, 3, 5, 3, 5, 3, 6, 1, 2, 3])
    tree = table.draft_tree(1, branching=3)
    assert tree == DraftTree([4, 5, 6], [ROOT, ROOT, ROOT])
    assert table.draft_tree(1, branching=2).tokens == [4, 5]


@settings(max_examples=100, deadline=None)
@given(
    history=st.lists(st.integers(0, 6), max_size=50),
    k=st.integers(0, 5),
    branching=st.integers(0, 4),
)
def test_tree_shape_and_first_branch_is_the_greedy_draft(
    history: list[int], k: int, branching: int
) -> None:
    table = table_of(history)
    tree = table.draft_tree(k, branching)
    assert len(tree) <= k * branching
    assert all(p == ROOT or 0 <= p < i for i, p in enumerate(tree.parents))
    firsts = [t for t, p in zip(tree.tokens, tree.parents, strict=True) if p == ROOT]
    assert len(firsts) == len(set(firsts)) <= branching
    assert max(tree.depths(), default=0) <= k
    if k and branching:
        assert (tree.paths()[0] if len(tree) else []) == table.draft(k)


def test_tree_mask_and_paths() -> None:
    tree = DraftTree(tokens=[7, 8, 9, 5], parents=[ROOT, 0, 0, ROOT])
    assert tree.depths() == [1, 2, 2, 1]
    assert tree.paths() == [[7, 8], [7, 9], [5]]
    assert tree.ancestor_mask() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, False, True, False],
        [False, False, False, True],
    ]


# --- memory bounds and operation counts -------------------------------------------------------


def test_memory_bound_holds_over_100k_tokens() -> None:
    rng = random.Random(0)
    table = NgramTable(max_n=4, max_entries_per_level=1000, max_continuations=4)
    table.extend(rng.randrange(300) for _ in range(100_000))
    assert table.sizes == (300, 1000, 1000)
    assert len(table.draft_tree(1, branching=50)) <= 4 + 4 + 4


def test_lru_evicts_least_recently_updated_context() -> None:
    table = table_of([1, 9, 2, 8, 3], max_n=2, max_entries_per_level=2)
    assert table.sizes == (2,)
    assert table.draft(1, context=[1]) == []
    assert table.draft(1, context=[8]) == [3]


def test_continuation_cap_evicts_the_weakest() -> None:
    table = table_of([1, 5, 1, 5, 1, 6, 1, 7], max_n=2, max_continuations=2)
    assert table.draft_tree(1, branching=5, context=[1]).tokens == [5, 7]


def count_lines(fn: Callable[[], object]) -> int:
    """Python lines executed inside the table module: a deterministic operation count."""
    filename = table_module.__file__
    lines = 0

    def local(frame, event, arg):  # noqa: ANN001, ANN202
        nonlocal lines
        lines += event == "line"
        return local

    def global_(frame, event, arg):  # noqa: ANN001, ANN202
        return local if frame.f_code.co_filename == filename else None

    previous = sys.gettrace()
    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return lines


def test_insert_cost_is_linear_in_tokens() -> None:
    rng = random.Random(1)
    tokens = [rng.randrange(50) for _ in range(8000)]

    def one_by_one(n: int) -> Callable[[], None]:
        table = NgramTable(max_n=4, max_entries_per_level=500)

        def run() -> None:
            for token in tokens[:n]:
                table.extend([token])

        return run

    small, large = count_lines(one_by_one(2000)), count_lines(one_by_one(8000))
    assert 3.6 < large / small < 4.4


def test_draft_cost_does_not_grow_with_history() -> None:
    rng = random.Random(2)
    short = table_of([rng.randrange(20) for _ in range(500)], max_continuations=4)
    long = table_of([rng.randrange(20) for _ in range(20_000)], max_continuations=4)
    assert count_lines(lambda: long.draft(8)) <= 2 * count_lines(lambda: short.draft(8)) + 50


# --- forks, families, shared sources ----------------------------------------------------------


def test_fork_is_independent_both_ways() -> None:
    parent = table_of([1, 2, 1, 2, 1, 3])
    child = parent.fork()
    child.extend([1, 4, 1, 4, 1, 4, 1])
    parent.extend([1, 5, 1, 5, 1, 5, 1])
    assert parent.draft(1) == [5]
    assert child.draft(1) == [4]
    assert parent.draft(1, context=[2]) == child.draft(1, context=[2]) == [1]


def test_fork_copies_counts_on_write_instead_of_shadowing() -> None:
    parent = table_of([1, 2, 1, 2, 1, 3], max_n=2)
    child = parent.fork()
    child.extend([1, 4])
    assert child.draft(1, context=[1]) == [2]


def test_fork_starts_from_parent_tail() -> None:
    parent = table_of([1, 2, 3, 4, 1, 2])
    assert parent.fork().draft(2) == [3, 4]


def test_repeated_forks_keep_layers_bounded_and_knowledge() -> None:
    table = table_of([100, 101])
    for i in range(20):
        table.extend([i, i + 1000])
        table.fork()
    assert table.frozen_layers <= table_module._MAX_FROZEN_LAYERS
    assert table.draft(1, context=[100]) == [101]
    assert table.draft(1, context=[3]) == [1003]


def test_family_table_lets_siblings_draft_from_each_other() -> None:
    parent = table_of([1, 2, 3])
    family = NgramTable()
    left, right = parent.fork(family), parent.fork(family)
    left.extend([7, 8, 9])
    assert right.draft(2, context=[7]) == [8, 9]
    assert parent.draft(2, context=[7]) == []
    assert family.draft(1, context=[3, 7]) == [8]


def test_shared_corpus_is_read_after_own_table_per_level() -> None:
    corpus = table_of([1, 2, 3, 50, 3, 60])
    request = NgramTable(sources=[corpus])
    assert request.draft(1, context=[2, 3]) == [50]
    request.extend([3, 70])
    assert request.draft(1, context=[9, 3]) == [70]
    assert request.draft(1, context=[1, 2, 3]) == [50]
    assert corpus.sizes == table_of([1, 2, 3, 50, 3, 60]).sizes


# --- adaptive length and budget ---------------------------------------------------------------


def test_length_grows_with_acceptance_up_to_max() -> None:
    ctl = DraftLengthController(min_len=1, max_len=5)
    seen = []
    for _ in range(8):
        n = ctl.next_length()
        seen.append(n)
        ctl.update(drafted=n, accepted=n)
    assert seen == [1, 2, 3, 4, 5, 5, 5, 5]


def test_partial_acceptance_shrinks_to_accepted_plus_one() -> None:
    ctl = DraftLengthController(min_len=1, max_len=8)
    for _ in range(7):
        ctl.update(drafted=ctl.next_length(), accepted=ctl.next_length())
    assert ctl.next_length() == 8
    ctl.update(drafted=8, accepted=2)
    assert ctl.next_length() == 3


def test_length_drops_to_zero_without_acceptance_then_probes() -> None:
    ctl = DraftLengthController(min_len=2, max_len=6, probe_every=4)
    for _ in range(3):
        ctl.update(drafted=ctl.next_length(), accepted=0)
    assert ctl.acceptance < ctl.min_acceptance
    assert [ctl.next_length() for _ in range(8)] == [0, 0, 0, 2, 0, 0, 0, 2]
    for _ in range(4):
        ctl.update(drafted=2, accepted=2)
    assert ctl.next_length() > 0


def test_no_draft_steps_do_not_move_the_controller() -> None:
    ctl = DraftLengthController()
    ctl.update(drafted=0, accepted=0)
    assert (ctl.acceptance, ctl.length) == (1.0, 1)


def test_batch_cap_limits_and_then_stops_drafting() -> None:
    assert draft_budget(1, 0.9, max_len=8, token_budget=64) == 8
    assert draft_budget(16, 0.9, max_len=8, token_budget=64) == 4
    assert draft_budget(65, 0.9, max_len=8, token_budget=64) == 0
    assert draft_budget(1, 0.1, max_len=8, min_acceptance=0.25) == 0
    budgets = [draft_budget(b, 0.8, max_len=8) for b in range(1, 200)]
    assert budgets == sorted(budgets, reverse=True)
    ctl = DraftLengthController(max_len=8, token_budget=64)
    for _ in range(8):
        ctl.update(drafted=ctl.next_length(), accepted=ctl.next_length())
    assert [ctl.next_length(b) for b in (1, 16, 32, 128)] == [8, 4, 2, 0]


def test_draft_levels_name_the_level_each_chain_token_matched_at() -> None:
    table = table_of([1, 2, 3, 7, 2, 3, 9], max_n=4)
    assert table.draft_levels(1, context=[1, 2, 3]) == [4]
    assert table.draft_levels(1, context=[5, 2, 3]) == [3]
    assert table.draft_levels(1, context=[5, 6, 3]) == [2]
    assert len(table.draft_levels(5)) == len(table.draft(5))
    assert table.draft_levels(3, context=[42]) == []


def test_confidence_starts_at_the_prior_and_learns_per_level() -> None:
    conf = LevelConfidence(max_n=4)
    assert conf.probability(2) == 0.5  # prior (n - 1) / n: a longer context is likelier a copy
    assert conf.probability(4) == 0.75
    for _ in range(20):
        conf.update([4, 4], accepted=2)  # long matches pass
        conf.update([2, 2], accepted=0)  # bigram guesses fail; only the first is tried
    assert conf.probability(4) > 0.9
    assert conf.probability(2) < 0.1
    assert conf.probability(3) == pytest.approx(2 / 3)  # untouched level keeps its prior


def test_confidence_keeps_the_chain_while_its_joint_chance_clears_the_threshold() -> None:
    conf = LevelConfidence(max_n=4)
    for _ in range(30):
        conf.update([4], accepted=1)
        conf.update([2], accepted=0)
    assert conf.keep([4, 4, 4, 2, 4], threshold=0.5) == 3  # the bigram guess breaks the chain
    assert conf.keep([2, 4, 4], threshold=0.5) == 0
    assert conf.keep([2, 4, 4], threshold=0.0) == 3
    assert conf.keep([], threshold=0.5) == 0


def test_confidence_counts_stay_bounded_and_follow_recent_text() -> None:
    conf = LevelConfidence(max_n=3, horizon=100)
    for _ in range(500):
        conf.update([3], accepted=1)
    assert conf.probability(3) > 0.95
    for _ in range(100):
        conf.update([3], accepted=0)
    assert conf.probability(3) < 0.6  # 500 old successes do not outweigh 100 new failures
    assert sum(conf._tried) <= 100 + 1


def test_expected_accepted_sums_the_joint_chances_of_each_prefix() -> None:
    conf = LevelConfidence(max_n=4)
    for _ in range(30):
        conf.update([4], accepted=1)
        conf.update([2], accepted=0)
    p4, p2 = conf.probability(4), conf.probability(2)
    gains = conf.expected_accepted([4, 4, 2])
    assert gains == pytest.approx([p4, p4 + p4 * p4, p4 + p4 * p4 + p4 * p4 * p2])
    assert conf.expected_accepted([]) == []


def test_step_cost_learns_a_linear_cost_and_forgets_old_steps() -> None:
    cost = StepCost(decay=0.9)
    assert cost.predict(4) is None
    cost.observe(2, 0.010)
    assert cost.predict(4) == pytest.approx(0.020)  # one size seen: proportional
    for tokens in (2, 4, 8) * 10:
        cost.observe(tokens, 0.005 + 0.002 * tokens)
    assert cost.predict(16) == pytest.approx(0.005 + 0.002 * 16, rel=0.05)
    for tokens in (2, 4, 8) * 40:  # the machine got twice as slow
        cost.observe(tokens, 2 * (0.005 + 0.002 * tokens))
    assert cost.predict(16) == pytest.approx(2 * (0.005 + 0.002 * 16), rel=0.05)


def test_step_cost_rejects_bad_observations() -> None:
    with pytest.raises(ValueError):
        StepCost(decay=0.0)
    with pytest.raises(ValueError):
        StepCost().observe(0, 0.01)


def _costs(decode_per_step: float, verify: tuple[float, float]) -> tuple[StepCost, StepCost]:
    """A decode cost model and a verify one of `fixed + per_token * tokens` seconds."""
    decode, ver = StepCost(), StepCost()
    decode.observe(1, decode_per_step)
    fixed, per_token = verify
    for tokens in (2, 3, 4, 5) * 2:
        ver.observe(tokens, fixed + per_token * tokens)
    return decode, ver


def test_best_width_drafts_when_verify_tokens_are_cheap() -> None:
    decode, verify = _costs(0.010, (0.010, 0.0001))  # GPU-like: extra tokens nearly free
    assert best_width([[0.5, 0.7, 0.8]], decode, verify) == 4


def test_best_width_decodes_plainly_when_drafts_do_not_pay_for_their_tokens() -> None:
    decode, verify = _costs(0.070, (0.060, 0.020))  # CPU-like: 20 ms per verify token
    assert best_width([[0.3, 0.4]], decode, verify) == 1  # 1.3 tokens for 100 ms: worse
    assert best_width([[0.95, 1.9, 2.8]], decode, verify) == 4  # a near-certain copy pays


def test_best_width_drafts_everything_until_verify_is_measured() -> None:
    decode, _ = _costs(0.070, (0.0, 0.0))
    assert best_width([[0.1, 0.2], []], decode, StepCost()) == 3
    assert best_width([[], []], decode, StepCost()) == 1


# --- boundaries -------------------------------------------------------------------------------


def test_invalid_arguments_raise_precise_errors() -> None:
    with pytest.raises(ValueError, match="max_n must be >= 2"):
        NgramTable(max_n=1)
    with pytest.raises(ValueError, match="draft length k must be >= 0"):
        NgramTable().draft(-1)
    with pytest.raises(TypeError):
        NgramTable().extend(["a"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="need 0 <= accepted <= drafted"):
        DraftLengthController().update(drafted=1, accepted=2)
    with pytest.raises(ValueError, match="min_len <= max_len"):
        DraftLengthController(min_len=4, max_len=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        draft_budget(0, 0.5, max_len=4)
    with pytest.raises(ValueError, match="need 0 <= accepted <= 1, got 2"):
        LevelConfidence(max_n=3).update([2], accepted=2)
    with pytest.raises(ValueError, match="max_n must be >= 2"):
        LevelConfidence(max_n=1)


def test_import_pulls_in_neither_sglang_nor_torch() -> None:
    code = (
        "import sys, apar_sgl.ngram\n"
        "bad = sorted(m for m in ('sglang', 'torch') if m in sys.modules)\n"
        "print(','.join(bad) or 'clean')\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    assert result.stdout.strip() == "clean"


def test_replay_accepts_the_deepest_matching_draft_path() -> None:
    # two branches: 5 -> 6 -> 7 and 5 -> 8; the target writes 5, 8, 9
    tree = DraftTree([5, 6, 7, 8], [ROOT, 0, 1, 0])
    assert accepted_length(tree, [5, 8, 9]) == 2
    assert accepted_length(tree, [5, 6, 7, 1]) == 3
    assert accepted_length(tree, [6, 6, 7]) == 0  # a deeper match under a rejected parent
    assert accepted_length(tree, [5]) == 1  # the answer ends inside the draft


def test_replay_counts_fewer_steps_when_the_answer_copies_the_prompt() -> None:
    prompt = list(range(100, 140))
    fresh = list(range(200, 240))
    assert replay_steps(prompt, fresh, max_n=4, depth=7) == len(fresh)  # nothing to draft from
    # step 1 has no draft (the prompt's last token was never followed), then every draft of
    # 7 is accepted whole: 1 + 7 tokens per step for the other 38 tokens
    assert replay_steps(prompt, prompt[1:], max_n=4, depth=7) == 1 + 5
    chain = replay_steps(prompt, prompt[1:21] + fresh[:5] + prompt[26:], max_n=4, depth=7)
    assert replay_steps(prompt, prompt[1:], max_n=4, depth=7) < chain < len(prompt) - 1
