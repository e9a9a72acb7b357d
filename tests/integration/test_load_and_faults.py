"""Load and faults on a live server (APAR fixture model, ANPD drafting every request): a mix of
concurrent requests, clients that walk away, aborts with children still queued, a model made
to fork at every token, a small KV pool that forces retraction, and SIGTERM mid-work. Each
ends with nothing left behind: no running request, no live APAR tree, no live n-gram table."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from apar_sgl.bench.load import KINDS, idle_counters, run_load
from apar_sgl.server_process import ServerProcess, process_group_alive
from tests.support.apar_fixture import LIST_PROMPT, PLAN_PROMPT

PROMPTS = [LIST_PROMPT, PLAN_PROMPT]
DRAFT = 8  # --speculative-num-draft-tokens
BASE = [
    "--dtype",
    "float32",
    "--speculative-algorithm",
    "ANPD",
    "--speculative-num-draft-tokens",
    str(DRAFT),
    "--apar-fork-policy",
    "always",  # the fixture model's trees, not the measured-cost policy, are under test
]


@pytest.fixture(scope="module")
def server(apar_model_path):
    proc = ServerProcess(["--model-path", apar_model_path, *BASE])
    yield proc
    proc.stop()


def _generate(url, text=LIST_PROMPT, timeout=120, **params):
    body = {"text": text, "sampling_params": {"temperature": 0, "max_new_tokens": 48, **params}}
    return requests.post(url + "/generate", json=body, timeout=timeout)


def _assert_nothing_left(url, log: str = "") -> None:
    after = idle_counters(url)
    assert after.pop("healthy") is True
    assert not any(after.values()), after
    assert "memory leak detected" not in log


def test_mixed_load_completes_and_leaves_nothing_behind(server):
    report = run_load(server.url, PROMPTS, clients=8, duration_s=20, max_tokens=24)
    summary = report.summary()
    assert summary["errors"] == {}, summary
    assert set(summary["by_kind"]) == set(KINDS)
    assert summary["after"].pop("healthy") is True
    assert not any(summary["after"].values()), summary["after"]
    assert "memory leak detected" not in server.log_text()


def test_abort_with_children_still_queued_frees_everything(server):
    rid = "abort-queued-children"
    body = {
        "rid": rid,
        "text": PLAN_PROMPT,
        "sampling_params": {
            "temperature": 0,
            "max_new_tokens": 48,
            "custom_params": {"apar_max_concurrent_children": 1},  # the others wait
        },
    }
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            reply=requests.post(server.url + "/generate", json=body, timeout=120)
        )
    )
    thread.start()
    time.sleep(0.5)
    requests.post(server.url + "/abort_request", json={"rid": rid}, timeout=30)
    thread.join(120)
    assert not thread.is_alive()
    reply = result["reply"]
    finish = reply.json()["meta_info"]["finish_reason"] if reply.status_code == 200 else None
    assert reply.status_code != 200 or finish["type"] in ("abort", "stop", "length"), reply.text
    _assert_nothing_left(server.url, server.log_text())


def test_client_leaving_a_forking_stream_frees_its_tree(server):
    reference = _generate(server.url, PLAN_PROMPT).json()
    assert reference["meta_info"]["apar"]["branches"] > 1, reference  # the prompt forks
    body = {
        "text": PLAN_PROMPT,
        "stream": True,
        "sampling_params": {"temperature": 0, "max_new_tokens": 48},
    }
    with requests.post(server.url + "/generate", json=body, stream=True, timeout=120) as reply:
        assert reply.status_code == 200, reply.text
        first = next(line for line in reply.iter_lines() if line.startswith(b"data:"))
    assert b"[DONE]" not in first  # the client left while the tree was still decoding
    _assert_nothing_left(server.url, server.log_text())
    again = _generate(server.url, PLAN_PROMPT).json()
    assert again["text"] == reference["text"]


def test_a_model_forced_to_fork_at_every_token_stays_within_its_limits(server, apar_model_path):
    from transformers import AutoTokenizer

    fork_id = AutoTokenizer.from_pretrained(apar_model_path).convert_tokens_to_ids("[Fork]")
    reply = _generate(
        server.url,
        logit_bias={str(fork_id): 100.0},
        custom_params={"apar_max_branches": 4, "apar_max_depth": 2},
    )
    assert reply.status_code == 200, reply.text
    stats = reply.json()["meta_info"]["apar"]
    # The fork mask is set per step; one ANPD verify step can accept up to DRAFT tokens, so
    # forks and tokens past a limit are bounded by one step's worth (a known limit).
    assert 1 <= stats["branches"] - 1 <= 4 + DRAFT - 1 and stats["max_depth"] <= 2, stats
    assert stats["total_tokens"] <= 48 + DRAFT
    _assert_nothing_left(server.url, server.log_text())


def test_small_kv_pool_retracts_forking_requests_without_shortening_answers(apar_model_path):
    """A 160-token pool, and SGLang's own retraction test mode (SGLANG_TEST_RETRACT: retract
    every few decode steps) so that forking trees are retracted for certain."""
    with ServerProcess(
        ["--model-path", apar_model_path, *BASE, "--max-total-tokens", "160"],
        env={"SGLANG_TEST_RETRACT": "1"},
    ) as small:
        reference = {p: _generate(small.url, p).json()["text"] for p in PROMPTS}
        replies: list[requests.Response] = []
        threads = [
            threading.Thread(target=lambda p=p: replies.append(_generate(small.url, p)))
            for p in PROMPTS * 6
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        log = small.log_text()
        assert "Retract requests" in log or "Testing retraction" in log, "nothing was retracted"
        for reply in replies:
            if reply.status_code == 200:  # complete and unchanged, or a clear error
                assert reply.json()["text"] in reference.values(), reply.json()
            else:
                assert reply.json().get("error") or reply.text
        _assert_nothing_left(small.url, log)


def test_sigterm_during_work_exits_cleanly_with_no_process_left(apar_model_path):
    proc = ServerProcess(["--model-path", apar_model_path, *BASE])
    try:
        senders = [
            threading.Thread(target=lambda: _swallow(lambda: _generate(proc.url, timeout=60)))
            for _ in range(4)
        ]
        for thread in senders:
            thread.start()
        time.sleep(1.0)
        os.kill(proc.proc.pid, signal.SIGTERM)  # the launcher only, as a supervisor would
        proc.proc.wait(60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process_group_alive(proc.proc.pid):
            time.sleep(0.5)
        assert not process_group_alive(proc.proc.pid), "processes of the server outlived it"
        for thread in senders:
            thread.join(60)
    finally:
        proc.stop()


def _swallow(call) -> None:
    try:
        call()
    except requests.RequestException:
        pass
