"""`--speculative-algorithm ANPD` on the tiny model: lossless against plain greedy decoding."""

from __future__ import annotations

import json

import pytest

from tests.integration.isolated import generate_isolated

PROMPTS = [
    "one two three four five six",
    "the quick brown fox jumps over the lazy dog the quick brown",
    "red blue green red blue green red",
    "hello world",
]
REPETITIVE = 1  # PROMPTS[1]: the tiny model's greedy answer repeats itself
SHARED_PREFIX = "the cat sat on the mat " * 6
GREEDY = {"temperature": 0, "max_new_tokens": 32}
SCHEMA = {
    "type": "object",
    "properties": {"color": {"enum": ["red", "blue", "green"]}, "n": {"enum": [1, 2, 3]}},
    "required": ["color", "n"],
    "additionalProperties": False,
}
JOBS = [
    (PROMPTS, GREEDY),  # 0: a batch of 4
    (PROMPTS[REPETITIVE], GREEDY),  # 1: alone
    (SHARED_PREFIX + "one", GREEDY),  # 2, 3: the second reuses the radix cache
    (SHARED_PREFIX + "two", GREEDY),
    ("json: ", {**GREEDY, "json_schema": json.dumps(SCHEMA)}),  # 4
]
# APAR off: an untrained model may emit the fork token, and forks are not what is compared here.
# No whitespace inside JSON: an untrained model would otherwise pad it until max_new_tokens.
ENGINE_ARGS = {
    "dtype": "float32",
    "random_seed": 0,
    "apar_mode": "off",
    "constrained_json_disable_any_whitespace": True,
}


@pytest.fixture(scope="module")
def plain(tiny_model_path):
    return generate_isolated(tiny_model_path, ENGINE_ARGS, JOBS)


@pytest.fixture(scope="module")
def anpd(tiny_model_path):
    return generate_isolated(
        tiny_model_path, {**ENGINE_ARGS, "speculative_algorithm": "ANPD"}, JOBS
    )


def _ids(outputs):
    return [o["output_ids"] for o in outputs]


def test_batch_of_four_matches_plain_greedy(plain, anpd):
    assert _ids(anpd[0]) == _ids(plain[0])
    assert all(len(o["output_ids"]) == GREEDY["max_new_tokens"] for o in anpd[0])


def test_single_request_matches_plain_and_accepts_several_tokens_per_step(plain, anpd):
    assert anpd[1]["output_ids"] == plain[1]["output_ids"]
    meta = anpd[1]["meta_info"]
    assert meta["spec_verify_ct"] < GREEDY["max_new_tokens"]
    assert meta["spec_accept_length"] > 1.0


def test_radix_cache_on_stays_identical(plain, anpd):
    assert anpd[3]["meta_info"]["cached_tokens"] > 0
    assert [anpd[2]["output_ids"], anpd[3]["output_ids"]] == [
        plain[2]["output_ids"],
        plain[3]["output_ids"],
    ]


def test_json_schema_request_is_valid_and_identical(plain, anpd):
    assert anpd[4]["output_ids"] == plain[4]["output_ids"]
    answer = json.loads(anpd[4]["text"])
    assert set(answer) == {"color", "n"}


def test_anpd_is_registered_with_sglang():
    from apar_sgl.runtime_patches import register
    from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

    register()
    algo = SpeculativeAlgorithm.from_string("anpd")
    assert algo.name == "ANPD"
    assert algo.is_ngram() and not algo.has_draft_kv()
