from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from apar_sgl.train.prompts import PROMPTS, SYSTEM_PROMPTS, build_prompts, generation_order

REPO = Path(__file__).resolve().parents[2]
VICUNA = REPO / "apar_sgl" / "bench" / "data" / "vicuna_bench.jsonl"
# Function words and the benchmark's own boilerplate ("explain ... step by step").
_STOP = frozenset(
    "a an the and or of to in on for with is are be how what which why can you your i my me "
    "do does some main most ways who that this it as at by from into their there would should "
    "could if about step explain answer try through".split()
)


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _vicuna_questions() -> list[str]:
    lines = VICUNA.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["turns"][0] for line in lines if line.strip()]


def test_thousands_of_unique_prompts_of_every_type_and_style() -> None:
    assert len(PROMPTS) >= 2500
    assert len({_normalize(p.text) for p in PROMPTS}) == len(PROMPTS)
    kinds = Counter(p.kind for p in PROMPTS)
    wanted = {"advice", "howto", "comparison", "explanation", "planning", "persuasion"}
    assert wanted | {"writing", "definition", "fact"} <= set(kinds)
    assert min(kinds.values()) >= 100
    styles = Counter(p.style for p in PROMPTS)
    assert set(styles) == set(SYSTEM_PROMPTS)
    assert 0.15 <= styles["short"] / len(PROMPTS) <= 0.35
    assert styles["paragraphs"] >= 0.15 * len(PROMPTS)
    assert all(p.structured == (p.style != "short") for p in PROMPTS)
    assert all(p.text[0].isupper() and p.text[-1] in ".?" and "{" not in p.text for p in PROMPTS)


def test_prompts_and_their_order_are_deterministic() -> None:
    assert build_prompts() == PROMPTS
    assert generation_order(PROMPTS) == generation_order(build_prompts())
    assert sorted(generation_order(PROMPTS)) == sorted(PROMPTS)


def test_any_prefix_of_the_order_mixes_types_and_styles() -> None:
    head = generation_order(PROMPTS)[:300]
    assert len({p.kind for p in head}) == len({p.kind for p in PROMPTS})
    short = sum(p.style == "short" for p in head) / len(head)
    assert abs(short - sum(p.style == "short" for p in PROMPTS) / len(PROMPTS)) < 0.08


def test_no_prompt_is_a_vicuna_question() -> None:
    questions = _vicuna_questions()
    assert len(questions) == 80
    assert not {_normalize(p.text) for p in PROMPTS} & {_normalize(q) for q in questions}


@pytest.mark.parametrize("stop_words", [frozenset(), _STOP], ids=["all_words", "content_words"])
def test_no_prompt_nearly_matches_a_vicuna_question(stop_words: frozenset[str]) -> None:
    limit = 0.5 if not stop_words else 0.4
    questions = [set(_normalize(q).split()) - stop_words for q in _vicuna_questions()]
    for prompt in PROMPTS:
        words = set(_normalize(prompt.text).split()) - stop_words
        assert max(_jaccard(words, q) for q in questions) < limit, prompt.text


def test_the_near_duplicate_check_catches_a_reworded_benchmark_question() -> None:
    reworded = set(_normalize("How can I get better at my time management skills?").split())
    question = set(_normalize(_vicuna_questions()[0]).split()) - _STOP
    assert _jaccard(reworded - _STOP, question) >= 0.4
