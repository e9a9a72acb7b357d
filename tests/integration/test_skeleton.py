"""Skeleton-then-expand on real SGLang (tiny model): DSL program and `apar_mode` on the server.

The tiny random model writes junk, but under the skeleton regex the junk is a numbered list.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from apar_sgl.dsl.backend import EngineBackend, HttpBackend, Request
from apar_sgl.dsl.skeleton import (
    POINT_REGEX,
    SkeletonOptions,
    expand,
    outline,
    parse_skeleton,
    plain_prompt,
    skeleton,
    skeleton_regex,
)

import apar_sgl as apar
from apar_sgl.server_process import ServerProcess

QUESTIONS = ["the quick brown fox jumps over the lazy dog, list things", "a cat sat on a mat"]


@pytest.fixture(scope="module")
def backend(tiny_engine):
    return EngineBackend(tiny_engine)


@pytest.fixture(scope="module")
def answers(backend):
    return [skeleton.run(q, max_points=4, point_tokens=8, backend=backend) for q in QUESTIONS]


def test_the_skeleton_always_parses_into_bounded_points(backend):
    options = SkeletonOptions(max_points=3, point_chars=12)
    for q in QUESTIONS + ["How do I learn to swim?", "2+2?"]:
        state = outline.run(q, system_prompt=None, options=options, backend=backend)
        text = state["skeleton"]
        assert re.fullmatch(skeleton_regex(3, 12), text), text
        assert len(state.ret.points) <= 3
        assert all(1 <= len(p) <= 12 for p in state.ret.points)
        assert state.ret.points == parse_skeleton(text)


def test_skeleton_route_joins_points_in_order(answers):
    routed = [s for s in answers if s.ret.route == "skeleton"]
    assert routed, [s.ret for s in answers]
    for state in routed:
        answer = state.ret
        lines = answer.text.split("\n")
        assert len(lines) == len(answer.points) == answer.stats["points"]
        for n, (line, head, b) in enumerate(
            zip(lines, answer.points, state.branches, strict=True), 1
        ):
            assert line.startswith(f"{n}. ")
            assert line == f"{n}. {head.rstrip('.:;, ')}:{b['point']}"
        assert state.text.endswith(answer.text)


def test_joined_answer_equals_branches_run_one_by_one(answers, backend):
    state = next(s for s in answers if s.ret.route == "skeleton")
    serial = []
    for b in state.branches:
        prompt = b.text[: len(b.text) - len(b["point"])]
        params = apar.gen("point", max_tokens=8, regex=POINT_REGEX, stop="\n").params
        [completion] = backend.generate([Request(prompt, params)])
        serial.append(completion.text)
    assert serial == [b["point"] for b in state.branches]


def test_branches_reuse_the_shared_prefix_from_the_radix_cache(answers, tiny_engine):
    state = next(s for s in answers if s.ret.route == "skeleton")
    tokenizer = tiny_engine.tokenizer_manager.tokenizer
    shared = len(tokenizer.encode(state.text[: state.text.index(state.ret.text)]))
    cached = state.ret.stats["cached_tokens"]
    assert len(cached) == len(state.ret.points)
    assert all(c >= shared - 2 for c in cached), (cached, shared)


def test_plain_route_returns_exactly_plain_decoding(backend):
    @apar.function
    def plain(s, question):
        plain_prompt(s, question, "be brief")
        s += apar.gen("answer", max_tokens=12)

    for q in QUESTIONS:  # one point at most: the router always decodes plainly
        state = skeleton.run(
            q, system_prompt="be brief", max_points=1, max_tokens=12, backend=backend
        )
        assert state.ret.route == "plain"
        reference = plain.run(q, backend=backend)
        assert state.ret.text == reference["answer"]
        assert state.text == reference.text


@pytest.fixture(scope="module")
def server(tiny_model_path):
    proc = ServerProcess(
        ["--model-path", tiny_model_path, "--dtype", "float32", "--mem-fraction-static", "0.8"]
    )
    yield proc
    proc.stop()


def _chat(server, mode=None, **extra):
    body = {"model": "default", "messages": [{"role": "user", "content": QUESTIONS[0]}]}
    body |= {"temperature": 0, "max_tokens": 32, **extra}
    if mode is not None:
        body["apar_mode"] = mode
    return requests.post(server.url + "/v1/chat/completions", json=body, timeout=300)


def test_server_skeleton_mode_matches_the_dsl_program(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="none")
    reply = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": QUESTIONS[0]}],
        temperature=0,
        max_tokens=32,
        extra_body={"apar_mode": "skeleton"},
    )
    stats = reply.model_extra["apar"]
    backend = HttpBackend(server.url)
    options = SkeletonOptions(max_tokens=32)
    plan = outline.run(QUESTIONS[0], system_prompt=None, options=options, backend=backend).ret
    assert stats["mode"] == "skeleton"
    assert stats["route"] == plan.route == "skeleton"
    point_options = SkeletonOptions(point_tokens=32 // len(plan.points))
    expected = expand.run(plan, options=point_options, backend=backend).ret
    assert reply.choices[0].message.content == expected.text
    assert stats["points"] == len(plan.points)
    assert stats["critical_path_steps"] < stats["total_tokens"]


def test_server_stream_is_the_same_answer_in_order(server):
    whole = _chat(server, "skeleton").json()
    res = _chat(server, "skeleton", stream=True)
    assert res.status_code == 200
    events = [line[6:] for line in res.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["apar"]["route"] == whole["apar"]["route"]


def test_server_model_and_off_modes_are_plain_chat(server):
    plain = _chat(server).json()["choices"][0]["message"]["content"]
    assert _chat(server, "model").json()["choices"][0]["message"]["content"] == plain
    assert _chat(server, "off").json()["choices"][0]["message"]["content"] == plain


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"apar_mode": "sot"}, "apar_mode"),
        ({"apar_mode": "skeleton", "n": 2}, "n=2"),
        ({"apar_mode": "skeleton", "apar_parallel_json": True}, "apar_parallel_json"),
    ],
)
def test_server_rejects_bad_modes_with_400(server, extra, needle):
    res = _chat(server, **extra)
    assert res.status_code == 400, res.text
    assert needle in res.text
