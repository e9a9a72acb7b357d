"""`--plot` and `--url` argument handling of python -m apar_sgl.bench, without an engine."""

from __future__ import annotations

import pytest

from apar_sgl.bench import __main__ as bench
from apar_sgl.bench.plot import _values, plot_summary
from apar_sgl.bench.report import SummaryRow


def _row(mode: str, concurrency: int, tokens_per_s: float, speedup: float | None) -> SummaryRow:
    return SummaryRow(
        mode=mode,
        model="m",
        concurrency=concurrency,
        answers=2,
        wall_s=1.0,
        output_tokens=10,
        tokens_per_s=tokens_per_s,
        steps_per_answer=5.0,
        tokens_per_step=1.0,
        peak_kv_per_answer=20.0,
        accept_length=None,
        identical_to_ar=None,
        speedup_vs_ar=speedup,
    )


def test_plot_writes_a_png(tmp_path):
    rows = [_row("ar", 1, 10.0, 1.0), _row("apar", 1, 14.0, 1.4), _row("ar", 4, 30.0, 1.0)]
    path = plot_summary(rows, tmp_path / "plot.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_values_are_speedups_with_ar_else_tokens_per_s():
    rows = [_row("ar", 1, 10.0, 1.0), _row("apar", 1, 14.0, 1.4), _row("apar", 1, 12.0, 1.2)]
    assert _values(rows, vs_ar=True) == {("ar", 1): 1.0, ("apar", 1): pytest.approx(1.3)}
    assert _values(rows, vs_ar=False) == {("ar", 1): 10.0, ("apar", 1): 13.0}


def test_url_and_plot_are_refused_for_parallel_json():
    with pytest.raises(SystemExit):
        bench.parse_args(["--workload", "parallel-json", "--plot"])


def test_url_must_be_http():
    with pytest.raises(ValueError, match="http"):
        bench._endpoint("ar=localhost:30000")
