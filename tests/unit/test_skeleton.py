"""The skeleton grammar, its parser and the options' checks (pure, no engine)."""

from __future__ import annotations

import re

import pytest
from apar_sgl.dsl.backend import Backend
from apar_sgl.dsl.skeleton import (
    NO_SKELETON,
    SkeletonOptions,
    parse_skeleton,
    route_of,
    skeleton,
    skeleton_regex,
)
from hypothesis import given
from hypothesis import strategies as st

from apar_sgl.config import AparArgs

_HEAD = st.text(
    st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda h: not h[0].isspace() and h.strip() == h)


@given(st.lists(_HEAD, min_size=1, max_size=5))
def test_every_numbered_list_within_bounds_matches_and_parses_back(heads):
    text = "".join(f"{n}. {h}\n" for n, h in enumerate(heads, 1))
    assert re.fullmatch(skeleton_regex(5, 20), text, re.DOTALL)
    assert parse_skeleton(text) == tuple(heads)


@given(st.text(st.sampled_from("12345. ab\n"), max_size=40))
def test_whatever_the_regex_accepts_parses_into_its_lines(text):
    if re.fullmatch(skeleton_regex(4, 6), text, re.DOTALL) and text != NO_SKELETON:
        points = parse_skeleton(text)
        assert 1 <= len(points) <= 4
        assert len(points) == text.count("\n")


@pytest.mark.parametrize(
    "text",
    [
        "1. a\n3. b\n",  # numbering skips
        "1. a\n2. b\n3. c\n",  # more points than max_points=2
        "1. " + "x" * 7 + "\n",  # a head longer than point_chars=6
        "1.  a\n",  # a head starting with a space
        "2. a\n",  # not starting at 1
        "Sure! 1. a\n",
    ],
)
def test_regex_rejects_skeletons_out_of_bounds(text):
    assert not re.fullmatch(skeleton_regex(2, 6), text, re.DOTALL)


def test_no_skeleton_and_single_points_route_to_plain_decoding():
    assert re.fullmatch(skeleton_regex(3, 10), NO_SKELETON)
    assert route_of(parse_skeleton(NO_SKELETON)) == "plain"
    assert route_of(parse_skeleton("1. only\n")) == "plain"
    assert route_of(parse_skeleton("1. a\n2. b\n")) == "skeleton"


def test_a_cut_last_line_is_dropped():
    assert parse_skeleton("1. a\n2. b\n3. unfinis") == ("a", "b")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_points": 0}, {"point_tokens": -1}, {"point_chars": 0}, {"max_tokens": 0}],
)
def test_bad_options_raise_value_error_naming_the_option(kwargs):
    [name] = kwargs
    with pytest.raises(ValueError, match=name):
        SkeletonOptions(**kwargs)


def test_bad_options_fail_before_any_generation():
    with pytest.raises(ValueError, match="max_points"):
        skeleton.run("How do I sleep better?", max_points=0, backend=_NoBackend())
    with pytest.raises(ValueError, match="question"):
        skeleton.run("  ", backend=_NoBackend())


def test_server_default_mode_is_checked():
    assert AparArgs().apar_default_mode == "model"
    with pytest.raises(ValueError, match="apar_default_mode"):
        AparArgs(apar_default_mode="sot")


class _NoBackend(Backend):
    """Fails the test if anything is generated."""

    model_path = "none"

    def _generate_batch(self, requests):
        raise AssertionError(f"generated {requests}")

    def _tokenizer(self):
        raise AssertionError("asked for a tokenizer")
