"""The fork policy on real SGLang: `never` gives a complete fork-free answer, `auto` reports why."""

from __future__ import annotations

import pytest

from apar_sgl.fork_policy import MIN_GAIN
from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN
from tests.integration.isolated import generate_isolated
from tests.support.apar_fixture import LIST_ANSWER, LIST_PROMPT

GREEDY = {"temperature": 0.0, "max_new_tokens": 64}


@pytest.fixture(scope="module")
def control_ids(apar_model_path) -> list[int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(apar_model_path)
    return [tok.convert_tokens_to_ids(t) for t in (FORK_TOKEN, CHILD_TOKEN)]


def _engine(policy: str) -> dict:
    return {"dtype": "float32", "random_seed": 0, "apar_fork_policy": policy}


def test_never_gives_the_serial_answer_of_the_fork_masked_model(apar_model_path, control_ids):
    masked = {"custom_params": {"apar": False}, "logit_bias": {str(control_ids[0]): -1e9}}
    out, reference = generate_isolated(
        apar_model_path,
        _engine("never"),
        [(LIST_PROMPT, GREEDY), (LIST_PROMPT, {**GREEDY, **masked})],
    )
    assert out["output_ids"] == reference["output_ids"]  # the fork token masked, nothing else
    assert out["text"] == LIST_ANSWER  # complete: the model wrote every item inline
    assert not set(control_ids) & set(out["output_ids"])
    stats = out["meta_info"]["apar"]
    assert stats["branches"] == 1
    policy = stats["fork_policy"]
    assert (policy["policy"], policy["allowed_steps"]) == ("never", 0)
    assert policy["masked_steps"] > 0 and policy["decision"]["reason"] == "policy"


def test_auto_decides_once_per_answer_reports_why_and_keeps_the_answer(apar_model_path):
    outs = generate_isolated(apar_model_path, _engine("auto"), [(LIST_PROMPT, GREEDY)] * 3)
    for out in outs:  # forked or written inline, the fixture model's answer is the same
        assert out["text"] == LIST_ANSWER
        policy = out["meta_info"]["apar"]["fork_policy"]
        assert policy["policy"] == "auto"
        # one verdict for the whole answer: every step allowed, or every step masked
        assert sorted([policy["allowed_steps"], policy["masked_steps"]])[0] == 0
        assert policy["allowed_steps"] + policy["masked_steps"] > 0
        decision = policy["decision"]
        assert decision["reason"] in ("unmeasured", "gain") and decision["rows"] >= 1
        branches = out["meta_info"]["apar"]["branches"]
        assert (branches > 1) == decision["allow"]
        if decision["reason"] == "gain":
            assert decision["allow"] == (decision["gain"] >= MIN_GAIN)
    assert outs[0]["meta_info"]["apar"]["fork_policy"]["decision"]["reason"] == "unmeasured"
    assert all(ms > 0 for ms in outs[-1]["meta_info"]["apar"]["fork_policy"]["step_ms"].values())
