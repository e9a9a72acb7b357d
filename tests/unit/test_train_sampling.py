from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apar_sgl.train.convert import ConvertedExample, convert_answer
from apar_sgl.train.sampling import length_batches, mix, trim_truncated

LIST = (
    "Tips:\n\n1. Sleep: go to bed at the same time every night.\n"
    "2. Water: drink a glass of water with every meal.\n"
    "3. Walk: take a short walk after lunch each day.\n"
    "4. Read: read a few pages before turning off the light."
)
PLAIN = "A rainbow forms when sunlight is refracted and reflected inside raindrops."


def _example(prompt: str, answer: str) -> ConvertedExample:
    return ConvertedExample(prompt, convert_answer(answer))


def test_trim_truncated_cuts_back_to_the_last_paragraph():
    answer = "First paragraph is long enough.\n\nSecond paragraph too.\n\nThird is cut mid"
    assert trim_truncated(answer) == "First paragraph is long enough.\n\nSecond paragraph too."


def test_trim_truncated_falls_back_to_lines_and_refuses_short_keeps():
    assert trim_truncated("line one is here\nline two is here\nline thr") == (
        "line one is here\nline two is here"
    )
    assert trim_truncated("tiny\nthen a very long unfinished sentence that goes on") is None
    assert trim_truncated("no boundary at all") is None


def test_mix_balances_plain_answers_to_the_requested_share():
    examples = [_example(f"s{i}", LIST) for i in range(4)] + [_example("p", PLAIN)]
    samples, stats = mix(examples, plain_share=0.5, seed=1)
    assert stats.structured_answers == 4 and stats.plain_answers == 4  # one answer repeated
    plain = [s for s in samples if s.kind == "plain"]
    assert len(plain) == 4 and all(s.sequence.context == "" for s in plain)
    assert stats.child_sequences == 4 * 4
    assert stats.parent_sequences == 4 + 4
    assert sum(s.role == "child" for s in samples) == stats.child_sequences


def test_mix_caps_children_per_answer_deterministically():
    examples = [_example("s", LIST)]
    first, stats = mix(examples, plain_share=0.0, children_per_answer=2, seed=3)
    again, _ = mix(examples, plain_share=0.0, children_per_answer=2, seed=3)
    assert first == again and stats.child_sequences == 2
    contexts = [s.sequence.context for s in first if s.role == "child"]
    assert contexts == sorted(contexts, key=len)  # kept in tree order


def test_mix_rejects_bad_shares():
    with pytest.raises(ValueError, match="plain_share"):
        mix([], plain_share=1.0)
    with pytest.raises(ValueError, match="children_per_answer"):
        mix([], children_per_answer=0)


@given(st.lists(st.integers(1, 300), max_size=60), st.integers(1, 1024), st.integers(0, 5))
def test_length_batches_cover_every_index_once_within_budget(lengths, budget, seed):
    batches = length_batches(lengths, budget, seed)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for batch in batches:
        assert batch
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= budget


def test_length_batches_group_similar_lengths():
    lengths = [10, 200, 11, 201, 12, 202]
    batches = length_batches(lengths, max_tokens=450, seed=0)
    assert sorted(sorted(b) for b in batches) == [[0, 2, 4], [1, 3], [5]]
