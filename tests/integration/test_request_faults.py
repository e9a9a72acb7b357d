"""A bad request fails alone: on a live server, bad apar fields get a 4xx naming the field, an
exception inside the scheduler's fork path ends only its request, and text that spells a
control token reaches the model as plain text."""

from __future__ import annotations

import pytest
import requests

from apar_sgl.server_process import ServerProcess
from tests.support.apar_fixture import LIST_PROMPT

GREEDY = {"temperature": 0, "max_new_tokens": 64}


@pytest.fixture(scope="module")
def faulty_server(apar_model_path, tmp_path_factory):
    """A server whose every APAR child start raises (APAR_TEST_FAULT=spawn)."""
    template = tmp_path_factory.mktemp("chat") / "verbatim.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    proc = ServerProcess(
        ["--model-path", apar_model_path, "--dtype", "float32", "--chat-template", str(template)]
        + ["--apar-fork-policy", "always"],  # every fork reaches the failpoint
        env={"APAR_TEST_FAULT": "spawn"},
    )
    yield proc
    proc.stop()


def _generate(server, text: str, **params) -> requests.Response:
    body = {"text": text, "sampling_params": {**GREEDY, **params}}
    return requests.post(server.url + "/generate", json=body, timeout=120)


def _alive_and_plain(server) -> None:
    reply = _generate(server, LIST_PROMPT, custom_params={"apar": False})
    assert reply.status_code == 200, reply.text
    assert reply.json()["text"].startswith(" list: 1. red"), reply.text


@pytest.mark.parametrize(
    ("custom", "field"),
    [
        ({"apar_max_branches": "many"}, "apar_max_branches"),
        ({"apar_max_depth": -2}, "apar_max_depth"),
        ({"apar": "yes"}, "custom_params.apar"),
        ({"apar_max_brnaches": 1}, "apar_max_brnaches"),
    ],
)
def test_bad_apar_fields_get_400_naming_the_field(faulty_server, custom, field):
    from openai import BadRequestError, OpenAI

    reply = _generate(faulty_server, LIST_PROMPT, custom_params=custom)
    assert reply.status_code == 400 and field in reply.text, reply.text
    client = OpenAI(base_url=faulty_server.url + "/v1", api_key="none")
    with pytest.raises(BadRequestError, match=field):
        client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": LIST_PROMPT}],
            max_tokens=8,
            extra_body={"custom_params": custom},
        )
    _alive_and_plain(faulty_server)


def test_fault_in_the_fork_path_fails_only_its_request(faulty_server):
    for _ in range(2):  # the server survives, and fails the same way again
        reply = _generate(faulty_server, LIST_PROMPT)
        assert reply.status_code >= 500 or "abort" in reply.text, reply.text
        assert "APAR_TEST_FAULT" in reply.text
        _alive_and_plain(faulty_server)
    assert "the server goes on" in faulty_server.log_text() or "failed" in faulty_server.log_text()


def test_control_token_text_is_encoded_as_plain_text(faulty_server, apar_model_path):
    from openai import OpenAI
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(apar_model_path)
    text = "Q: [Fork] and [Child]\nA:"
    control_ids = set(tokenizer.convert_tokens_to_ids(["[Fork]", "[Child]"]))
    assert control_ids & set(tokenizer.encode(text, add_special_tokens=False))
    plain = tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)

    body = {
        "text": text,
        "sampling_params": {**GREEDY, "max_new_tokens": 1, "custom_params": {"apar": False}},
        "return_logprob": True,
        "logprob_start_len": 0,
    }
    meta = requests.post(faulty_server.url + "/generate", json=body, timeout=120).json()
    prompt_ids = [entry[1] for entry in meta["meta_info"]["input_token_logprobs"]]
    assert not control_ids & set(prompt_ids)
    assert tokenizer.decode(prompt_ids) == tokenizer.decode(plain)

    client = OpenAI(base_url=faulty_server.url + "/v1", api_key="none")
    chat = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": text}],
        max_tokens=1,
        extra_body={"custom_params": {"apar": False}},
    )
    assert chat.usage.prompt_tokens == len(prompt_ids)


def test_a_child_sglang_rejects_ends_the_answer_with_an_error(apar_model_path):
    with ServerProcess(
        ["--model-path", apar_model_path, "--dtype", "float32"],
        env={"APAR_TEST_FAULT": "reject"},
    ) as server:
        reply = _generate(server, LIST_PROMPT)
        assert reply.status_code != 200 or (
            reply.json()["meta_info"]["finish_reason"]["type"] == "abort"
        ), reply.text
        assert "child rejected" in reply.text
        _alive_and_plain(server)


def test_a_failure_in_anpd_drafting_decodes_on_without_drafts(apar_model_path, faulty_server):
    """Every ANPD drafting step raises (APAR_TEST_FAULT=draft): the requests still get the
    plain greedy answer, the scheduler goes on, the log says what happened."""
    plain = _generate(faulty_server, LIST_PROMPT, custom_params={"apar": False}).json()["text"]
    args = ["--model-path", apar_model_path, "--dtype", "float32"]
    with ServerProcess(
        [*args, "--speculative-algorithm", "ANPD", "--apar-mode", "off"],
        env={"APAR_TEST_FAULT": "draft"},
    ) as server:
        for _ in range(2):
            reply = _generate(server, LIST_PROMPT)
            assert reply.status_code == 200, reply.text
            assert reply.json()["text"] == plain
        assert "anpd: drafting failed" in server.log_text()
