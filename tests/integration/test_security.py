"""Security defaults on a live server: it listens on loopback only unless told otherwise, and
`--api-key` guards every route, apar's own request fields included."""

from __future__ import annotations

import pytest
import requests

from apar_sgl.server_process import ServerProcess
from tests.support.apar_fixture import LIST_PROMPT

KEY = "s3cret"
CHAT = {"model": "default", "messages": [{"role": "user", "content": LIST_PROMPT}]}
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
ROUTES = [
    ("post", "/generate", {"text": LIST_PROMPT, "sampling_params": {"max_new_tokens": 4}}),
    ("post", "/v1/completions", {"model": "default", "prompt": LIST_PROMPT, "max_tokens": 4}),
    ("post", "/v1/chat/completions", {**CHAT, "max_tokens": 4}),
    (
        "post",
        "/v1/chat/completions",
        {
            **CHAT,
            "max_tokens": 4,
            "apar_parallel_json": True,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": SCHEMA},
            },
        },
    ),
    ("post", "/v1/chat/completions", {**CHAT, "max_tokens": 4, "apar_mode": "skeleton"}),
    ("get", "/get_server_info", None),
    ("post", "/abort_request", {"rid": "nobody"}),
]


@pytest.fixture(scope="module")
def server(apar_model_path):
    proc = ServerProcess(["--model-path", apar_model_path, "--dtype", "float32", "--api-key", KEY])
    yield proc
    proc.stop()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, read from /proc (no traffic)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, _, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_server_listens_on_loopback_only_by_default(server):
    assert _listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1, little-endian hex


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_the_api_key(server, method, path, body):
    call = getattr(requests, method)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        reply = call(server.url + path, json=body, headers=headers, timeout=120)
        assert reply.status_code == 401, (path, reply.status_code, reply.text[:200])
    reply = call(
        server.url + path, json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=300
    )
    assert reply.status_code != 401, (path, reply.text[:200])
