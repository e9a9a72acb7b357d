"""`python -m apar_sgl.bench.replay RUN`: how many decode steps n-gram drafts could save.

Replays one mode's answers from a `python -m apar_sgl.bench` run (default `ar`) through an
ANPD table (`apar_sgl.ngram.replay`), drafting at every step with nothing cut: an upper
bound, independent of the machine, to set beside the run's measured tokens per decode step.
Answers are re-tokenized from their text, so a few token boundaries may differ from the
generated ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from apar_sgl.bench.workload import REWRITE_INSTRUCTION, chat_prompts, vicuna_questions
from apar_sgl.config import AparArgs
from apar_sgl.models import resolve_model
from apar_sgl.ngram.replay import replay_steps


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m apar_sgl.bench.replay", description=__doc__)
    parser.add_argument("run", type=Path, help="a bench output folder")
    parser.add_argument("--mode", default="ar", help="whose answers to replay")
    parser.add_argument("--max-n", type=int, default=AparArgs().anpd_max_n, help="longest n-gram")
    parser.add_argument(
        "--depth", type=int, default=7, help="draft tokens per branch (7: a verify width of 8)"
    )
    parser.add_argument("--branching", default="1,4", help="comma-separated first-token choices")
    args = parser.parse_args(argv)
    summary = json.loads((args.run / "summary.json").read_text())
    models = {row["mode"]: row["model"] for row in summary["rows"]}
    if args.mode not in models:
        parser.error(f"mode {args.mode!r} is not in {args.run}; it has {sorted(models)}")
    answers: dict[int, str] = {}  # greedy answers repeat across trials and concurrencies
    for line in (args.run / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["mode"] == args.mode:
            answers.setdefault(record["question_id"], record["text"])
    path = resolve_model(models[args.mode])
    questions = [q for q in vicuna_questions() if q.question_id in answers]
    rewrite = summary["environment"].get("workload") == "rewrite"
    prompts = chat_prompts(path, questions, REWRITE_INSTRUCTION if rewrite else None)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    pairs = [
        (
            tokenizer.encode(prompt, add_special_tokens=False),
            tokenizer.encode(answers[q.question_id], add_special_tokens=False),
        )
        for q, prompt in zip(questions, prompts, strict=True)
    ]
    tokens = sum(len(answer) for _, answer in pairs)
    rows = []
    for branching in (int(b) for b in args.branching.split(",")):
        steps = sum(
            replay_steps(p, a, max_n=args.max_n, depth=args.depth, branching=branching)
            for p, a in pairs
        )
        rows.append(
            {
                "answers": len(pairs),
                "branching": branching,
                "depth": args.depth,
                "max_n": args.max_n,
                "tokens": tokens,
                "steps": steps,
                "tokens_per_step": round(tokens / max(1, steps), 3),
            }
        )
        print(json.dumps(rows[-1]))
    return rows


if __name__ == "__main__":
    main()
