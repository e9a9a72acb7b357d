"""`--dp-size 2` on a CPU-only machine (SGLang's data parallelism, no bind variable set): the
platform gives each rank its share of the cores, and forked, drafted and parallel-JSON requests
all come back as from one rank, with each tree's children kept on its parent's rank."""

from __future__ import annotations

import json
import os
import threading

import requests

from apar_sgl.server_process import ServerProcess
from tests.support.apar_fixture import LIST_ANSWER, LIST_PROMPT, PLAN_ANSWER, PLAN_PROMPT

GREEDY = {"temperature": 0, "max_new_tokens": 64}


def _generate(url: str, prompt: str) -> dict:
    body = {"text": prompt, "sampling_params": GREEDY}
    reply = requests.post(url + "/generate", json=body, timeout=300)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_two_dp_ranks_serve_forked_drafted_and_json_requests(apar_model_path):
    env = {k: v for k, v in os.environ.items() if k != "SGLANG_CPU_OMP_THREADS_BIND"}
    args = ["--model-path", apar_model_path, "--dtype", "float32", "--dp-size", "2"]
    args += ["--speculative-algorithm", "ANPD", "--apar-fork-policy", "always"]
    with ServerProcess(args, env=env) as server:  # SGLang alone refuses 2 ranks on 1 NUMA node
        jobs = [(LIST_PROMPT, LIST_ANSWER), (PLAN_PROMPT, PLAN_ANSWER)] * 2
        replies: list[dict | None] = [None] * len(jobs)

        def send(i: int) -> None:
            replies[i] = _generate(server.url, jobs[i][0])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        for (_, answer), reply in zip(jobs, replies, strict=True):
            assert reply is not None and reply["text"] == answer, reply
            assert reply["meta_info"]["apar"]["branches"] > 1  # forked, children on its rank
        info = requests.get(server.url + "/get_server_info", timeout=30).json()
        assert len(info["internal_states"]) == 2
        assert sum(s["anpd"]["drafted_tokens"] for s in info["internal_states"]) > 0

        schema = {
            "type": "object",
            "properties": {"title": {"type": "string", "maxLength": 12}},
            "required": ["title"],
        }
        body = {
            "model": "default",
            "messages": [{"role": "user", "content": LIST_PROMPT}],
            "max_tokens": 48,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "t", "schema": schema},
            },
            "apar_parallel_json": True,
        }
        chat = requests.post(server.url + "/v1/chat/completions", json=body, timeout=300)
        assert chat.status_code == 200, chat.text
        assert set(json.loads(chat.json()["choices"][0]["message"]["content"])) == {"title"}
