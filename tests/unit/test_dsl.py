"""The DSL against a scripted fake backend: batching, join order, captures, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from apar_sgl.dsl.backend import Backend, Completion, Request
from apar_sgl.dsl.chat import ChatFormat
from pydantic import BaseModel, Field

import apar_sgl as apar


class FakeBackend(Backend):
    """Answers each request from ``reply(request)``; records every batch."""

    model_path = "fake"

    def __init__(self, reply=None) -> None:
        super().__init__()
        self.batches: list[list[Request]] = []
        self.reply = reply or (lambda r: f"<{r.label}>")
        self._chat = ChatFormat(
            {"system": "S:", "user": "U:", "assistant": "A:"},
            {"system": "\n", "user": "\n", "assistant": "\n"},
        )

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion]:
        self.batches.append(list(requests))
        out = []
        for r in requests:
            reply = "" if r.params["max_new_tokens"] == 0 else self.reply(r)
            text, finish = reply if isinstance(reply, tuple) else (reply, "stop")
            out.append(Completion(text, {"finish_reason": {"type": finish}}))
        return out

    def _tokenizer(self) -> Any:
        return None


def test_import_is_light():
    code = "import sys, apar_sgl; assert 'sglang' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_roles_text_and_gen_run_in_order():
    backend = FakeBackend()

    @apar.function
    def prog(s, topic):
        s += apar.system("sys") + apar.user(f"about {topic}")
        s += apar.assistant("Answer: " + apar.gen("answer", max_tokens=5, stop="\n"))

    state = prog.run("cats", backend=backend)
    assert state.text == "S:sys\nU:about cats\nA:Answer: <answer>\n"
    assert state["answer"] == "<answer>"
    [[request]] = backend.batches
    assert request.prompt == "S:sys\nU:about cats\nA:Answer: "
    assert request.params["stop"] == ["\n"] and request.params["max_new_tokens"] == 5
    assert request.params["custom_params"] == {"apar": False}


def test_fork_branches_go_in_one_batch_and_join_in_order():
    backend = FakeBackend()

    @apar.function
    def prog(s):
        s += "Q\n"
        with apar.fork(["a", "b", "c"], join="|") as branches:
            for b in branches:
                b += b.item + ":" + apar.gen("x") + apar.gen("y")
        s += "\nEnd " + apar.gen("z")

    state = prog.run(backend=backend)
    sizes = [len(batch) for batch in backend.batches]
    assert sizes == [1, 3, 3, 1]  # prefix commit, x of all branches, y of all branches, z
    assert backend.batches[0][0].params["max_new_tokens"] == 0
    joined = "|".join(f"{i}:<fork0[{n}].x><fork0[{n}].y>" for n, i in enumerate("abc"))
    assert state.text == f"Q\n{joined}\nEnd <z>"
    assert [b["x"] for b in state.branches] == [f"<fork0[{n}].x>" for n in range(3)]
    assert backend.batches[2][1].prompt == "Q\nb:<fork0[1].x>"
    with pytest.raises(KeyError, match="captured in fork branches"):
        state["x"]


def test_nested_forks_batch_with_their_siblings():
    backend = FakeBackend()

    @apar.function
    def prog(s):
        s += "go"
        with s.fork(2) as outer:
            for b in outer:
                b += apar.gen("head")
                with b.fork(2) as inner:
                    for c in inner:
                        c += apar.gen("leaf")

    state = prog.run(backend=backend)
    # one prefix commit at the root; each inner prefix ends with a generation (already cached)
    assert [len(batch) for batch in backend.batches] == [1, 2, 4]
    leaves = [c["leaf"] for b in state.branches for c in b.branches]
    assert leaves == [f"<fork0[{i}].fork0[{j}].leaf>" for i in range(2) for j in range(2)]
    assert state.text == "go<fork0[0].head><fork0[0].fork0[0].leaf>\n<fork0[0].fork0[1].leaf>\n" + (
        "<fork0[1].head><fork0[1].fork0[0].leaf>\n<fork0[1].fork0[1].leaf>"
    )


def test_branch_values_are_not_readable_inside_the_block():
    @apar.function
    def prog(s):
        s += "go"
        with s.fork(2) as branches:
            branches[0] += apar.gen("x")
            branches[0]["x"]

    with pytest.raises(apar.dsl.DeferredError, match="after its fork block exits"):
        prog.run(backend=FakeBackend())


def test_fork_outside_a_program_and_bad_arguments_fail_clearly():
    with pytest.raises(apar.DslError, match="inside a running"):
        apar.fork(2)
    with pytest.raises(apar.DslError, match="only one of regex, choices"):
        apar.gen("x", regex="a", choices=["a"])
    with pytest.raises(apar.DslError, match="invalid regex"):
        apar.gen("x", regex="(")
    with pytest.raises(apar.DslError, match="max_tokens"):
        apar.gen("x", max_tokens=0)
    with pytest.raises(apar.DslError, match="x: the prompt is empty"):
        apar.function(lambda s: s.__iadd__(apar.gen("x"))).run(backend=FakeBackend())
    with pytest.raises(TypeError, match="_needs_topic: missing a required argument: 'topic'"):
        _needs_topic.run(backend=FakeBackend())


@apar.function
def _needs_topic(s, topic):
    s += topic


def test_choices_select_and_json_schema_captures():
    class Pet(BaseModel):
        kind: Literal["cat", "dog"]

    replies = {"c": "dog", "p": '{"kind": "cat"}', "bad": "bird"}
    backend = FakeBackend(lambda r: replies[r.label])

    @apar.function
    def prog(s, with_bad):
        s += "go" + apar.select("c", ["cat", "dog"]) + apar.gen("p", json_schema=Pet)
        if with_bad:
            s += apar.gen("bad", choices=["cat", "dog"])

    state = prog.run(False, backend=backend)
    assert state["c"] == "dog" and state["p"] == Pet(kind="cat")
    assert backend.batches[0][0].params["regex"] == "(cat|dog)"
    assert json.loads(backend.batches[1][0].params["json_schema"])["required"] == ["kind"]
    with pytest.raises(apar.GenerationError, match="bad: output 'bird' is not one of"):
        prog.run(True, backend=backend)


def test_parallel_auto_sets_the_apar_request_flag():
    assert apar.gen("x", parallel="auto").params["custom_params"] == {"apar": True}


class Address(BaseModel):
    city: str
    zip_code: str = Field(json_schema_extra={"apar_sequential": True})


class Person(BaseModel):
    name: str
    age: int
    home: Address
    nick: str


PERSON_VALUES = {
    "name": '"Ann"',
    "age": "31}",  # an open-ended number ends with the delimiter after it (json_gen)
    "home.city": '"Oslo"',
    "home.zip_code": '"0150"',
    "nick": '"an"',
}


def _person_reply(r: Request) -> str:
    return PERSON_VALUES[".".join(r.label.split("/")[1:])]


def test_gen_json_stages_follow_the_sequential_rule():
    backend = FakeBackend(_person_reply)

    @apar.function
    def prog(s):
        s += "Extract:\n" + apar.gen_json("person", Person)

    state = prog.run(backend=backend)
    assert state["person"] == Person(
        name="Ann", age=31, home=Address(city="Oslo", zip_code="0150"), nick="an"
    )
    assert [len(b) for b in backend.batches] == [1, 4, 1]  # commit, parallel stage, zip_code
    zip_prompt = backend.batches[2][0].prompt
    assert zip_prompt.startswith(
        "Extract:\nThe person's name: \"Ann\"\nThe person's age: 31\n"
        'The person\'s home city: "Oslo"\n'
    )
    assert zip_prompt.endswith('The person\'s home zip code:\n{"zip_code": ')
    assert json.loads(state.text.removeprefix("Extract:\n")) == state["person"].model_dump()
    assert set(state.meta("person")) == {"/name", "/age", "/home/city", "/home/zip_code", "/nick"}


def test_gen_json_serial_reference_gets_the_same_prompts():
    parallel, serial = FakeBackend(_person_reply), FakeBackend(_person_reply)

    @apar.function
    def prog(s, par):
        s += "Extract:\n" + apar.gen_json("person", Person, parallel=par)

    a, b = prog.run(True, backend=parallel), prog.run(False, backend=serial)
    assert a["person"] == b["person"]
    assert all(len(batch) == 1 for batch in serial.batches)
    prompts = sorted(r.prompt for batch in parallel.batches[1:] for r in batch)
    assert prompts == sorted(r.prompt for batch in serial.batches for r in batch)


def test_gen_json_schema_error_comes_before_any_generation():
    bad = {"type": "object", "properties": {"a": {"type": "object", "properties": {}, "not": {}}}}
    with pytest.raises(apar.SchemaSplitError, match="^/properties/a: unsupported keyword 'not'"):
        apar.gen_json("x", bad)


def test_gen_json_unfinished_branch_names_its_path_and_captures_nothing():
    def reply(r: Request):
        return ('"Osl', "length") if r.label.endswith("/home/city") else _person_reply(r)

    @apar.function
    def prog(s):
        s += "go\n" + apar.gen_json("person", Person, max_tokens=3)

    with pytest.raises(apar.BranchError, match=r"home\.city \(/home/city\): .*max_tokens=3") as e:
        prog.run(backend=FakeBackend(reply))
    assert e.value.path == ("home", "city")


def test_gen_json_invalid_assembled_value_is_an_error():
    # A string for "age" (after its delimiter is cut) parses but does not validate.
    backend = FakeBackend(lambda r: '"x"}' if r.label.endswith("/age") else '"x"')

    @apar.function
    def prog(s):
        s += "go" + apar.gen_json("person", Person)

    with pytest.raises(apar.GenerationError, match="assembled object is invalid: /age"):
        prog.run(backend=backend)


def test_run_batch_coalesces_concurrent_programs():
    gate = threading.Barrier(4)

    class SlowFake(FakeBackend):
        def _generate_batch(self, requests):
            if len(self.batches) == 0:
                gate.wait(timeout=5)
                time.sleep(0.3)  # the other programs queue behind this first call
            return super()._generate_batch(requests)

    backend = SlowFake()

    @apar.function
    def prog(s, n):
        s += "go"
        if n == 0:
            s += apar.gen("first")
        else:
            gate.wait(timeout=5)
        s += apar.gen("x")

    states = prog.run_batch([{"n": i} for i in range(4)], backend=backend, num_threads=4)
    assert [st["x"] for st in states] == ["<x>"] * 4
    assert max(len(b) for b in backend.batches) >= 3


def test_stream_yields_chunks_then_state():
    @apar.function
    def prog(s):
        s += "go" + apar.gen("a")
        with s.fork(2) as bs:
            for b in bs:
                b += apar.gen("b")

    stream = prog.stream(backend=FakeBackend())
    labels = [chunk.label for chunk in stream]
    assert labels == ["a", "fork0[0].b", "fork0[1].b"]
    assert stream.state["a"] == "<a>"
