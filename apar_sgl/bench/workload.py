"""Benchmark workloads: questions in, chat-templated prompts out."""

from __future__ import annotations

import json
from importlib import resources
from typing import NamedTuple


class Question(NamedTuple):
    question_id: int
    category: str
    text: str


def vicuna_questions(limit: int | None = None) -> list[Question]:
    """The 80 Vicuna questions (first turn), in file order; see data/SOURCE.md."""
    path = resources.files("apar_sgl.bench") / "data" / "vicuna_bench.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    questions = [Question(r["question_id"], r["category"], r["turns"][0]) for r in rows]
    return questions[:limit] if limit else questions


# The `rewrite` workload: an answer that copies its prompt, as in the summarisation and code
# editing tasks of the ANPD paper, where n-gram drafts from the prompt are nearly certain.
REWRITE_INSTRUCTION = (
    "Rewrite the following text with any spelling or grammar mistakes corrected. "
    "Write out the full text."
)


def chat_prompts(
    model_path: str, questions: list[Question], instruction: str | None = None
) -> list[str]:
    """Each question as a single user turn in the model's chat template, after `instruction`
    and a blank line when one is given."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    turns = [q.text if instruction is None else f"{instruction}\n\n{q.text}" for q in questions]
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": turn}], tokenize=False, add_generation_prompt=True
        )
        for turn in turns
    ]
