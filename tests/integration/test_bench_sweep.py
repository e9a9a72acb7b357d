"""The bench's lossless claim on the real default model: ANPD's greedy answers equal plain
decoding's on every workload, in the server's default dtype, alone and at concurrency 4.

A sweep of a few minutes per workload on 2 cores, so `slow` (`make test-all`); the default run
keeps the short SmolLM2 identity tests in test_anpd.py and test_speculative.py.
"""

from __future__ import annotations

import json

import pytest

from apar_sgl.bench.__main__ import main


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["vicuna", "code", "copy"])
def test_anpd_answers_equal_plain_answers_on_every_workload(workload, tmp_path):
    out = main(
        [
            "--modes",
            "ar,anpd",
            "--workload",
            workload,
            "--limit",
            "6",
            "--max-tokens",
            "96",
            "--concurrency",
            "1,4",
            "--out",
            str(tmp_path),
        ]
    )
    rows = json.loads((out / "summary.json").read_text())["rows"]
    anpd = [r for r in rows if r["mode"] == "anpd"]
    assert {r["concurrency"] for r in anpd} == {1, 4}
    assert all(r["identical_to_ar"] == 1.0 for r in anpd), anpd
