"""APAR through `python -m apar_sgl.launch_server`'s OpenAI API: the `apar` object and usage."""

from __future__ import annotations

import pytest
import requests

from apar_sgl.server_process import ServerProcess
from tests.support.apar_fixture import LIST_ANSWER, LIST_PROMPT

STAT_KEYS = {
    "branches",
    "max_depth",
    "total_tokens",
    "critical_path_steps",
    "branch_tokens",
    "peak_kv_tokens",
}
OFF = {"custom_params": {"apar": False}}


@pytest.fixture(scope="module")
def server(apar_model_path, tmp_path_factory):
    # The chat prompt is the user's text verbatim, so chat requests fork like completions.
    template = tmp_path_factory.mktemp("chat") / "verbatim.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    proc = ServerProcess(
        ["--model-path", apar_model_path, "--dtype", "float32", "--chat-template", str(template)]
        + ["--apar-fork-policy", "always"]  # the tests pin the trees the model writes
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="none")


@pytest.fixture(scope="module")
def native(server) -> dict:
    """The /generate result of the same request, whose meta_info["apar"] the API must mirror."""
    body = {"text": LIST_PROMPT, "sampling_params": {"temperature": 0, "max_new_tokens": 64}}
    return requests.post(server.url + "/generate", json=body, timeout=120).json()


def _create(client, chat: bool, **kwargs):
    common = {"model": "default", "temperature": 0, "max_tokens": 64, **kwargs}
    if chat:
        return client.chat.completions.create(
            messages=[{"role": "user", "content": LIST_PROMPT}], **common
        )
    return client.completions.create(prompt=LIST_PROMPT, **common)


def _text(reply, chat: bool) -> str:
    choice = reply.choices[0]
    return choice.message.content if chat else choice.text


def _streamed_text(chunks, chat: bool) -> str:
    return "".join(
        (c.choices[0].delta.content if chat else c.choices[0].text) or ""
        for c in chunks
        if c.choices
    )


def _assert_mirrors(apar: dict, native: dict) -> None:
    expected = native["meta_info"]["apar"]
    assert STAT_KEYS <= set(apar)
    shape = ("branches", "max_depth", "total_tokens", "branch_tokens")
    assert [apar[k] for k in shape] == [expected[k] for k in shape]
    assert (apar["branches"], apar["max_depth"]) == (4, 1)


@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_response_carries_apar_stats(client, native, chat):
    reply = _create(client, chat)
    assert _text(reply, chat) == LIST_ANSWER
    _assert_mirrors(reply.model_extra["apar"], native)


def test_completion_tokens_count_the_joined_answer(client, native):
    reply = _create(client, False, extra_body={"return_token_ids": True})
    apar = reply.model_extra["apar"]
    assert reply.usage.completion_tokens == len(reply.choices[0].token_ids)
    assert reply.usage.completion_tokens == native["meta_info"]["completion_tokens"]
    # The tree also generated 3 fork tokens and each child's final end-of-sequence token.
    assert reply.usage.completion_tokens == apar["total_tokens"] - 2 * (apar["branches"] - 1)


@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_stream_final_chunks_carry_apar_stats(client, native, chat):
    chunks = list(_create(client, chat, stream=True, stream_options={"include_usage": True}))
    assert _streamed_text(chunks, chat) == LIST_ANSWER
    finish = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    usage = chunks[-1]
    assert usage.usage is not None and not usage.choices
    for chunk in (finish, usage):
        _assert_mirrors(chunk.model_extra["apar"], native)
    carries = ["apar" in (c.model_extra or {}) for c in chunks]
    first = carries.index(True)  # only the tail, sent once the whole tree has finished
    assert 0 < first and all(carries[first:])
    assert usage.usage.completion_tokens == native["meta_info"]["completion_tokens"]


@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_opt_out_gives_the_raw_text_and_no_apar(client, server, chat, stream):
    body = {"text": LIST_PROMPT, "sampling_params": {"temperature": 0, "max_new_tokens": 64, **OFF}}
    raw = requests.post(server.url + "/generate", json=body, timeout=120).json()["text"]
    reply = _create(client, chat, stream=stream, extra_body=OFF)
    replies = list(reply) if stream else [reply]
    text = _streamed_text(replies, chat) if stream else _text(reply, chat)
    assert text == raw != LIST_ANSWER
    assert not any("apar" in (r.model_extra or {}) for r in replies)
