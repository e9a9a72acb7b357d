"""The APAR runtime on real SGLang: forks, the joined answer, prefix reuse, limits, abort."""

from __future__ import annotations

import asyncio
import time

import pytest

from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN, Branch, join
from tests.support.apar_fixture import LIST_ANSWER, LIST_PROMPT, PLAN_ANSWER, PLAN_PROMPT

GREEDY = {"temperature": 0.0, "max_new_tokens": 64}
PLAIN = {**GREEDY, "custom_params": {"apar": False}}


@pytest.fixture(scope="module")
def tok(apar_model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(apar_model_path)


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False).input_ids


def serial_reference(engine, tok, prompt: str) -> list[int]:
    """The same tree generated one branch at a time with plain requests, then joined."""
    fork, child, eos = (tok.convert_tokens_to_ids(t) for t in (FORK_TOKEN, CHILD_TOKEN, "</s>"))

    def branch(ids: list[int], is_child: bool) -> Branch[int]:
        out = list(engine.generate(input_ids=ids, sampling_params=PLAIN)["output_ids"])
        if is_child and out and out[-1] == eos:
            out.pop()
        kids = [branch(ids + out[: p + 1] + [child], True) for p, t in enumerate(out) if t == fork]
        return Branch(out, kids)

    return join(branch(_ids(tok, prompt), False), fork)


@pytest.mark.parametrize(
    ("prompt", "answer", "branches", "depth"),
    [(LIST_PROMPT, LIST_ANSWER, 4, 1), (PLAN_PROMPT, PLAN_ANSWER, 4, 2)],
)
def test_answer_is_the_in_order_join(apar_engine, prompt, answer, branches, depth):
    out = apar_engine.generate(prompt, GREEDY)
    stats = out["meta_info"]["apar"]
    assert out["text"] == answer
    assert (stats["branches"], stats["max_depth"]) == (branches, depth)
    assert sum(stats["branch_tokens"]) == stats["total_tokens"]
    assert stats["critical_path_steps"] < stats["total_tokens"]
    assert out["meta_info"]["finish_reason"]["type"] == "stop"


@pytest.mark.parametrize("prompt", [LIST_PROMPT, PLAN_PROMPT])
def test_answer_equals_serial_reference_token_for_token(apar_engine, tok, prompt):
    forked = apar_engine.generate(prompt, GREEDY)["output_ids"]
    assert list(forked) == serial_reference(apar_engine, tok, prompt)


def test_children_prefix_comes_from_the_radix_tree(apar_engine):
    stats = apar_engine.generate(PLAN_PROMPT, GREEDY)["meta_info"]["apar"]
    children = stats["branch_cached_tokens"][1:]
    assert len(children) == 3
    for prompt_len, cached in children:
        assert prompt_len - 1 <= cached <= prompt_len


def test_branch_limit_suppresses_forks_without_losing_text(apar_engine, tok):
    params = {**GREEDY, "custom_params": {"apar_max_branches": 1}}
    out = apar_engine.generate(LIST_PROMPT, params)
    stats = out["meta_info"]["apar"]
    assert stats["branches"] == 2
    assert out["text"].startswith(" list: 1. red is warm 2. blue")
    assert out["meta_info"]["finish_reason"]["type"] == "stop"
    control = {tok.convert_tokens_to_ids(t) for t in (FORK_TOKEN, CHILD_TOKEN)}
    assert not control & set(out["output_ids"])


def test_depth_limit_keeps_nested_fork_serial(apar_engine):
    params = {**GREEDY, "custom_params": {"apar_max_depth": 1}}
    out = apar_engine.generate(PLAN_PROMPT, params)
    assert out["meta_info"]["apar"]["max_depth"] == 1
    assert out["text"].startswith(" day: 1. morning walk")
    assert out["meta_info"]["finish_reason"]["type"] == "stop"


def test_apar_off_per_request_is_plain_sglang(apar_engine, tok):
    out = apar_engine.generate(LIST_PROMPT, PLAIN)
    assert "apar" not in out["meta_info"]
    assert tok.convert_tokens_to_ids(FORK_TOKEN) in out["output_ids"]  # the model's own tokens
    short = {**GREEDY, "max_new_tokens": 3}  # ends before the model's first fork
    on = apar_engine.generate(LIST_PROMPT, short)
    off = apar_engine.generate(LIST_PROMPT, {**PLAIN, "max_new_tokens": 3})
    assert (on["text"], list(on["output_ids"])) == (off["text"], list(off["output_ids"]))
    assert on["meta_info"]["finish_reason"] == off["meta_info"]["finish_reason"]


def test_max_new_tokens_bounds_the_whole_answer(apar_engine):
    out = apar_engine.generate(LIST_PROMPT, {**GREEDY, "max_new_tokens": 8})
    assert len(out["output_ids"]) <= 8
    assert out["meta_info"]["apar"]["total_tokens"] <= 8 + out["meta_info"]["apar"]["branches"]
    assert out["meta_info"]["finish_reason"]["type"] == "length"


def test_stream_yields_the_answer_in_final_order(apar_engine):
    chunks = [c["text"] for c in apar_engine.generate(LIST_PROMPT, GREEDY, stream=True)]
    cumulative = all(b.startswith(a) for a, b in zip(chunks, chunks[1:], strict=False))
    assert (chunks[-1] if cumulative else "".join(chunks)) == LIST_ANSWER
    assert len(chunks) > 1


def test_abort_frees_every_branch(apar_engine):
    params = {**GREEDY, "max_new_tokens": 400, "ignore_eos": True}

    async def run_and_abort() -> dict:
        stream = await apar_engine.async_generate(
            LIST_PROMPT, params, stream=True, rid="apar-abort"
        )
        last = None
        async for chunk in stream:
            last = chunk
            if len(chunk["output_ids"]) >= 2:
                apar_engine.tokenizer_manager.abort_request("apar-abort")
        return last

    last = apar_engine.loop.run_until_complete(run_and_abort())
    assert last["meta_info"]["finish_reason"]["type"] == "abort"
    assert _flushed(apar_engine)  # nothing left running or queued
    after = apar_engine.generate(LIST_PROMPT, GREEDY)  # pool invariant still holds
    assert after["text"] == LIST_ANSWER
    state = apar_engine.get_server_info()["internal_states"][0]
    assert state.get("memory_leak_warnings", 0) == 0


def _flushed(engine, timeout: float = 20.0) -> bool:
    """Flush the radix cache once the scheduler has no request left (it refuses before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.flush_cache().success:
            return True
        time.sleep(0.2)
    return False


def test_async_concurrent_requests_get_their_own_answers(apar_engine):
    async def both():
        return await asyncio.gather(
            apar_engine.async_generate(LIST_PROMPT, GREEDY),
            apar_engine.async_generate(PLAN_PROMPT, GREEDY),
        )

    a, b = apar_engine.loop.run_until_complete(both())
    assert (a["text"], b["text"]) == (LIST_ANSWER, PLAN_ANSWER)


def test_stop_string_ends_and_is_trimmed_from_its_branch(apar_engine, tok):
    fork, child = (tok.convert_tokens_to_ids(t) for t in (FORK_TOKEN, CHILD_TOKEN))
    root = list(apar_engine.generate(LIST_PROMPT, PLAIN)["output_ids"])
    second_fork = [p for p, t in enumerate(root) if t == fork][1]
    context = _ids(tok, LIST_PROMPT) + root[: second_fork + 1] + [child]
    plain = apar_engine.generate(input_ids=context, sampling_params={**PLAIN, "stop": "cool"})
    assert plain["text"] == " is "  # SGLang cuts the text mid-token, before the stop string

    out = apar_engine.generate(LIST_PROMPT, {**GREEDY, "stop": "cool"})
    assert out["text"] == LIST_ANSWER.replace(" is cool", plain["text"])
    assert out["meta_info"]["apar"]["branches"] == 4  # the stop ended only its own branch
    assert out["meta_info"]["finish_reason"]["type"] == "stop"
    chunks = [
        c["text"]
        for c in apar_engine.generate(LIST_PROMPT, {**GREEDY, "stop": "cool"}, stream=True)
    ]
    cumulative = all(b.startswith(a) for a, b in zip(chunks, chunks[1:], strict=False))
    assert (chunks[-1] if cumulative else "".join(chunks)) == out["text"]
    kept = apar_engine.generate(LIST_PROMPT, {**GREEDY, "stop": "cool", "no_stop_trim": True})
    assert kept["text"] == LIST_ANSWER


def test_concurrent_children_limit_keeps_the_whole_answer(apar_engine):
    free = apar_engine.generate(LIST_PROMPT, GREEDY)
    one_at_a_time = {**GREEDY, "custom_params": {"apar_max_concurrent_children": 1}}
    out = apar_engine.generate(LIST_PROMPT, one_at_a_time)
    assert out["text"] == free["text"] == LIST_ANSWER
    assert out["meta_info"]["finish_reason"]["type"] == "stop"
    limited, unlimited = out["meta_info"]["apar"], free["meta_info"]["apar"]
    assert limited["peak_live_children"] == 1 < unlimited["peak_live_children"]
    assert limited["branch_tokens"] == unlimited["branch_tokens"]  # the same tree, run serially
    assert limited["critical_path_steps"] > unlimited["critical_path_steps"]
