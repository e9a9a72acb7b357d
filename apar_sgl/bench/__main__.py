"""`python -m apar_sgl.bench`: run benchmark modes on one model, write JSONL + a summary.

Every mode runs on the same machine, model, prompts and dtype in one invocation, so the
ratios in the summary (tokens/s vs `ar`, identity vs `ar`) are comparable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from apar_sgl.bench.modes import MODES
from apar_sgl.bench.report import environment, markdown, summarize
from apar_sgl.bench.runner import run_mode
from apar_sgl.bench.workload import chat_prompts, vicuna_questions
from apar_sgl.models import DEFAULT_MODEL, resolve_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apar_sgl.bench", description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name, HF folder or id")
    parser.add_argument(
        "--modes",
        default="ar,sglang-ngram",
        help=f"comma-separated, from: {', '.join(MODES)}",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N questions (all 80)")
    parser.add_argument("--max-tokens", type=int, default=256, help="max new tokens per answer")
    parser.add_argument(
        "--concurrency", default="1", help="comma-separated request concurrencies, e.g. 1,8"
    )
    parser.add_argument(
        "--dtype", default="float32", help="model dtype; identity claims need one dtype"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (runs/bench-*)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modes.split(",") if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    return args


def main(argv: list[str] | None = None) -> Path:
    import apar_sgl

    args = parse_args(argv)
    modes = [MODES[name] for name in args.modes.split(",")]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    questions = vicuna_questions(args.limit)
    out = args.out or Path("runs") / time.strftime("bench-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for mode in modes:
        model = mode.model or args.model
        model_path = resolve_model(model)
        prompts = chat_prompts(model_path, questions)
        engine = apar_sgl.Engine(model_path, dtype=args.dtype, random_seed=0, **mode.engine_kwargs)
        try:
            for concurrency in concurrencies:
                ids = [q.question_id for q in questions]
                runs.append(
                    run_mode(engine, mode, model, ids, prompts, args.max_tokens, concurrency)
                )
        finally:
            engine.shutdown()
    with open(out / "results.jsonl", "w") as f:
        for run in runs:
            for result in run.results:
                f.write(json.dumps(dataclasses.asdict(result)) + "\n")
    rows = summarize(runs)
    env = environment(
        args.model,
        {"questions": len(questions), "max_tokens": args.max_tokens, "dtype": args.dtype},
    )
    (out / "summary.json").write_text(
        json.dumps({"environment": env, "rows": [r._asdict() for r in rows]}, indent=2)
    )
    (out / "summary.md").write_text(markdown(rows, env))
    print(markdown(rows, env))
    print(f"wrote {out}/results.jsonl, summary.json, summary.md")
    return out


if __name__ == "__main__":
    main()
