"""The DSL on real SGLang (tiny random model): constraints hold, forks share the cached prefix."""

from __future__ import annotations

import json
import re
from typing import Literal

import pytest
from apar_sgl.dsl.backend import EngineBackend, HttpBackend
from pydantic import BaseModel, Field

import apar_sgl as apar


class Badge(BaseModel):
    code: str = Field(pattern=r"^[a-z]{2}$")
    level: int = Field(ge=0, le=9)
    pair: tuple[Literal["red", "blue"], bool]


@pytest.fixture(scope="module")
def backend(tiny_engine):
    return EngineBackend(tiny_engine)


@apar.function
def plan(s, items):
    s += apar.system("short answers")
    s += apar.user("the quick brown fox jumps over the lazy dog, list things")
    s += apar.assistant_begin()
    with apar.fork(items) as branches:
        for b in branches:
            b += f"{b.item}: " + apar.gen("line", max_tokens=6, stop="\n")
    s += "\nDone: " + apar.gen("done", max_tokens=4)
    s += apar.assistant_end()


def test_chat_roles_use_the_model_template(backend):
    assert backend.chat_format.prefix["user"] == "user: "
    assert backend.chat_format.suffix["assistant"] == "\n"


def test_fork_branches_batch_on_the_cached_prefix_and_join_in_order(backend):
    state = plan.run(["one", "two", "three", "four"], backend=backend)
    prefix = "system: short answers\nuser: the quick brown fox jumps over the lazy dog, list things"
    assert state.text.startswith(prefix + "\nassistant: one: ")
    lines = [b["line"] for b in state.branches]
    joined = "\n".join(
        f"{item}: {line}" for item, line in zip(["one", "two", "three", "four"], lines, strict=True)
    )
    assert joined in state.text
    assert state.text.index("one: ") < state.text.index("two: ") < state.text.index("four: ")
    prompt_tokens = [b.meta("line")["prompt_tokens"] for b in state.branches]
    cached = [b.meta("line")["cached_tokens"] for b in state.branches]
    # every branch reuses the committed shared prefix: only its own item text is new
    assert all(c >= p - 4 for c, p in zip(cached, prompt_tokens, strict=True)), (
        cached,
        prompt_tokens,
    )
    assert min(cached) >= 20


def test_nested_forks_join_depth_first(backend):
    @apar.function
    def nested(s):
        s += "the cat sat on the mat. "
        with s.fork(2, join=" | ") as outer:
            for b in outer:
                b += f"<{b.index}>" + apar.gen("head", max_tokens=3)
                with b.fork(2, join=",") as inner:
                    for c in inner:
                        c += f"[{b.index}.{c.index}]" + apar.gen("leaf", max_tokens=3)

    state = nested.run(backend=backend)
    order = [state.text.index(tag) for tag in ("<0>", "[0.0]", "[0.1]", " | <1>", "[1.0]", "[1.1]")]
    assert order == sorted(order)
    for b in state.branches:
        assert [c.label for c in b.branches] == [f"{b.label}.fork0[0]", f"{b.label}.fork0[1]"]
        assert all(c["leaf"] in state.text for c in b.branches)


def test_regex_choices_and_json_schema_constraints_hold(backend):
    @apar.function
    def constrained(s):
        s += "hello world "
        with s.fork(3) as bs:
            for b in bs:
                b += apar.gen("num", regex=r"[0-9]{3}-[a-c]{2}", max_tokens=12)
                b += apar.select("pick", ["red", "blue", "green"])
                b += apar.gen("obj", json_schema={"enum": ["a b", 7, None]}, max_tokens=8)

    state = constrained.run(backend=backend)
    for b in state.branches:
        assert re.fullmatch(r"[0-9]{3}-[a-c]{2}", b["num"])
        assert b["pick"] in ("red", "blue", "green")
        assert b["obj"] in ("a b", 7, None) and "obj" in b.captures


def test_gen_json_parallel_equals_each_branch_generated_alone(backend):
    @apar.function
    def extract(s, parallel):
        s += apar.user("red fox level 3") + apar.assistant_begin()
        s += apar.gen_json("badge", Badge, max_tokens=16, parallel=parallel)

    par = extract.run(True, backend=backend)
    ser = extract.run(False, backend=backend)
    assert isinstance(par["badge"], Badge)
    assert par["badge"] == ser["badge"]
    assert json.loads(par.text.split("assistant: ", 1)[1]) == par["badge"].model_dump(mode="json")
    metas = par.meta("badge")
    assert set(metas) == {"/code", "/level", "/pair/0", "/pair/1"}
    assert all(m["cached_tokens"] > 0 for m in metas.values())


def test_gen_json_branch_out_of_tokens_names_its_path(backend):
    class Note(BaseModel):
        level: int = Field(ge=0, le=9)
        text: str

    @apar.function
    def extract(s):
        s += "note: " + apar.gen_json("note", Note, max_tokens=2)

    with pytest.raises(apar.BranchError, match=r"^text \(/text\): value did not finish") as err:
        extract.run(backend=backend)
    assert err.value.path == ("text",)


def test_run_batch_and_stream(backend):
    states = plan.run_batch([{"items": ["a", "b"]}, {"items": ["c"]}], backend=backend)
    assert [len(s.branches) for s in states] == [2, 1]
    stream = plan.stream(["x", "y"], backend=backend)
    chunks = list(stream)
    assert {c.label for c in chunks} == {"fork0[0].line", "fork0[1].line", "done"}
    assert "".join(c.text for c in chunks if c.label == "done") == stream.state["done"]


def test_http_backend_against_our_server(tiny_model_path):
    from apar_sgl.server_process import ServerProcess

    args = ["--model-path", tiny_model_path, "--dtype", "float32", "--apar-mode", "off"]
    server = ServerProcess([*args, "--constrained-json-disable-any-whitespace"])
    try:
        http = HttpBackend(server.url)
        state = plan.run(["one", "two"], backend=http)
        assert [b.label for b in state.branches] == ["fork0[0]", "fork0[1]"]
        assert all(b.meta("line")["cached_tokens"] >= 20 for b in state.branches)
        whole = apar.function(lambda s: s.__iadd__("badge: " + apar.gen("b", json_schema=Badge)))
        assert isinstance(whole.run(backend=server.url)["b"], Badge)
    finally:
        server.stop()
