from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apar_sgl.train.rouge import lcs_length, rouge_l, tokens

WORDS = st.lists(st.sampled_from("a b c d".split()), max_size=7)


def _lcs_reference(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    if a[0] == b[0]:
        return 1 + _lcs_reference(a[1:], b[1:])
    return max(_lcs_reference(a[1:], b), _lcs_reference(a, b[1:]))


def test_tokens_ignore_case_and_markup():
    assert tokens("**Sleep**: Go to bed!") == ["sleep", "go", "to", "bed"]


def test_lcs_of_a_known_pair():
    assert lcs_length("a b c b d a b".split(), "b d c a b a".split()) == 4


@given(WORDS, WORDS)
def test_lcs_matches_the_recursive_definition(a, b):
    assert lcs_length(a, b) == _lcs_reference(a, b) == lcs_length(b, a)


def test_rouge_l_values():
    assert rouge_l("the cat sat", "the cat sat") == 1.0
    assert rouge_l("", "") == 1.0
    assert rouge_l("dog", "the cat") == 0.0
    # LCS "the cat" = 2; precision 2/3, recall 2/2 -> F1 0.8
    assert rouge_l("the black cat", "the cat") == pytest.approx(0.8)
