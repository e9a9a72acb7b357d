"""`--plot`: one PNG of a run, tokens/s vs `ar` (or tokens/s without an `ar` run) per mode and
concurrency, as grouped bars, written next to summary.md."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from apar_sgl.bench.report import SummaryRow

logger = logging.getLogger(__name__)


def plot_summary(rows: Sequence[SummaryRow], path: Path, title: str) -> Path:
    """Bars per concurrency, one per mode; trials of one mode are averaged."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    vs_ar = any(r.speedup_vs_ar is not None and r.mode != "ar" for r in rows)
    values = _values(rows, vs_ar)
    modes = list(dict.fromkeys(r.mode for r in rows))
    concurrencies = sorted({r.concurrency for r in rows})
    width = 0.8 / len(modes)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(concurrencies) * max(1, len(modes)) / 3, 4))
    for i, mode in enumerate(modes):
        xs = [c + (i - (len(modes) - 1) / 2) * width for c in range(len(concurrencies))]
        ys = [values.get((mode, c), 0.0) for c in concurrencies]
        bars = ax.bar(xs, ys, width, label=mode)
        ax.bar_label(bars, fmt="%.2fx" if vs_ar else "%.1f", fontsize=7)
    if vs_ar:
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(concurrencies)), [f"c={c}" for c in concurrencies])
    ax.set_xlabel("concurrent requests")
    ax.set_ylabel("tokens/s vs ar (same run)" if vs_ar else "output tokens/s")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    logger.info("wrote %s", path)
    return path


def _values(rows: Sequence[SummaryRow], vs_ar: bool) -> dict[tuple[str, int], float]:
    sums: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        value = (1.0 if r.mode == "ar" else r.speedup_vs_ar) if vs_ar else r.tokens_per_s
        if value is not None:
            sums.setdefault((r.mode, r.concurrency), []).append(value)
    return {key: sum(v) / len(v) for key, v in sums.items()}
