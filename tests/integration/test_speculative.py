"""SGLang's own NGRAM speculative algorithm on the CPU, through our platform's stand-ins."""

from __future__ import annotations

import pytest

from tests.integration.isolated import generate_isolated
from tests.integration.smollm2_prompts import smollm2_jobs

PROMPTS = [
    "one two three four five six",
    "the quick brown fox jumps over the lazy dog the quick brown",
    "red blue green red blue green red",
    "hello world",
]
GREEDY = {"temperature": 0, "max_new_tokens": 32}
JOBS = [(PROMPTS, GREEDY), (PROMPTS[1], GREEDY)]
# APAR off: an untrained model may emit the fork token, and forks are not what is compared here.
ENGINE_ARGS = {"dtype": "float32", "random_seed": 0, "apar_mode": "off"}


@pytest.fixture(scope="module")
def plain(tiny_model_path):
    return generate_isolated(tiny_model_path, ENGINE_ARGS, JOBS)


@pytest.fixture(scope="module")
def ngram(tiny_model_path):
    return generate_isolated(
        tiny_model_path, {**ENGINE_ARGS, "speculative_algorithm": "NGRAM"}, JOBS
    )


def test_ngram_batch_matches_plain_greedy(plain, ngram):
    assert [o["output_ids"] for o in ngram[0]] == [o["output_ids"] for o in plain[0]]
    assert all(len(o["output_ids"]) == GREEDY["max_new_tokens"] for o in ngram[0])
    assert all(o["meta_info"]["spec_verify_ct"] > 0 for o in ngram[0])
    # every verify step yields at least its bonus token
    assert all(o["meta_info"]["spec_accept_length"] >= 1.0 for o in ngram[0])


def test_ngram_single_request_matches_plain_greedy(plain, ngram):
    assert ngram[1]["output_ids"] == plain[1]["output_ids"]


def test_unknown_speculative_algorithm_fails_clearly(tiny_model_path):
    import apar_sgl

    with pytest.raises(ValueError, match="Unknown speculative algorithm name: NOSUCHALGO"):
        apar_sgl.Engine(tiny_model_path, dtype="float32", speculative_algorithm="NOSUCHALGO")


def test_ngram_on_smollm2_in_bfloat16_matches_plain_greedy_alone_and_batched():
    """The server's default dtype on the model users run (issue 21), NGRAM at 8 verify tokens."""
    path, jobs = smollm2_jobs()
    args = {"dtype": "bfloat16", "random_seed": 0, "apar_mode": "off"}
    plain = generate_isolated(path, args, jobs)
    ngram = generate_isolated(
        path, {**args, "speculative_algorithm": "NGRAM", "speculative_num_draft_tokens": 8}, jobs
    )
    ids = [
        [o["output_ids"] for o in out[0]] + [o["output_ids"] for o in out[1:]]
        for out in (plain, ngram)
    ]
    assert ids[1] == ids[0]
