"""`"apar_parallel_json": true` on /v1/chat/completions: one valid document, or a precise error.

The tiny random model writes junk, so the schemas bound every leaf (enums, bools, bounded
integers, short strings) and each branch always finishes.
"""

from __future__ import annotations

import json
import logging
import time

import jsonschema
import pytest
import requests
from apar_sgl.dsl import HttpBackend

import apar_sgl as apar
from apar_sgl.server_process import ServerProcess

logger = logging.getLogger(__name__)

PROFILE = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "maxLength": 3},
        "level": {"type": "integer", "minimum": 0, "maximum": 9},
        "active": {"type": "boolean"},
        "color": {"enum": ["red", "blue", "green"]},
        "home": {
            "type": "object",
            "properties": {
                "city": {"enum": ["Leeds", "Lisbon"]},
                "floor": {"type": "integer", "minimum": 0, "maximum": 20},
            },
            "required": ["city", "floor"],
        },
        "pair": {
            "type": "array",
            "prefixItems": [{"type": "boolean"}, {"enum": ["a", "b"]}],
            "minItems": 2,
            "maxItems": 2,
        },
    },
    "required": ["code", "level", "active", "color", "home", "pair"],
}
MESSAGES = [{"role": "user", "content": "red fox level 3 in Leeds"}]


@pytest.fixture(scope="module")
def server(tiny_model_path):
    proc = ServerProcess(
        [
            "--model-path",
            tiny_model_path,
            "--dtype",
            "float32",
            "--apar-mode",
            "off",
            "--constrained-json-disable-any-whitespace",
            # Other engines load on this shared machine meanwhile, which skews SGLang's
            # before/after-load memory estimate; the KV pool is capped in tokens anyway.
            "--mem-fraction-static",
            "0.8",
        ]
    )
    yield proc
    proc.stop()


def _chat(server, schema, *, flag=True, timeout=300, **extra):
    body = {
        "model": "default",
        "messages": MESSAGES,
        "temperature": 0,
        "max_tokens": 16,
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
        **extra,
    }
    if flag is not None:
        body["apar_parallel_json"] = flag
    return requests.post(server.url + "/v1/chat/completions", json=body, timeout=timeout)


def test_openai_client_gets_one_valid_document_in_schema_order(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="none")
    reply = client.chat.completions.create(
        model="default",
        messages=MESSAGES,
        temperature=0,
        max_tokens=16,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PROFILE}},
        extra_body={"apar_parallel_json": True},
    )
    doc = json.loads(reply.choices[0].message.content)
    jsonschema.validate(doc, PROFILE)
    assert list(doc) == list(PROFILE["properties"])
    stats = reply.metadata["apar_parallel_json"]
    assert stats["branches"] == 8 and stats["stages"] == 1
    assert reply.usage.completion_tokens >= stats["decode_steps"] > 0


def test_document_equals_the_dsl_serial_reference(server, tiny_model_path):
    doc = json.loads(_chat(server, PROFILE).json()["choices"][0]["message"]["content"])
    from transformers import AutoTokenizer

    prompt = AutoTokenizer.from_pretrained(tiny_model_path).apply_chat_template(
        MESSAGES, tokenize=False, add_generation_prompt=True
    )

    @apar.function
    def serial(s):
        s += prompt + apar.gen_json("doc", PROFILE, max_tokens=16, parallel=False)

    assert serial.run(backend=HttpBackend(server.url))["doc"] == doc


def test_without_the_flag_sglang_answers_as_usual(server):
    schema = {"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"]}
    for flag in (None, False):
        response = _chat(server, schema, flag=flag)
        assert response.status_code == 200
        body = response.json()
        assert "apar_parallel_json" not in (body.get("metadata") or {})
        assert json.loads(body["choices"][0]["message"]["content"])["a"] in (True, False)


def test_the_schema_keyword_opts_in_as_the_flag_does(server):
    by_flag = _chat(server, PROFILE).json()
    by_keyword = _chat(server, {**PROFILE, "x-apar-parallel-json": True}, flag=None).json()
    assert by_keyword["metadata"]["apar_parallel_json"] == by_flag["metadata"]["apar_parallel_json"]
    content = by_keyword["choices"][0]["message"]["content"]
    assert content == by_flag["choices"][0]["message"]["content"]
    response = _chat(server, {**PROFILE, "x-apar-parallel-json": "yes"}, flag=None)
    assert response.status_code == 400 and "must be a boolean" in response.json()["message"]


@pytest.mark.parametrize(
    ("schema", "pointer", "words"),
    [
        (
            {"type": "object", "properties": {"age": {"type": "integer", "minimum": "zero"}}},
            "/properties/age/minimum",
            "is not of type",
        ),
        (
            {
                "type": "object",
                "properties": {"inner": {"type": "object", "properties": {}, "minProperties": 1}},
            },
            "/properties/inner",
            "unsupported keyword 'minProperties'",
        ),
        ({"type": "array", "items": {"type": "integer"}}, "/", "must be an object"),
    ],
)
def test_bad_schema_is_a_400_naming_its_pointer(server, schema, pointer, words):
    response = _chat(server, schema)
    assert response.status_code == 400
    message = response.json()["message"]
    assert f"{pointer}: " in message and words in message
    assert requests.get(server.url + "/health").status_code == 200


def test_stream_and_non_boolean_flag_are_rejected(server):
    assert _chat(server, PROFILE, stream=True).status_code == 400
    response = _chat(server, PROFILE, flag="yes")
    assert response.status_code == 400 and "must be a boolean" in response.json()["message"]


def test_branch_out_of_tokens_fails_naming_its_path_and_returns_no_document(server):
    schema = {"type": "object", "properties": {"note": {"type": "string"}}}
    response = _chat(server, schema, max_tokens=1)
    assert response.status_code == 422
    body = response.json()
    assert "choices" not in body
    assert body["message"].startswith("note (/note): value did not finish within max_tokens=1")


def _nested(depth: int) -> dict:
    schema: dict = {"type": "boolean"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}, "required": ["x"]}
    return schema


def _wide(leaves: int) -> dict:
    return {"type": "object", "properties": {f"p{i}": {"type": "boolean"} for i in range(leaves)}}


def _obj(**properties) -> dict:
    return {"type": "object", "properties": properties}


_NODE = {
    "type": "object",
    "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/N"}}},
}
# (schema, statuses a client may get, words the error names); each case must answer in bounded
# time and leave the server serving.
HOSTILE = {
    "empty object": ({"type": "object", "properties": {}}, {200}, ""),
    "nested 200 deep": (_nested(200), {400}, "nested more than 64 levels deep"),
    "enum of 100,000": (
        _obj(pick={"type": "string", "enum": [f"v{i}" for i in range(100_000)]}),
        {400},
        "/properties/pick/enum/",
    ),
    "300 leaves": (_wide(300), {400}, "/properties/p64: the schema has 300 leaves"),
    "60 leaves": (_wide(60), {200}, ""),
    "$ref cycle": (
        {
            **_obj(x={"$ref": "#/$defs/a"}),
            "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
        },
        {400},
        "circular $ref",
    ),
    "$ref to the root": (_obj(me={"$ref": "#"}), {400}, "recursive $ref '#'"),
    "recursive leaf": ({**_obj(tree={"$ref": "#/$defs/N"}), "$defs": {"N": _NODE}}, {200, 422}, ""),
    "invalid pattern": (
        _obj(s={"type": "string", "pattern": "(a"}),
        {400},
        "/properties/s/pattern",
    ),
    "nested quantifiers": (_obj(s={"type": "string", "pattern": "^(a+)+$"}), {200, 422}, ""),
    "huge repetition": (
        _obj(s={"type": "string", "pattern": "^[a-z]{1,5000}$"}),
        {200, 400, 422},
        "",
    ),
    "lookahead": (_obj(s={"type": "string", "pattern": "^(?=a)a$"}), {200, 400, 422}, ""),
    "long pattern": (_obj(s={"type": "string", "pattern": "a" * 2000}), {400}, "longer than 1000"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_schema_gets_a_document_or_a_4xx_and_the_server_serves_on(server, case):
    schema, statuses, words = HOSTILE[case]
    start = time.monotonic()
    response = _chat(server, schema, timeout=120)  # bounded: requests raises past the timeout
    logger.info("%s: HTTP %d in %.2f s", case, response.status_code, time.monotonic() - start)
    assert response.status_code in statuses, response.text[:300]
    if response.status_code == 200:
        jsonschema.validate(json.loads(response.json()["choices"][0]["message"]["content"]), schema)
    else:
        assert words in response.json()["message"]
    assert _chat(server, PROFILE, timeout=120).status_code == 200
