"""What a fine-tune leaves beside its adapter: the per-step loss log, its plot, the record."""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

from apar_sgl.train.convert import CorpusStats
from apar_sgl.train.corpus import read_jsonl
from apar_sgl.train.sampling import MixStats


class StepLog(NamedTuple):
    step: int
    epoch: int
    loss: float
    lr: float
    sequences: int
    target_tokens: int
    seconds: float


def plot_loss(log: list[StepLog], path: Path, title: str) -> None:
    """Per-step loss and its running mean, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [e.step for e in log]
    losses = [e.loss for e in log]
    ax.plot(steps, losses, lw=0.8, alpha=0.5, label="loss")
    window = max(1, len(log) // 20)
    smooth = [
        sum(losses[max(0, i - window + 1) : i + 1]) / min(window, i + 1) for i in range(len(losses))
    ]
    ax.plot(steps, smooth, lw=1.6, label=f"mean of {window}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("target-token cross-entropy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def epoch_means(log: list[StepLog]) -> list[float]:
    """Mean step loss of each epoch, in epoch order (an epoch cut short counts what ran)."""
    by_epoch: dict[int, list[float]] = {}
    for entry in log:
        by_epoch.setdefault(entry.epoch, []).append(entry.loss)
    return [round(sum(v) / len(v), 4) for _, v in sorted(by_epoch.items())]


def training_record(
    cfg: Any,
    corpus: Path,
    base_dir: str,
    stats: CorpusStats,
    mixed: MixStats,
    sequences: int,
    log: list[StepLog],
    token_ids: tuple[int, int],
    planned: int,
) -> dict[str, Any]:
    """Command, settings, data statistics, loss summary and versions of one fine-tune."""
    import peft
    import torch
    import transformers

    records = list(read_jsonl(corpus))

    return {
        "command": "python -m apar_sgl.train.finetune " + " ".join(sys.argv[1:]),
        "config": asdict(cfg),
        "corpus": str(corpus),
        "corpus_answers": len(records),
        "corpus_answers_capped": sum(r.finish_reason == "length" for r in records),
        "base_dir": base_dir,
        "control_token_ids": list(token_ids),
        "corpus_stats": stats._asdict(),
        "mix": mixed._asdict(),
        "sequences": sequences,
        "steps": len(log),
        "planned_steps": planned,
        "first_loss": log[0].loss if log else None,
        "epoch_mean_loss": epoch_means(log),
        "final_loss_mean_last_10": round(
            sum(e.loss for e in log[-10:]) / max(1, len(log[-10:])), 4
        ),
        "train_seconds": round(sum(e.seconds for e in log), 1),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "python": platform.python_version(),
        },
        "host": {"machine": platform.machine(), "threads": cfg.threads},
    }
