from __future__ import annotations

from apar_sgl.train.convert import ConvertedExample, convert_answer
from apar_sgl.train.corpus import CorpusRecord
from apar_sgl.train.corpus_report import branch_stats, report

FOUR_POINTS = (
    "Some tips.\n\n"
    "1. Sunlight: pick a spot that gets six hours of sun every day.\n"
    "2. Soil: mix compost into the beds before you plant anything.\n"
    "3. Water: water deeply twice a week rather than a little every day.\n"
    "4. Size: start with a few beds that you can look after well."
)
THREE_PARAGRAPHS = (
    "Tea is gentler than coffee. It has less caffeine per cup and a calmer lift.\n\n"
    "Coffee is stronger and quicker. Many people like it in the morning for that reason.\n\n"
    "Both can be part of a healthy day. What matters most is how much sugar goes in."
)
PLAIN = "Ottawa is the capital of Canada, on the Ottawa River in the province of Ontario."


def _examples(*answers: str) -> list[ConvertedExample]:
    return [ConvertedExample(f"q{i}", convert_answer(a)) for i, a in enumerate(answers)]


def test_branch_stats_count_forks_width_and_kinds():
    stats = branch_stats(_examples(FOUR_POINTS, THREE_PARAGRAPHS, PLAIN, PLAIN))
    assert stats["answers"] == 4
    assert stats["share_with_2_or_more_branches"] == 0.5
    assert stats["share_with_3_or_more_branches"] == 0.5
    assert stats["mean_branches_forked"] == 3.5
    assert stats["mean_branches_all"] == 1.75
    assert stats["forked_by_kind"] == {"list": 1, "paragraph": 1}
    assert stats["branch_histogram"] == {0: 2, 3: 1, 4: 1}
    assert 0.5 < stats["mean_balance_forked"] <= 1.0


def test_branch_stats_of_nothing_are_zero():
    assert branch_stats([])["share_with_2_or_more_branches"] == 0


def test_report_counts_what_the_filters_and_the_conversion_leave_out():
    records = [
        CorpusRecord("a", True, FOUR_POINTS, "stop", 80, "advice", "points"),
        CorpusRecord("b", True, THREE_PARAGRAPHS, "stop", 60, "comparison", "paragraphs"),
        CorpusRecord("c", False, PLAIN, "stop", 20, "fact", "short"),
        CorpusRecord("d", True, FOUR_POINTS + "\n5.", "stop", 81, "advice", "points"),
        CorpusRecord("e", False, "Yes.", "stop", 2, "fact", "short"),
        CorpusRecord("f", True, FOUR_POINTS, "length", 320, "howto", "points"),
    ]
    result = report(records)
    assert result["answers"] == 6 and result["capped"] == 1
    assert result["by_kind"] == {"advice": 2, "comparison": 1, "fact": 2, "howto": 1}
    assert result["degenerate_filtered"] == {"empty_item": 1, "truncated_list": 1}
    assert result["conversion_filtered"] == {"too_short": 1}
    assert result["kept"] == 3
    assert result["kept_by_conversion_kind"] == {"list": 1, "paragraph": 1, "plain": 1}
    assert result["branches_by_style"]["points"]["share_with_2_or_more_branches"] == 1.0
    assert result["branches_by_style"]["short"]["mean_branches_all"] == 0
