"""`python -m apar_sgl.bench`: run benchmark modes on one model, write JSONL + a summary.

Every mode runs on the same machine, model, prompts and dtype in one invocation, so the
ratios in the summary (tokens/s vs `ar`, identity vs `ar`) are comparable.
`--workload parallel-json` instead compares serial constrained JSON with `gen_json`'s
field-parallel branches on one engine (apar_sgl/bench/parallel_json.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path

from apar_sgl.bench.endpoint import Endpoint
from apar_sgl.bench.modes import MODES, Mode
from apar_sgl.bench.parallel_json import run_parallel_json_bench
from apar_sgl.bench.report import (
    environment,
    markdown,
    markdown_table,
    speedup_spread,
    summarize,
)
from apar_sgl.bench.runner import run_mode
from apar_sgl.bench.workload import WORKLOADS, chat_prompts, workload_questions
from apar_sgl.models import DEFAULT_MODEL, resolve_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apar_sgl.bench", description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name, HF folder or id")
    parser.add_argument(
        "--workload",
        choices=(*WORKLOADS, "parallel-json"),
        default="vicuna",
        help="vicuna: answers per mode; rewrite: the same questions, each to be written out "
        "again corrected (answers that copy the prompt); code: complete standard-library "
        "functions from their signature and docstring; copy: summarise standard-library "
        "module docs in their own words; parallel-json: serial vs field-parallel JSON "
        "(ignores --modes, --limit, --concurrency)",
    )
    parser.add_argument(
        "--modes",
        default="ar,sglang-ngram",
        help=f"comma-separated, from: {', '.join(MODES)}",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N questions (all 80)")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="max new tokens per answer (vicuna, default 256) or per JSON leaf (default: "
        "each leaf's budget from its bound)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="vicuna, rewrite: N interleaved trials of every mode, each against its own ar "
        "run, summarized as median and range (default 1); parallel-json: best of N timings "
        "per schema (default 3)",
    )
    parser.add_argument(
        "--concurrency", default="1", help="comma-separated request concurrencies, e.g. 1,8"
    )
    parser.add_argument(
        "--dtype",
        default="auto",
        help="model dtype (auto: the server's default, bfloat16 on CPU); identity claims "
        "need one dtype",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (runs/bench-*)")
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="drive a running server (ours or plain SGLang's) instead of starting engines; "
        "repeat for several, NAME labels each row (default: endpoint), a server named ar is "
        "the reference for the ratios; --modes, --model and --dtype do not apply",
    )
    parser.add_argument("--plot", action="store_true", help="also write plot.png (matplotlib)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modes.split(",") if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    if args.workload == "parallel-json" and (args.url or args.plot):
        parser.error("--url and --plot apply to the answer workloads, not parallel-json")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    out = args.out or Path("runs") / time.strftime("bench-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    if args.workload == "parallel-json":
        md = _parallel_json(args, out)
    else:
        md = _answers(args, out)
    print(md)
    print(
        f"wrote {out}/results.jsonl, summary.json, summary.md" + (", plot.png" if args.plot else "")
    )
    return out


def _answers(args: argparse.Namespace, out: Path) -> str:
    import apar_sgl

    max_tokens = args.max_tokens or 256
    trials = args.repeats or 1
    endpoints = dict(_endpoint(spec) for spec in args.url)
    modes = [Mode(name, f"the server at {e.url}") for name, e in endpoints.items()] or [
        MODES[name] for name in args.modes.split(",")
    ]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    questions, instruction = workload_questions(args.workload, args.limit)
    ids = [q.question_id for q in questions]
    models = {mode.name: mode.model or args.model for mode in modes}
    models |= {name: e.model_path for name, e in endpoints.items()}
    paths = {name: resolve_model(model) for name, model in models.items() if name not in endpoints}
    paths |= {name: e.tokenizer_path for name, e in endpoints.items()}
    prompts = {name: chat_prompts(path, questions, instruction) for name, path in paths.items()}
    runs = []
    # Modes compared at one concurrency run back to back, trial after trial: this machine's
    # speed drifts by 10-20% over tens of minutes, so adjacent runs make the fairest ratios.
    for concurrency, trial, mode in itertools.product(concurrencies, range(trials), modes):
        # A fresh engine per run: a warm radix cache or a cross-request n-gram corpus
        # (SGLang's NGRAM) would otherwise replay the answers of the previous run.
        if mode.name in endpoints:
            engine = endpoints[mode.name].flushed()  # the endpoint's own fresh start
        else:
            engine = apar_sgl.Engine(
                paths[mode.name], dtype=args.dtype, random_seed=0, **mode.engine_kwargs
            )
        try:
            runs.append(
                run_mode(
                    engine,
                    mode,
                    models[mode.name],
                    ids,
                    prompts[mode.name],
                    max_tokens,
                    concurrency,
                    trial,
                )
            )
        finally:
            engine.shutdown()
    rows = summarize(runs)
    env = environment(
        args.model,
        {
            "workload": args.workload,
            "questions": len(questions),
            "max_tokens": max_tokens,
            "trials": trials,
            "dtype": sorted({run.dtype for run in runs}),
            "baseline": "ar: plain decoding, server defaults, dtype "
            + "/".join(sorted({run.dtype for run in runs if run.mode == "ar"})),
        },
    )
    records = [
        dataclasses.asdict(result) | {"trial": run.trial} for run in runs for result in run.results
    ]
    spread = [s._asdict() for s in speedup_spread(rows)] if trials > 1 else None
    if args.plot:
        from apar_sgl.bench.plot import plot_summary

        plot_summary(rows, out / "plot.png", f"{args.workload}, {len(questions)} questions")
    return _write(out, records, rows, env, markdown(rows, env), speedup_spread=spread)


def _parallel_json(args: argparse.Namespace, out: Path) -> str:
    import apar_sgl

    max_tokens = args.max_tokens
    repeats = args.repeats or 3
    # Weak small models may otherwise emit only whitespace under a JSON grammar.
    engine = apar_sgl.Engine(
        resolve_model(args.model),
        dtype=args.dtype,
        random_seed=0,
        constrained_json_disable_any_whitespace=True,
    )
    try:
        rows = run_parallel_json_bench(engine, max_tokens=max_tokens, repeats=repeats)
    finally:
        engine.shutdown()
    env = environment(
        args.model,
        {
            "workload": "parallel-json",
            "max_tokens_per_leaf": max_tokens,
            "repeats": repeats,
            "dtype": args.dtype,
            "parallel_validity": sum(r.parallel_valid for r in rows) / len(rows),
            "serial_validity": sum(r.serial_valid for r in rows) / len(rows),
            "parallel_quality": sum(r.parallel_clean for r in rows) / len(rows),
            "serial_quality": sum(r.serial_clean for r in rows) / len(rows),
        },
    )
    return _write(out, [r._asdict() for r in rows], rows, env, markdown_table(rows, env))


def _write(out: Path, records: list[dict], rows: list, env: dict, md: str, **extra) -> str:
    with open(out / "results.jsonl", "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    summary = {"environment": env, "rows": [_row_dict(r) for r in rows]}
    summary.update({key: value for key, value in extra.items() if value is not None})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(md)
    return md


def _row_dict(row) -> dict:
    """A summary row for JSON, nested NamedTuples as objects (not lists)."""
    return {k: v._asdict() if hasattr(v, "_asdict") else v for k, v in row._asdict().items()}


def _endpoint(spec: str) -> tuple[str, Endpoint]:
    """`NAME=URL` or `URL` (named endpoint) for --url."""
    name, _, url = spec.partition("=") if "=" in spec.split("://")[0] else ("", "", spec)
    return name or "endpoint", Endpoint(url)


if __name__ == "__main__":
    main()
