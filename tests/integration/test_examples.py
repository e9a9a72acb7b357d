"""Every example runs on the embedded default model (small token budget) and prints its result.

The examples share one server on SmolLM2 ($APAR_BACKEND) instead of each starting an engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "list_answer.py": ["[evening]", "[bedroom]", "[morning]", "summary:"],
    "json_extraction.py": ['"age":', '"role":', "branches:"],
    "batch.py": ["Great coffee", "Broke after two days"],
    "streaming.py": ["[title]", "[fork0[1].part]", "title:"],
    "openai_client.py": ["openai:", "dsl over HTTP:"],
    "skeleton.py": ["[route: ", "critical path"],
}


@pytest.fixture(scope="module")
def smollm2_server():
    from apar_sgl.server_process import ServerProcess

    server = ServerProcess(["--constrained-json-disable-any-whitespace"])
    yield server
    server.stop()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name, smollm2_server):
    env = {
        **os.environ,
        "APAR_EXAMPLE_MAX_TOKENS": "8",
        "APAR_BACKEND": smollm2_server.url,
    }
    args = [smollm2_server.url] if name == "openai_client.py" else []
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,  # SmolLM2 on 2 shared cores; a bound on hangs, not a speed check
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for needle in EXPECTED[name]:
        assert needle in done.stdout, done.stdout
