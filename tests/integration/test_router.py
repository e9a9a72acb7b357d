"""Two apar servers behind sglang-router (`python -m apar_sgl.launch_router`): forked, drafted
and parallel-JSON requests through the router answer as one server alone; the cache-aware
policy sends a repeated prefix to the worker that cached it; a killed worker fails only its own
requests. The tests run in file order: the last two kill a worker, then the launcher."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from apar_sgl.server_process import free_port, process_group_alive
from tests.support.apar_fixture import LIST_ANSWER, LIST_PROMPT, PLAN_ANSWER, PLAN_PROMPT

GREEDY = {"temperature": 0, "max_new_tokens": 64}
SCHEMA = {
    "type": "object",
    "properties": {
        "color": {"enum": ["red", "blue", "green"]},
        "level": {"type": "integer", "minimum": 0, "maximum": 9},
        "active": {"type": "boolean"},
    },
    "required": ["color", "level", "active"],
}
TIMEOUT = (10, 120)  # connect, read: no request may hang a test


@dataclass
class Worker:
    url: str
    pid: int


@dataclass
class Cluster:
    url: str
    workers: list[Worker]
    proc: subprocess.Popen


def _wait_for_router(proc: subprocess.Popen, log_path: str, url: str, timeout_s: float) -> None:
    """Until the router lists both workers as healthy (it adds them in the background)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"launcher exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            if sum(w["is_healthy"] for w in _router_workers(url)) == 2:
                return
        except (requests.ConnectionError, requests.Timeout, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"router not ready in {timeout_s} s:\n{_tail(log_path)}")


def _router_workers(url: str) -> list[dict]:
    return requests.get(url + "/workers", timeout=5).json()["workers"]


def _tail(log_path: str) -> str:
    with open(log_path) as f:
        return f.read()[-4000:]


def _workers(log_path: str) -> list[Worker]:
    """The launcher's own line naming each worker's URL and pid."""
    with open(log_path) as f:
        line = next((line for line in f if "; workers: " in line), "")
    return [Worker(url, int(pid)) for url, pid in re.findall(r"(http://\S+) \(pid (\d+)\)", line)]


@pytest.fixture(scope="module")
def cluster(apar_model_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("router")
    template = tmp / "verbatim.jinja"  # chat prompts are the user's text, so they fork too
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    log_path = str(tmp / "launcher.log")
    url = f"http://127.0.0.1:{free_port()}"
    args = [
        *("--workers", "2", "--port", url.rsplit(":", 1)[1]),
        *("--router-health-check-interval-secs", "2"),  # see a dead worker in seconds
        *("--model-path", apar_model_path, "--dtype", "float32", "--chat-template", str(template)),
        *("--speculative-algorithm", "ANPD", "--no-anpd-measure-cost"),
        *("--apar-fork-policy", "always"),  # the tests pin the trees the model writes
    ]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "apar_sgl.launch_router", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_router(proc, log_path, url, timeout_s=900)
        yield Cluster(url, _workers(log_path), proc)
    finally:
        _shut_down(proc, log_path)


def _shut_down(proc: subprocess.Popen, log_path: str) -> None:
    """SIGTERM (the launcher stops everything); SIGKILL every process group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            for pgid in [proc.pid, *(w.pid for w in _workers(log_path))]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            proc.wait()


def _generate(url: str, text: str, **params) -> dict:
    body = {"text": text, "sampling_params": {**GREEDY, **params}}
    response = requests.post(url + "/generate", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def _complete(url: str, prompt: str, **extra) -> str:
    body = {"model": "default", "prompt": prompt, "temperature": 0, "max_tokens": 64, **extra}
    response = requests.post(url + "/v1/completions", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["text"]


def _drafted_tokens(cluster: Cluster) -> int:
    """Tokens ANPD has drafted and verified so far, over both workers."""
    infos = [
        requests.get(w.url + "/get_server_info", timeout=TIMEOUT).json() for w in cluster.workers
    ]
    return sum(info["internal_states"][0]["anpd"]["drafted_tokens"] for info in infos)


def test_forked_and_drafted_answers_match_one_server_alone(cluster):
    jobs = [(LIST_PROMPT, LIST_ANSWER), (PLAN_PROMPT, PLAN_ANSWER)]
    repeat, plain = "one two three " * 6, {"custom_params": {"apar": False}}
    before = _drafted_tokens(cluster)
    routed = [_generate(cluster.url, prompt) for prompt, _ in jobs]
    routed_plain = _complete(cluster.url, repeat, **plain)
    assert _drafted_tokens(cluster) > before  # ANPD drafted in the routed answers
    alone = [_generate(cluster.workers[0].url, prompt) for prompt, _ in jobs]
    assert routed_plain == _complete(cluster.workers[0].url, repeat, **plain)
    shape = ("branches", "max_depth", "total_tokens", "branch_tokens")  # not cache-dependent
    for (prompt, answer), r, a in zip(jobs, routed, alone, strict=True):
        assert r["text"] == a["text"] == answer
        assert [r["meta_info"]["apar"][k] for k in shape] == [
            a["meta_info"]["apar"][k] for k in shape
        ]
        assert _complete(cluster.url, prompt) == answer


def test_streamed_forked_answers_through_the_router(cluster):
    from openai import OpenAI

    body = {"text": LIST_PROMPT, "sampling_params": GREEDY, "stream": True}
    with requests.post(cluster.url + "/generate", json=body, stream=True, timeout=TIMEOUT) as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith(b"data: {")]
    assert len(events) > 1 and events[-1]["text"] == LIST_ANSWER
    client = OpenAI(base_url=cluster.url + "/v1", api_key="none", timeout=120)
    chunks = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": LIST_PROMPT}],
        temperature=0,
        max_tokens=64,
        stream=True,
    )
    assert "".join((c.choices[0].delta.content or "") for c in chunks if c.choices) == LIST_ANSWER


def test_per_request_apar_fields_pass_through_completions(cluster):
    raw = _complete(cluster.url, LIST_PROMPT, custom_params={"apar": False})
    assert raw == _complete(cluster.workers[0].url, LIST_PROMPT, custom_params={"apar": False})
    assert raw != LIST_ANSWER  # the model's own serial text: the opt-out reached the worker


def _parallel_json_chat(url: str, **opt_in) -> requests.Response:
    schema = {**SCHEMA, **opt_in.pop("schema_extra", {})}
    body = {
        "model": "default",
        "messages": [{"role": "user", "content": "red level 3 active"}],
        "temperature": 0,
        "max_tokens": 16,
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
        **opt_in,
    }
    return requests.post(url + "/v1/chat/completions", json=body, timeout=TIMEOUT)


def test_parallel_json_through_the_router_with_the_schema_keyword(cluster):
    """sglang-router 0.3.2 rebuilds chat requests from OpenAI's fields and drops the
    `apar_parallel_json` body flag; the schema keyword survives and opts in."""
    dropped = _parallel_json_chat(cluster.url, apar_parallel_json=True)
    assert dropped.status_code == 200 and "apar_parallel_json" not in (
        dropped.json().get("metadata") or {}
    )
    routed = _parallel_json_chat(cluster.url, schema_extra={"x-apar-parallel-json": True})
    assert routed.status_code == 200, routed.text
    direct = _parallel_json_chat(cluster.workers[0].url, apar_parallel_json=True)
    assert routed.json()["metadata"]["apar_parallel_json"]["branches"] == 3
    content = routed.json()["choices"][0]["message"]["content"]
    assert content == direct.json()["choices"][0]["message"]["content"]


def _prefix(i: int) -> str:
    return f"prefix {i}: " + "the quick brown fox jumps over the lazy dog " * 8


def _cached(url: str, text: str) -> float:
    """Share of the prompt that the worker which answered had in its radix cache."""
    meta = _generate(url, text, max_new_tokens=1)["meta_info"]
    return meta["cached_tokens"] / meta["prompt_tokens"]


def test_cache_aware_policy_sends_a_repeated_prefix_to_the_worker_that_cached_it(cluster):
    for i in range(3):
        assert _cached(cluster.url, _prefix(i) + "one") < 0.5  # new to every worker
        assert _cached(cluster.url, _prefix(i) + "two") > 0.8
        # Asked directly, exactly one worker has the prefix: the router sent both there.
        held = [_cached(w.url, _prefix(i) + "three") > 0.8 for w in cluster.workers]
        assert sorted(held) == [False, True]


def test_a_killed_worker_fails_its_requests_and_the_other_keeps_serving(cluster):
    """Kill, mid-answer, the worker that holds a prefix: its two requests in flight fail
    (a cut stream, a 5xx naming the worker), and once the router has marked it unhealthy
    every request goes to the live worker, its prefix's included."""
    text = _prefix(9)
    _cached(cluster.url, text + "a")  # the router now sends this prefix to one worker
    doomed = next(w for w in cluster.workers if _cached(w.url, text + "b") > 0.8)
    long = {"temperature": 0, "max_new_tokens": 800, "ignore_eos": True}
    with ThreadPoolExecutor(1) as pool:
        body = {"text": text + "c", "sampling_params": long}
        unary = pool.submit(requests.post, cluster.url + "/generate", json=body, timeout=TIMEOUT)
        body = {"text": text + "d", "sampling_params": long, "stream": True}
        with requests.post(cluster.url + "/generate", json=body, stream=True, timeout=TIMEOUT) as r:
            lines = r.iter_lines()
            assert next(line for line in lines if line.startswith(b"data: {"))
            os.killpg(doomed.pid, signal.SIGKILL)
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                list(lines)
        response = unary.result()
    assert response.status_code >= 500 and doomed.url in response.text, response.text
    deadline = time.monotonic() + 60
    while any(w["is_healthy"] for w in _router_workers(cluster.url) if w["url"] == doomed.url):
        assert time.monotonic() < deadline, "the router still routes to the dead worker"
        time.sleep(1)
    for prompt, answer in [(LIST_PROMPT, LIST_ANSWER), (PLAN_PROMPT, PLAN_ANSWER)] * 2:
        assert _generate(cluster.url, prompt)["text"] == answer
    _generate(cluster.url, text + "e")  # a 200 for the dead worker's prefix too


def test_sigterm_stops_the_router_and_every_worker(cluster):
    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(timeout=90) == 0
    groups = [cluster.proc.pid, *(w.pid for w in cluster.workers)]  # launcher+router, workers
    deadline = time.monotonic() + 30  # a group's last children exit just after its leader
    while live := [g for g in groups if process_group_alive(g)]:
        assert time.monotonic() < deadline, f"process groups still alive: {live}"
        time.sleep(1)
