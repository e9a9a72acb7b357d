"""Summaries of benchmark runs: one row per (mode, concurrency), ratios against `ar`."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NamedTuple

from apar_sgl.bench.runner import ModeRun


class SummaryRow(NamedTuple):
    mode: str
    model: str
    concurrency: int
    answers: int
    wall_s: float
    output_tokens: int
    tokens_per_s: float
    steps_per_answer: float
    tokens_per_step: float
    peak_kv_per_answer: float
    accept_length: float | None
    identical_to_ar: float | None
    speedup_vs_ar: float | None
    forked: ForkedSubset | None = None
    accept_length_when_drafting: float | None = None  # ANPD: over steps that carried drafts
    trial: int = 0  # interleaved repeat (`--repeats`); ratios are against `ar` of the same one
    drafter: dict[str, Any] | None = None  # ANPD's counters and fitted step times (ms)


class ForkedSubset(NamedTuple):
    """The answers of an APAR run that forked, against `ar`'s answers to the same questions."""

    answers: int
    tokens_per_step: float  # generated tokens per critical-path step
    latency_per_token_vs_ar: float | None  # ar's seconds per output token / this run's


class SpeedupSpread(NamedTuple):
    """One mode's tokens/s vs `ar` over interleaved trials, each against its own `ar` run."""

    mode: str
    concurrency: int
    trials: int
    median: float
    low: float
    high: float


def summarize(runs: list[ModeRun]) -> list[SummaryRow]:
    """Per-run metrics against the `ar` run at the same concurrency and trial.

    Speed-up is the ratio of output tokens per second; identity is only defined for runs of
    the same model as that `ar` run.
    """
    reference = {(run.concurrency, run.trial): run for run in runs if run.mode == "ar"}
    rows = []
    for run in runs:
        tokens = sum(r.output_tokens for r in run.results)
        steps = sum(r.decode_steps for r in run.results)
        accepts = [r.accept_length for r in run.results if r.accept_length is not None]
        ref = reference.get((run.concurrency, run.trial))
        identical = speedup = None
        if ref is not None:
            if ref.model == run.model:
                ref_text = {r.question_id: r.text for r in ref.results}
                same = [r.text == ref_text.get(r.question_id) for r in run.results]
                identical = sum(same) / len(same) if same else None
            ref_rate = sum(r.output_tokens for r in ref.results) / ref.wall_s
            speedup = (tokens / run.wall_s) / ref_rate if ref_rate else None
        rows.append(
            SummaryRow(
                mode=run.mode,
                model=run.model,
                concurrency=run.concurrency,
                answers=len(run.results),
                wall_s=round(run.wall_s, 2),
                output_tokens=tokens,
                tokens_per_s=round(tokens / run.wall_s, 2),
                steps_per_answer=round(steps / max(1, len(run.results)), 2),
                tokens_per_step=round(tokens / max(1, steps), 3),
                peak_kv_per_answer=round(statistics.mean(r.peak_kv_tokens for r in run.results), 1),
                accept_length=round(statistics.mean(accepts), 3) if accepts else None,
                identical_to_ar=identical,
                speedup_vs_ar=round(speedup, 3) if speedup is not None else None,
                forked=forked_subset(run, ref),
                accept_length_when_drafting=(
                    round(run.drafter["accept_length_when_drafting"], 3) if run.drafter else None
                ),
                trial=run.trial,
                drafter=run.drafter,
            )
        )
    return rows


def speedup_spread(rows: list[SummaryRow]) -> list[SpeedupSpread]:
    """Median and range of each mode's speed-up over the trials at one concurrency.

    This machine's speed drifts between runs, so one trial's ratio can be off by 10-20%;
    the spread over interleaved trials says how far a ratio can be trusted.
    """
    ratios: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        if row.mode != "ar" and row.speedup_vs_ar is not None:
            ratios.setdefault((row.mode, row.concurrency), []).append(row.speedup_vs_ar)
    return [
        SpeedupSpread(mode, concurrency, len(r), round(statistics.median(r), 3), min(r), max(r))
        for (mode, concurrency), r in ratios.items()
    ]


def forked_subset(run: ModeRun, ref: ModeRun | None) -> ForkedSubset | None:
    """Metrics over the answers that forked (None when none did).

    Latency is compared per output token: an APAR model's answer differs from `ar`'s, so the
    same question's answers differ in length.
    """
    forked = [r for r in run.results if r.apar and r.apar["branches"] > 1]
    if not forked:
        return None
    generated = sum(r.apar["total_tokens"] for r in forked)
    steps = sum(r.apar["critical_path_steps"] for r in forked)
    ratio = None
    ref_by_id = {r.question_id: r for r in ref.results} if ref is not None else {}
    pairs = [(r, ref_by_id[r.question_id]) for r in forked if r.question_id in ref_by_id]
    if pairs:
        ours = sum(r.latency_s for r, _ in pairs) / sum(r.output_tokens for r, _ in pairs)
        theirs = sum(a.latency_s for _, a in pairs) / sum(a.output_tokens for _, a in pairs)
        ratio = round(theirs / ours, 3)
    return ForkedSubset(len(forked), round(generated / max(1, steps), 3), ratio)


def environment(model: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Hardware, software and workload facts recorded beside the numbers."""
    import os

    versions = {}
    for dist in ("sglang", "torch", "transformers", "apar-sgl"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "default_model": model,
        "versions": versions,
        **extra,
    }


def markdown(rows: list[SummaryRow], env: dict[str, Any]) -> str:
    header = (
        "| mode | model | conc | answers | wall s | out tok | tok/s | steps/answer | tok/step "
        "| peak KV/answer | accept len | accept len, drafting steps "
        "| identical to ar | tok/s vs ar |\n|" + "---|" * 14
    )
    lines = [header]
    trials = 1 + max((r.trial for r in rows), default=0)
    for r in rows:
        cells = [
            r.mode if trials == 1 else f"{r.mode} #{r.trial + 1}",
            r.model,
            r.concurrency,
            r.answers,
            r.wall_s,
            r.output_tokens,
            r.tokens_per_s,
            r.steps_per_answer,
            r.tokens_per_step,
            r.peak_kv_per_answer,
            _fmt(r.accept_length),
            _fmt(r.accept_length_when_drafting),
            _fmt(None if r.identical_to_ar is None else f"{r.identical_to_ar:.0%}"),
            _fmt(None if r.speedup_vs_ar is None else f"{r.speedup_vs_ar:.2f}x"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    forked = [r for r in rows if r.forked is not None]
    if forked:
        lines += [
            "",
            "Answers that forked (generated tokens per critical-path step; ar's seconds per "
            "output token on the same questions / this mode's):",
            "",
            "| mode | conc | forked answers | tokens per step | latency per token vs ar |",
            "|---|---|---|---|---|",
        ]
        for r in forked:
            f = r.forked
            ratio = f.latency_per_token_vs_ar
            gain = "-" if ratio is None else f"{ratio:.2f}x"
            cells = [r.mode, r.concurrency, f.answers, f.tokens_per_step, gain]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if trials > 1:
        lines += [
            "",
            f"tok/s vs ar over {trials} interleaved trials (each against its own ar run):",
            "",
            "| mode | conc | median | lowest | highest |",
            "|---|---|---|---|---|",
        ]
        for s in speedup_spread(rows):
            cells = [s.mode, s.concurrency, f"{s.median:.2f}x", f"{s.low:.2f}x", f"{s.high:.2f}x"]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    facts = ", ".join(f"{k}={v}" for k, v in env.items())
    return "\n".join(lines) + f"\n\n{facts}\n"


def markdown_table(rows: Sequence[tuple], env: dict[str, Any]) -> str:
    """NamedTuple rows as a markdown table (columns are the fields), then the facts."""
    if not rows:
        return "no rows\n"
    fields = rows[0]._fields
    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else _fmt(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    facts = ", ".join(f"{k}={v}" for k, v in env.items())
    return "\n".join(lines) + f"\n\n{facts}\n"


def _fmt(value) -> str:
    return "-" if value is None else str(value)
