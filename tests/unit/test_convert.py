from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_sgl.train.convert import (
    Conversion,
    ConvertConfig,
    Rejected,
    TrainingSequence,
    convert_answer,
    convert_corpus,
    filter_reason,
)
from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN, Branch, join_text

NUMBERED = """Here are some tips to sleep better:

1. Keep a schedule: Go to bed and wake up at the same time every day.
2. Limit screens. Blue light from phones delays melatonin, so stop an hour before bed.
3. **Watch caffeine:** Avoid coffee after noon because it lingers for hours.

Following these will help."""


def _converted(answer: str, config: ConvertConfig | None = None) -> Conversion:
    result = convert_answer(answer, config)
    assert isinstance(result, Conversion), result
    assert join_text(result.tree) == answer
    assert _tree_from_sequences(result.sequences) == result.tree
    return result


def _tree_from_sequences(sequences: tuple[TrainingSequence, ...]) -> Branch[str]:
    """Rebuild the tree from the pre-order sequences alone: a child's context names its parent."""
    root = Branch(sequences[0].target)
    stack = [(sequences[0].context, root)]
    for seq in sequences[1:]:
        while True:
            context, parent = stack[-1]
            assert isinstance(parent.output, str)
            free_forks = parent.output.count(FORK_TOKEN) - len(parent.children)
            if seq.context.startswith(context) and free_forks > 0:
                head = seq.context[len(context) :]
                assert head.endswith(FORK_TOKEN + CHILD_TOKEN)
                assert parent.output.startswith(head[: -len(CHILD_TOKEN)])
                assert head.count(FORK_TOKEN) == len(parent.children) + 1
                break
            stack.pop()
        child = Branch(seq.target)
        parent.children.append(child)
        stack.append((seq.context, child))
    return root


def test_numbered_list_forks_after_each_head() -> None:
    result = _converted(NUMBERED)
    assert result.kind == "list" and result.forks == 3
    parent = (
        f"Here are some tips to sleep better:\n\n1. Keep a schedule:{FORK_TOKEN}\n"
        f"2. Limit screens.{FORK_TOKEN}\n3. **Watch caffeine:**{FORK_TOKEN}\n\n"
        "Following these will help."
    )
    assert result.sequences[0] == TrainingSequence("", parent)
    cut = parent.index(FORK_TOKEN, parent.index("2.")) + len(FORK_TOKEN)
    assert result.sequences[2] == TrainingSequence(
        parent[:cut] + CHILD_TOKEN,
        " Blue light from phones delays melatonin, so stop an hour before bed.",
    )
    assert result.sequences[3].target == " Avoid coffee after noon because it lingers for hours."


def test_bullets_with_sentence_heads_and_parenthesis_numbers() -> None:
    bullets = (
        "• Walk daily. Even twenty minutes lifts your mood and heart health.\n"
        "• Stretch often. Loosen the hips and shoulders after sitting for long.\n"
        "• Lift weights. Strength training keeps bones dense as you age.\n"
    )
    result = _converted(bullets)
    assert [s.target for s in result.sequences[1:]][0].startswith(" Even twenty")
    assert result.sequences[0].target.count(FORK_TOKEN) == 3
    numbered = bullets.replace("• ", "1) ", 1).replace("• ", "2) ", 1).replace("• ", "3) ")
    assert _converted(numbered).forks == 3


def test_head_lines_with_detail_lines_and_nested_sublist() -> None:
    answer = (
        "- Budget\n"
        "   Track every expense for a month.\n"
        "   Then set limits per category.\n"
        "- Save\n"
        "   Automate a transfer to savings on payday.\n"
        "- Invest\n"
        "   Start with low-cost index funds.\n"
        "     * Diversify: Spread money over many companies and sectors.\n"
        "     * Fees: Keep the expense ratio below a fraction of a percent.\n"
        "     * Patience: Hold through downturns rather than selling in panic.\n"
    )
    result = _converted(answer)
    assert result.tree.output == f"- Budget{FORK_TOKEN}\n- Save{FORK_TOKEN}\n- Invest{FORK_TOKEN}\n"
    invest = result.tree.children[2]
    assert len(invest.children) == 3 and invest.children[1].output.startswith(" Keep")
    grandchild = result.sequences[-1]
    assert grandchild.context.count(CHILD_TOKEN) == 2
    assert grandchild.context.endswith(f"* Patience:{FORK_TOKEN}{CHILD_TOKEN}")
    shallow = _converted(answer, ConvertConfig(max_depth=1))
    assert shallow.forks == 3 and not shallow.tree.children[2].children


def test_paragraph_fallback_keeps_first_sentences_in_parent() -> None:
    answer = (
        "Cats are independent animals. They groom themselves and need little attention.\n\n"
        "Dogs are loyal companions. They need walks and training every day.\n\n"
        "Fish are quiet pets, e.g. goldfish. They need a clean tank and stable water."
    )
    result = _converted(answer)
    assert result.kind == "paragraph"
    assert result.tree.output == (
        f"Cats are independent animals.{FORK_TOKEN}\n\nDogs are loyal companions.{FORK_TOKEN}"
        f"\n\nFish are quiet pets, e.g. goldfish.{FORK_TOKEN}"
    )


def test_two_paragraphs_or_short_lists_stay_plain() -> None:
    two = "Rain falls from clouds. It waters the crops.\n\nSun dries the fields. Then we harvest."
    short_list = "1. Apples: crisp and sweet in autumn.\n2. Pears: soft and juicy when ripe.\n"
    no_details = NUMBERED.replace("Limit screens. Blue light", "Limit screens")
    no_details = no_details.replace(", so stop an hour before bed", "")
    for answer in (two, short_list + "Both grow well in cool climates.", no_details):
        result = _converted(answer)
        assert result.kind == "plain" and result.sequences == (TrainingSequence("", answer),)


def test_crlf_and_intro_outro_round_trip() -> None:
    answer = NUMBERED.replace("\n", "\r\n") + "\r\n"
    result = _converted(answer)
    assert result.forks == 3 and result.tree.output.endswith("Following these will help.\r\n")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("Too short.", "too_short"),
        (f"A long enough answer that mentions {FORK_TOKEN} literally in its text.", None),
        ("Use this:\n```python\nprint('hello world, this is code')\n```\n", "code"),
        ("Read more at https://example.org about the topic at great length.", "url"),
        ("| a | b |\n|---|---|\n| 1 | 2 |\nA table with enough characters to pass.", "table"),
        ("The area is \\frac{a}{b} and that is all there is to say about it.", "math"),
        ("Compute 12 + 30 = 42, then 42 * 2 = 84 and 84 / 4 = 21 to finish.", "math"),
        ("Приветствую вас, это ответ на русском языке, довольно длинный.", "non_latin"),
    ],
)
def test_filters(answer: str, reason: str | None) -> None:
    expected = reason or "control_token"
    assert filter_reason(answer) == expected
    assert convert_answer(answer) == Rejected(expected)


def test_filters_keep_ordinary_prose_with_numbers_and_accents() -> None:
    answer = (
        "Walk 5-10 minutes after meals; a café visit in 2023 at 10:30 is fine, naïvely. "
        "Keep portions moderate and add vegetables to every plate you serve."
    )
    assert filter_reason(answer) is None


def test_convert_corpus_counts_kinds_and_reasons() -> None:
    paragraphs = "\n\n".join(["Alpha is first. It leads the pack by a wide margin."] * 3)
    records = [
        ("p1", NUMBERED),
        ("p2", paragraphs),
        ("p3", "A plain answer without any structure, long enough to be kept."),
        ("p4", "short"),
        ("p5", "See http://x.org for details about everything you asked."),
    ]
    corpus = convert_corpus(records)
    assert [e.prompt for e in corpus.examples] == ["p1", "p2", "p3"]
    assert corpus.stats.total == 5
    assert (corpus.stats.structured, corpus.stats.paragraph, corpus.stats.plain) == (1, 1, 1)
    assert corpus.stats.filtered == {"too_short": 1, "url": 1}
    assert corpus.stats.forks == 3 + 3


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="distinct"):
        ConvertConfig(child_token=FORK_TOKEN)
    with pytest.raises(ValueError, match="max_depth"):
        ConvertConfig(max_depth=0)


_WORD = st.sampled_from(["sleep", "water", "Plan", "walk", "e.g.", "U.S.", "note", "10:30"])
_SENTENCE = st.lists(_WORD, min_size=1, max_size=6).map(lambda ws: " ".join(ws) + ".")


@st.composite
def _answers(draw: st.DrawFn) -> str:
    """Answers mixing lists (numbered, bullets, nested, head lines) and paragraphs."""
    blocks = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["list", "para", "nested"]))
        if kind == "para":
            blocks.append(" ".join(draw(st.lists(_SENTENCE, min_size=1, max_size=3))))
            continue
        marker = draw(st.sampled_from(["{}.", "{})", "-", "*", "•"]))
        sep = draw(st.sampled_from([": ", ". ", "\n   ", ":\n  ", " "]))
        lines = []
        for k in range(draw(st.integers(2, 5))):
            head = draw(_SENTENCE)[:-1].capitalize()
            details = " ".join(draw(st.lists(_SENTENCE, min_size=0, max_size=3)))
            lines.append(f"{marker.format(k + 1)} {head}{sep}{details}")
            if kind == "nested":
                lines += [f"    - Sub{j}: {draw(_SENTENCE)}" for j in range(3)]
        blocks.append("\n".join(lines))
    gap = draw(st.sampled_from(["\n", "\n\n", "\r\n", "\n \n"]))
    return gap.join(blocks) + draw(st.sampled_from(["", "\n", "  \n"]))


@settings(max_examples=200)
@given(_answers())
def test_structured_answers_round_trip(answer: str) -> None:
    result = convert_answer(answer)
    if isinstance(result, Conversion):
        assert join_text(result.tree) == answer
        assert _tree_from_sequences(result.sequences) == result.tree
        assert all(seq.target.strip() for seq in result.sequences[1:])


@settings(max_examples=300)
@given(st.text(st.characters(codec="utf-8"), max_size=300))
def test_any_text_round_trips_or_is_rejected(answer: str) -> None:
    result = convert_answer(answer, ConvertConfig(min_answer_chars=0, max_non_latin_ratio=1.0))
    if isinstance(result, Conversion):
        assert join_text(result.tree) == answer
        assert _tree_from_sequences(result.sequences) == result.tree


def test_generated_answers_do_fork() -> None:
    answer = "\n".join(f"{k}. Head {k}: details of item {k} written out." for k in (1, 2, 3))
    assert _converted(answer).forks == 3
