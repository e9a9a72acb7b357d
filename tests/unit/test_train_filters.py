from __future__ import annotations

import pytest

from apar_sgl.train.filters import degenerate_reason, distinct_ngram_share

GOOD_POINTS = (
    "Here are a few tips for a first garden.\n\n"
    "1. Sunlight: pick a spot that gets six hours of sun every day.\n"
    "2. Soil: mix compost into the beds before you plant anything.\n"
    "3. Water: water deeply twice a week rather than a little every day.\n"
    "4. Start small: a few beds you can look after beat a big plot full of weeds."
)
GOOD_PARAGRAPHS = (
    "Tea is gentler than coffee. It has less caffeine per cup and a calmer lift.\n\n"
    "Coffee is stronger and quicker. Many people like it in the morning for that reason.\n\n"
    "Both can be part of a healthy day. What matters most is how much sugar goes in."
)


@pytest.mark.parametrize("answer", [GOOD_POINTS, GOOD_PARAGRAPHS, "Ottawa is the capital."])
def test_usable_answers_pass(answer: str) -> None:
    assert degenerate_reason(answer) is None


def test_a_head_followed_by_its_detail_lines_or_sub_list_is_not_empty() -> None:
    answer = "Plan:\n1. Morning:\n   - stretch for five minutes\n   - drink a glass of water\n"
    answer += "2. Evening: read a few pages before bed."
    assert degenerate_reason(answer) is None


def test_blank_answers_are_empty() -> None:
    assert degenerate_reason("  \n\n ") == "empty"


def test_a_line_said_twice_is_a_repetition() -> None:
    looped = GOOD_POINTS + "\n5. Water: water deeply twice a week rather than a little every day."
    assert degenerate_reason(looped) == "repeated_line"


def test_short_repeated_lines_like_headings_are_allowed() -> None:
    answer = "Pros:\n\nCheap to run and quiet.\n\nCons:\n\nPros:\n\nIt takes a long time to charge."
    assert degenerate_reason(answer) is None


def test_a_phrase_loop_inside_one_line_is_a_loop() -> None:
    answer = "You should " + "try to be kind and try to be calm and " * 8 + "rest."
    assert distinct_ngram_share(answer) < 0.7
    assert degenerate_reason(answer) == "loop"


def test_distinct_share_is_one_for_short_texts() -> None:
    assert distinct_ngram_share("the the the the the") == 1.0


@pytest.mark.parametrize(
    "tail", ["\n5.", "\n5. ", "\n- ", "\n5. Compost:", "\n5. **Compost:**"], ids=repr
)
def test_items_without_content_are_empty(tail: str) -> None:
    assert degenerate_reason(GOOD_POINTS + tail) == "empty_item"


def test_a_head_with_no_details_before_the_next_item_is_empty() -> None:
    answer = GOOD_POINTS.replace(
        "2. Soil: mix compost into the beds before you plant anything.", "2. Soil:"
    )
    assert degenerate_reason(answer) == "empty_item"


def test_a_capped_answer_that_stops_inside_its_list_is_a_truncated_list() -> None:
    assert degenerate_reason(GOOD_POINTS, capped=True) == "truncated_list"
    assert degenerate_reason(GOOD_POINTS + "\n\nHappy gardening!", capped=True) is None
    assert degenerate_reason(GOOD_PARAGRAPHS, capped=True) is None


def test_answers_that_repeat_the_teachers_instructions_are_echoes() -> None:
    answer = "1. Heading: one or two sentences of detail.\n2. Heading: more."
    assert degenerate_reason(answer) == "instruction_echo"
