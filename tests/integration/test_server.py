"""`python -m apar_sgl.launch_server` on the tiny model: APIs, prefix cache, bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from apar_sgl.server_process import free_port


@pytest.fixture(scope="module")
def server(tiny_server):
    return tiny_server


def test_the_scheduler_leaves_the_cores_to_the_forward_pass(server):
    """SGLang's scheduler busy-polls when idle unless --sleep-on-idle, and its overlap thread
    competes with the forward pass; the CPU platform sets both flags."""
    import time

    import psutil

    info = requests.get(server.url + "/get_server_info", timeout=30).json()
    assert info["sleep_on_idle"] is True
    assert info["disable_overlap_schedule"] is True  # its second thread takes a forward's core
    launcher = psutil.Process(server.proc.pid)
    schedulers = [p for p in launcher.children(recursive=True) if "scheduler" in p.name()]
    assert schedulers
    before = sum(p.cpu_times().user + p.cpu_times().system for p in schedulers)
    time.sleep(3)
    after = sum(p.cpu_times().user + p.cpu_times().system for p in schedulers)
    assert after - before < 0.5  # a busy-polling scheduler uses about 3 s of CPU here


def test_chat_completion_returns_text(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="none")
    reply = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "the quick brown fox"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens == 8


def test_completions_and_native_generate(server):
    completion = requests.post(
        server.url + "/v1/completions",
        json={"model": "default", "prompt": "one two three", "max_tokens": 5, "temperature": 0},
    ).json()
    native = requests.post(
        server.url + "/generate",
        json={"text": "one two three", "sampling_params": {"max_new_tokens": 5, "temperature": 0}},
    ).json()
    assert completion["choices"][0]["text"] == native["text"]


def test_shared_prefix_is_served_from_the_radix_cache(server):
    prefix = "the quick brown fox jumps over the lazy dog " * 6
    metas = [
        requests.post(
            server.url + "/generate",
            json={"text": prefix + tail, "sampling_params": {"max_new_tokens": 2}},
        ).json()["meta_info"]
        for tail in ("one", "two")
    ]
    assert metas[1]["cached_tokens"] > metas[1]["prompt_tokens"] // 2


@pytest.mark.parametrize(
    "body",
    [
        {"model": "default", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1},
        {"model": "default", "messages": "not a list"},
    ],
)
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(server, body):
    response = requests.post(server.url + "/v1/chat/completions", json=body)
    assert 400 <= response.status_code < 500
    assert requests.get(server.url + "/health").status_code == 200


def test_malformed_json_body_gets_a_4xx(server):
    response = requests.post(
        server.url + "/v1/chat/completions",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500


def _launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "apar_sgl.launch_server", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_model_path_fails_with_one_line_naming_it():
    result = _launch("--model-path", "/nonexistent/model-dir", "--port", str(free_port()))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "/nonexistent/model-dir" in last and last.startswith("error:")


def test_port_in_use_fails_clearly(server, tiny_model_path):
    result = _launch("--model-path", tiny_model_path, "--port", str(server.port))
    assert result.returncode != 0
    assert f"port {server.port}" in result.stderr.strip().splitlines()[-1]


def test_help_lists_sglang_and_apar_arguments():
    result = _launch("--help")
    assert result.returncode == 0
    assert "--speculative-algorithm" in result.stdout and "--apar-fork-token" in result.stdout


def test_plain_sglang_launch_server_runs_on_cpu_through_the_plugin(tiny_model_path):
    """With apar-sgl installed, SGLang's own launcher works here with `--device cpu`."""
    import os
    import time

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sglang.launch_server",
            "--model-path",
            tiny_model_path,
            "--device",
            "cpu",
            "--port",
            str(port),
            "--dtype",
            "float32",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    out = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                body = {"text": "one two", "sampling_params": {"max_new_tokens": 3}}
                out = requests.post(f"http://127.0.0.1:{port}/generate", json=body, timeout=30)
                if out.status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(1)
        assert out is not None and out.status_code == 200, "plain SGLang server never served"
        assert out.json()["meta_info"]["completion_tokens"] == 3
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
