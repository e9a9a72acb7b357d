"""Shared fixtures: a tiny model the suite builds itself, and real SGLang engines on it."""

from __future__ import annotations

import pytest

from tests.support.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_path):
    """A real SGLang Engine on the tiny model (float32, greedy-stable), shared by the session."""
    import apar_sgl

    engine = apar_sgl.Engine(tiny_model_path, dtype="float32", random_seed=0)
    yield engine
    engine.shutdown()


@pytest.fixture(scope="session")
def tiny_server(tiny_model_path):
    """`python -m apar_sgl.launch_server` on the tiny model (float32), shared by the session."""
    from apar_sgl.server_process import ServerProcess

    server = ServerProcess(["--model-path", tiny_model_path, "--dtype", "float32"])
    yield server
    server.stop()
