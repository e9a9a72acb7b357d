"""`python -m apar_sgl.bench --url ... --plot` drives a running server and writes the report."""

from __future__ import annotations

import json

from apar_sgl.bench.__main__ import main


def test_bench_drives_a_running_server(tiny_server, tmp_path):
    out = main(
        [
            "--url",
            f"ar={tiny_server.url}",
            "--url",
            f"same-server={tiny_server.url}",
            "--limit",
            "2",
            "--max-tokens",
            "6",
            "--concurrency",
            "1,2",
            "--plot",
            "--out",
            str(tmp_path),
        ]
    )
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert {(r["mode"], r["concurrency"]) for r in rows} == {
        (mode, c) for mode in ("ar", "same-server") for c in (1, 2)
    }
    assert all(r["answers"] == 2 and r["output_tokens"] > 0 for r in rows)
    # Same server, greedy: the second name's answers are the reference's.
    assert all(r["identical_to_ar"] == 1.0 for r in rows if r["mode"] == "same-server")
    assert "same-server" in (out / "summary.md").read_text()
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
