"""The DSL with an APAR model (`parallel="auto"`), and SGLang's own frontend against our server."""

from __future__ import annotations

import pytest
import requests
from apar_sgl.dsl import EngineBackend

import apar_sgl as apar
from tests.support.apar_fixture import LIST_ANSWER, LIST_PROMPT


@apar.function
def answer(s, parallel):
    s += LIST_PROMPT
    s += apar.gen("answer", max_tokens=64, parallel=parallel)


def test_parallel_auto_lets_the_apar_model_fork_and_returns_the_joined_answer(apar_engine):
    backend = EngineBackend(apar_engine)
    forked = answer.run(parallel="auto", backend=backend)
    assert forked["answer"] == LIST_ANSWER
    assert forked.meta("answer")["apar"]["branches"] == 4
    serial = answer.run(parallel=False, backend=backend)
    assert "apar" not in serial.meta("answer")


@pytest.fixture(scope="module")
def server(tiny_server):
    return tiny_server


def test_sglang_frontend_fork_program_runs_unchanged_against_our_server(server):
    import sglang as sgl

    @sgl.function
    def two_branches(s):
        s += "the quick brown fox"
        forks = s.fork(2)
        for i, f in enumerate(forks):
            f += f" {i}" + sgl.gen("tail", max_tokens=5, temperature=0)
        forks.join()
        s += "|".join(f["tail"] for f in forks)

    state = two_branches.run(backend=sgl.RuntimeEndpoint(server.url))
    direct = [
        requests.post(
            server.url + "/generate",
            json={
                "text": f"the quick brown fox {i}",
                "sampling_params": {"max_new_tokens": 5, "temperature": 0},
            },
        ).json()["text"]
        for i in range(2)
    ]
    text = state.text()
    assert text.startswith("the quick brown fox")
    assert text == "the quick brown fox" + "|".join(direct)
