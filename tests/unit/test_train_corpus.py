from __future__ import annotations

import json

from apar_sgl.train.corpus import CorpusRecord, finish_reason, read_jsonl, remaining, write_jsonl
from apar_sgl.train.prompts import PROMPTS, generation_order


def test_jsonl_round_trip_and_append(tmp_path):
    path = tmp_path / "c.jsonl"
    first = [CorpusRecord("q1", True, "a: b\n", "stop", 4, "advice", "points")]
    second = [CorpusRecord("q2", False, "ünïcode", "length", 200, "fact", "short")]
    assert write_jsonl(first, path) == 1
    assert write_jsonl(second, path, append=True) == 1
    assert list(read_jsonl(path)) == first + second


def test_corpora_without_types_still_read_and_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "old.jsonl"
    old = {"prompt": "q", "structured": True, "answer": "a", "finish_reason": "stop"}
    path.write_text(json.dumps({**old, "completion_tokens": 3}) + "\n" + '{"prompt": "q2", "ans')
    assert list(read_jsonl(path)) == [CorpusRecord("q", True, "a", "stop", 3)]


def test_a_rerun_asks_only_the_prompts_not_answered_yet_in_the_same_order():
    ordered = generation_order(PROMPTS)[:50]
    done = [CorpusRecord(p.text, p.structured, "x", "stop", 1) for p in ordered[10:20]]
    left = remaining(ordered, done)
    assert left == ordered[:10] + ordered[20:]
    assert remaining(ordered, []) == ordered


def test_finish_reason_reads_sglang_meta():
    assert finish_reason({"finish_reason": {"type": "length", "length": 200}}) == "length"
    assert finish_reason({"finish_reason": {"type": "stop", "matched": 2}}) == "stop"
    assert finish_reason({}) == "unknown"


class _Template:
    """A tokenizer's chat template reduced to 'role: content' lines."""

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"


def test_the_teacher_sees_the_styles_system_prompt_and_the_record_keeps_the_user_prompt():
    from apar_sgl.train.corpus import chat_text
    from apar_sgl.train.prompts import SYSTEM_PROMPTS

    for style in SYSTEM_PROMPTS:
        prompt = next(p for p in PROMPTS if p.style == style)
        text = chat_text(_Template(), prompt)
        assert text.startswith(f"system: {SYSTEM_PROMPTS[style]}\nuser: {prompt.text}\n")
