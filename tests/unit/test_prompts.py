from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from apar_sgl.train.prompts import PROMPTS, build_prompts

REPO = Path(__file__).resolve().parents[2]
VICUNA_CANDIDATES = (
    REPO / "apar_sgl" / "bench" / "data" / "vicuna_bench.jsonl",
    REPO.parent / "shared" / "data" / "vicuna_bench.jsonl",
)


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def _vicuna_questions() -> list[str]:
    for path in VICUNA_CANDIDATES:
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            return [json.loads(line)["turns"][0] for line in lines if line.strip()]
    pytest.skip(f"Vicuna benchmark not found at {[str(p) for p in VICUNA_CANDIDATES]}")


def test_prompt_count_mix_and_uniqueness() -> None:
    assert len(PROMPTS) >= 300
    assert len({_normalize(p.text) for p in PROMPTS}) == len(PROMPTS)
    plain_share = sum(not p.structured for p in PROMPTS) / len(PROMPTS)
    assert 0.25 <= plain_share <= 0.35
    assert all(p.text[0].isupper() and p.text[-1] in ".?" for p in PROMPTS)


def test_prompts_are_deterministic() -> None:
    assert build_prompts() == PROMPTS


def test_no_prompt_is_a_vicuna_question() -> None:
    questions = _vicuna_questions()
    assert len(questions) == 80
    ours = {p.text for p in PROMPTS}
    assert not ours & set(questions)
    assert not {p.text.lower() for p in PROMPTS} & {q.lower() for q in questions}
    assert not {_normalize(t) for t in ours} & {_normalize(q) for q in questions}


def test_no_prompt_nearly_matches_a_vicuna_question() -> None:
    questions = [set(_normalize(q).split()) for q in _vicuna_questions()]
    for prompt in PROMPTS:
        words = set(_normalize(prompt.text).split())
        overlap = max(len(words & q) / len(words | q) for q in questions)
        assert overlap < 0.5, prompt.text
