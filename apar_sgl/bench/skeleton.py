"""`python -m apar_sgl.bench.skeleton`: skeleton-then-expand against plain decoding, c=1.

The subset is the first ``--per-category`` Vicuna questions of each of its 9 categories, in
file order. Each question runs as ``ar`` (the plain program: the question, then ``gen``) and
as ``skeleton`` (``apar.skeleton``) back to back, so drift on a shared machine hits both.
Writes ``results.jsonl`` and ``summary.json`` and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import apar_sgl as apar
from apar_sgl.bench.workload import Question, vicuna_questions
from apar_sgl.models import DEFAULT_MODEL
from apar_sgl.train.filters import degenerate_reason

logger = logging.getLogger(__name__)


@apar.function
def plain(s, question: str, max_tokens: int):
    s += apar.user(question) + apar.assistant_begin()
    s += apar.gen("answer", max_tokens=max_tokens)


def subset(per_category: int) -> list[Question]:
    taken: Counter[str] = Counter()
    out = []
    for q in vicuna_questions():
        if taken[q.category] < per_category:
            taken[q.category] += 1
            out.append(q)
    return out


def run_ar(q: Question, args: argparse.Namespace, backend) -> dict[str, Any]:
    started = time.perf_counter()
    state = plain.run(q.text, args.max_tokens, backend=backend)
    meta = state.meta("answer")
    tokens = meta["completion_tokens"]
    return _row(q, "ar", time.perf_counter() - started, state["answer"], tokens, tokens) | {
        "cut": meta["finish_reason"]["type"] == "length"
    }


def run_skeleton(q: Question, args: argparse.Namespace, backend) -> dict[str, Any]:
    started = time.perf_counter()
    answer = apar.skeleton.run(
        q.text,
        max_points=args.max_points,
        point_tokens=args.point_tokens,
        max_tokens=args.max_tokens,
        backend=backend,
    ).ret
    stats = answer.stats
    row = _row(
        q,
        "skeleton",
        time.perf_counter() - started,
        answer.text,
        stats["total_tokens"],
        stats["critical_path_steps"],
    )
    empty = sum(not line.split(":", 1)[-1].strip() for line in answer.text.split("\n"))
    return row | {
        "route": answer.route,
        "points": list(answer.points),
        "cut": "length" in stats["finish_reasons"],
        "empty_points": empty if answer.route == "skeleton" else 0,
        "stats": stats,
    }


def _row(q: Question, mode: str, latency: float, text: str, tokens: int, steps: int) -> dict:
    return {
        "mode": mode,
        "question_id": q.question_id,
        "category": q.category,
        "latency_s": round(latency, 3),
        "generated_tokens": tokens,
        "critical_path_steps": steps,
        "degenerate": degenerate_reason(text),
        "text": text,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {m: [r for r in rows if r["mode"] == m] for m in ("ar", "skeleton")}
    sk = by["skeleton"]
    routed = [r for r in sk if r["route"] == "skeleton"]
    out: dict[str, Any] = {
        "questions": len(sk),
        "skeleton_route": len(routed),
        "plain_route": len(sk) - len(routed),
        "wall_ratio_ar_over_skeleton": _ratio(by["ar"], sk, "latency_s"),
        "wall_ratio_on_skeleton_route": _ratio(
            [r for r in by["ar"] if r["question_id"] in {s["question_id"] for s in routed}],
            routed,
            "latency_s",
        ),
        "empty_points": sum(r["empty_points"] for r in sk),
        "points": sum(len(r["points"]) for r in routed),
    }
    for mode, mode_rows in by.items():
        steps = sum(r["critical_path_steps"] for r in mode_rows) or 1
        out[mode] = {
            "generated_tokens_per_critical_path_step": round(
                sum(r["generated_tokens"] for r in mode_rows) / steps, 2
            ),
            "degenerate": sum(r["degenerate"] is not None for r in mode_rows),
            "cut": sum(r["cut"] for r in mode_rows),
        }
    return out


def _ratio(base: list[dict], other: list[dict], key: str) -> float | None:
    total = sum(r[key] for r in other)
    return round(sum(r[key] for r in base) / total, 2) if total else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--per-category", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-points", type=int, default=5)
    parser.add_argument("--point-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("runs") / f"skeleton-{int(time.time())}")
    args = parser.parse_args(argv)
    backend = apar.EngineBackend(apar.Engine(args.model), owned=True)
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with (args.out / "results.jsonl").open("w") as f:
            for q in subset(args.per_category):
                for run in (run_ar, run_skeleton):
                    rows.append(run(q, args, backend))
                    f.write(json.dumps(rows[-1]) + "\n")
                    f.flush()
    finally:
        backend.shutdown()
    summary = {"config": vars(args) | {"out": str(args.out)}, **summarize(rows)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
