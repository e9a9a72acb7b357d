"""Session fixtures shared by the integration tests: the APAR fixture model and an engine on it."""

from __future__ import annotations

import os

import pytest

from tests.support.apar_fixture import build_apar_model


@pytest.fixture(scope="session")
def apar_model_path() -> str:
    from apar_sgl.env import cache_dir

    return str(build_apar_model(cache_dir() / "test-models"))


@pytest.fixture(scope="session")
def apar_engine(apar_model_path):
    """An Engine on the APAR fixture model that asserts the KV pool invariant every loop."""
    import apar_sgl

    previous = os.environ.get("SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_BUSY")
    os.environ["SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_BUSY"] = "1"
    try:
        # The tests pin the trees the model writes; the load-aware policy has its own tests.
        engine = apar_sgl.Engine(
            apar_model_path, dtype="float32", random_seed=0, apar_fork_policy="always"
        )
    finally:
        if previous is None:
            del os.environ["SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_BUSY"]
        else:
            os.environ["SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_BUSY"] = previous
    yield engine
    engine.shutdown()
