"""`--speculative-algorithm ANPD`: lossless against plain greedy decoding, alone and inside APAR."""

from __future__ import annotations

import json

import pytest

from tests.integration.isolated import INTERNAL_STATE, generate_isolated
from tests.integration.smollm2_prompts import smollm2_jobs
from tests.support.apar_fixture import LIST_ANSWER, LIST_PROMPT, PLAN_ANSWER, PLAN_PROMPT

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
# The table learns continuations the schema forbids ("purple", 7): drafts to cut.
OFF_SCHEMA = 'json: {"color": "purple", "n": 7}, {"color":"purple","n":7},'
JOBS = [
    (PROMPTS, GREEDY),  # 0: a batch of 4
    (PROMPTS[REPETITIVE], GREEDY),  # 1: alone
    (SHARED_PREFIX + "one", GREEDY),  # 2, 3: the second reuses the radix cache
    (SHARED_PREFIX + "two", GREEDY),
    ("json: ", {**GREEDY, "json_schema": json.dumps(SCHEMA)}),  # 4
    (OFF_SCHEMA, {**GREEDY, "json_schema": json.dumps(SCHEMA)}),  # 5
    INTERNAL_STATE,  # 6
    (PROMPTS[REPETITIVE], {**GREEDY, "temperature": 0.7}),  # 7: sampled, verified by sampling
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


# Timing-blind: with measured costs on, whether a step drafts depends on this machine's speed.
ANPD_ARGS = {"speculative_algorithm": "ANPD", "anpd_measure_cost": False}


@pytest.fixture(scope="module")
def anpd(tiny_model_path):
    return generate_isolated(tiny_model_path, {**ENGINE_ARGS, **ANPD_ARGS}, JOBS)


@pytest.fixture(scope="module")
def anpd_never_drafting(tiny_model_path):
    """Defaults, but no draft clears the confidence gate: every step takes the plain path."""
    args = {**ENGINE_ARGS, "speculative_algorithm": "ANPD", "anpd_min_confidence": 1.0}
    return generate_isolated(tiny_model_path, args, JOBS[:1] + JOBS[4:7])


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


def test_grammar_rejected_drafts_are_cut_before_verification(plain, anpd):
    assert anpd[5]["output_ids"] == plain[5]["output_ids"]
    assert set(json.loads(anpd[5]["text"])) == {"color", "n"}
    assert anpd[6]["anpd"]["cut_tokens"] > 0  # only jobs 4 and 5 have a grammar
    assert "anpd" not in plain[6]


def test_sampled_request_goes_through_sampling_verify_and_accepts_drafts(plain, anpd):
    meta = anpd[7]["meta_info"]
    assert len(anpd[7]["output_ids"]) == GREEDY["max_new_tokens"]
    assert meta["spec_verify_ct"] < GREEDY["max_new_tokens"]  # drafts accepted as samples
    assert anpd[7]["output_ids"] != plain[1]["output_ids"]  # not silently greedy


# bfloat16, the CPU default: its coarse rounding is where batch or verify-shape dependent
# arithmetic would show up as a different greedy token.
BF16_ARGS = {**ENGINE_ARGS, "dtype": "bfloat16"}
BF16_JOBS = [(PROMPTS, GREEDY), *((prompt, GREEDY) for prompt in PROMPTS)]


@pytest.fixture(scope="module")
def plain_bf16(tiny_model_path):
    return generate_isolated(tiny_model_path, BF16_ARGS, BF16_JOBS)


@pytest.fixture(scope="module")
def anpd_bf16(tiny_model_path):
    return generate_isolated(tiny_model_path, {**BF16_ARGS, **ANPD_ARGS}, BF16_JOBS)


def test_plain_greedy_in_bfloat16_does_not_depend_on_the_batch(plain_bf16):
    assert _ids(plain_bf16[0]) == _ids(plain_bf16[1:])


def test_anpd_in_bfloat16_matches_plain_greedy_alone_and_batched(plain_bf16, anpd_bf16):
    assert _ids(anpd_bf16[0]) == _ids(plain_bf16[0])
    assert _ids(anpd_bf16[1:]) == _ids(plain_bf16[1:])
    assert anpd_bf16[1 + REPETITIVE]["meta_info"]["spec_accept_length"] > 1.0


APAR_GREEDY = {"temperature": 0.0, "max_new_tokens": 64}
APAR_JOBS = [
    (LIST_PROMPT, APAR_GREEDY),  # 0: 3 children
    (PLAN_PROMPT, APAR_GREEDY),  # 1: 3 children, one of them a grandchild
    ([LIST_PROMPT, PLAN_PROMPT], APAR_GREEDY),  # 2: both trees in one batch
    INTERNAL_STATE,  # 3
]


@pytest.fixture(scope="module")
def apar_plain(apar_model_path):
    return generate_isolated(apar_model_path, {"dtype": "float32", "random_seed": 0}, APAR_JOBS)


@pytest.fixture(scope="module")
def apar_anpd(apar_model_path):
    return generate_isolated(
        apar_model_path,
        {"dtype": "float32", "random_seed": 0, **ANPD_ARGS},
        APAR_JOBS,
    )


def test_steps_without_drafts_run_as_plain_decode_and_stay_identical(plain, anpd_never_drafting):
    batch, json_job, off_schema_job, state = anpd_never_drafting
    assert _ids(batch) == _ids(plain[0])
    assert [json_job["output_ids"], off_schema_job["output_ids"]] == [
        plain[4]["output_ids"],
        plain[5]["output_ids"],
    ]
    stats = state["anpd"]
    assert stats["drafted_tokens"] == 0
    assert stats["plain_decode_batches"] > 0
    assert stats["decode_steps"] >= stats["plain_decode_batches"]
    assert all(o["meta_info"]["spec_verify_ct"] == GREEDY["max_new_tokens"] - 1 for o in batch)


def test_apar_with_anpd_gives_the_same_joined_answers(apar_plain, apar_anpd):
    assert [apar_anpd[0]["text"], apar_anpd[1]["text"]] == [LIST_ANSWER, PLAN_ANSWER]
    assert _ids(apar_anpd[:2]) == _ids(apar_plain[:2])
    assert _ids(apar_anpd[2]) == _ids(apar_plain[2])


def test_apar_children_inherit_tables_and_accept_drafts(apar_anpd):
    stats = apar_anpd[3]["anpd"]
    assert stats["inherited_tables"] >= 6  # every child of jobs 0 and 1 (and of job 2)
    assert stats["accepted_tokens"] > 0  # some branch verified more than one token per step
    assert stats["accept_length"] > 1.0


def test_anpd_is_registered_with_sglang():
    from apar_sgl.runtime_patches import register
    from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

    register()
    algo = SpeculativeAlgorithm.from_string("anpd")
    assert algo.name == "ANPD"
    assert algo.is_ngram() and not algo.has_draft_kv()


# SmolLM2 in bfloat16, the server's default: the model and dtype users run. Its 30 layers and
# real shapes are where verify-shape dependent rounding would flip greedy tokens (issue 21).
@pytest.fixture(scope="module")
def smollm2_plain_and_anpd():
    path, jobs = smollm2_jobs()
    args = {"dtype": "bfloat16", "random_seed": 0, "apar_mode": "off"}
    plain = generate_isolated(path, args, jobs)
    return plain, generate_isolated(path, {**args, **ANPD_ARGS}, jobs)


def test_anpd_on_smollm2_in_bfloat16_matches_plain_greedy_alone_and_batched(
    smollm2_plain_and_anpd,
):
    plain, anpd = smollm2_plain_and_anpd
    assert _ids(anpd[1:]) == _ids(plain[1:])
    assert _ids(anpd[0]) == _ids(plain[0])
    # the first token comes from prefill; fewer steps than the rest: drafts were accepted
    steps = sum(o["meta_info"]["spec_verify_ct"] for o in anpd[1:])
    assert steps < sum(len(o["output_ids"]) - 1 for o in anpd[1:])
