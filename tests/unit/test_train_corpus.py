from __future__ import annotations

from apar_sgl.train.corpus import CorpusRecord, finish_reason, interleave, read_jsonl, write_jsonl
from apar_sgl.train.prompts import PROMPTS


def test_interleave_keeps_every_prompt_and_spreads_plain_ones():
    ordered = interleave(PROMPTS)
    assert sorted(ordered) == sorted(PROMPTS)
    plain_share = sum(not p.structured for p in PROMPTS) / len(PROMPTS)
    head = ordered[:32]
    assert abs(sum(not p.structured for p in head) / 32 - plain_share) < 0.1


def test_jsonl_round_trip_and_append(tmp_path):
    path = tmp_path / "c.jsonl"
    first = [CorpusRecord("q1", True, "a: b\n", "stop", 4)]
    second = [CorpusRecord("q2", False, "ünïcode", "length", 200)]
    assert write_jsonl(first, path) == 1
    assert write_jsonl(second, path, append=True) == 1
    assert list(read_jsonl(path)) == first + second


def test_finish_reason_reads_sglang_meta():
    assert finish_reason({"finish_reason": {"type": "length", "length": 200}}) == "length"
    assert finish_reason({"finish_reason": {"type": "stop", "matched": 2}}) == "stop"
    assert finish_reason({}) == "unknown"
