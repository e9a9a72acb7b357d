"""`python -m apar_sgl.launch_router`'s command line: what goes to the router, what to workers."""

from __future__ import annotations

import pytest

from apar_sgl.launch_router import parse_args


def test_router_flags_go_to_the_router_and_the_rest_to_every_worker():
    count, router, server = parse_args(
        [
            *("--workers", "3", "--port", "31000", "--router-policy", "round_robin"),
            *("--model-path", "m", "--dtype", "float32", "--apar-max-branches", "4"),
        ]
    )
    assert count == 3
    assert (router.host, router.port, router.policy) == ("127.0.0.1", 31000, "round_robin")
    assert server == ["--model-path", "m", "--dtype", "float32", "--apar-max-branches", "4"]


def test_defaults_are_cache_aware_on_loopback():
    count, router, server = parse_args([])
    assert (count, router.host, router.port, router.policy) == (
        2,
        "127.0.0.1",
        30000,
        "cache_aware",
    )
    assert server == []


def test_an_abbreviated_server_flag_is_not_taken_for_a_router_flag():
    _, _, server = parse_args(["--work", "1"])  # not --workers: passed on, the worker rejects it
    assert server == ["--work", "1"]


def test_zero_workers_is_rejected():
    with pytest.raises(ValueError, match="--workers must be at least 1"):
        parse_args(["--workers", "0"])
