"""Does the shipped APAR model fork where the base model writes lists, and keep its answers?

    python -m apar_sgl.train.evaluate --questions 20 --max-tokens 128 --out runs/apar-eval

On the first N Vicuna questions, greedy: the base model's answers (share containing a list),
and the APAR model's raw answers with the APAR runtime off (fork rate: answers with at least
one fork token). Each fork is then expanded serially, as the runtime would: a child request is
prompt + the parent's tokens up to the fork + the child token, level by level up to
``max_depth``. The joined answer (control tokens dropped) is compared with the base answer by
ROUGE-L; tree stats give the critical path vs total tokens (the APAR speed-up bound).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apar_sgl.bench.workload import Question, vicuna_questions
from apar_sgl.models import DEFAULT_MODEL
from apar_sgl.train.rouge import rouge_l
from apar_sgl.train.structure import has_list_items, split_lines
from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN, Branch, join, tree_stats

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Node:
    """One sequence of a serially expanded fork tree: its input ids and generated ids."""

    input_ids: list[int]
    depth: int
    output_ids: list[int] = field(default_factory=list)  # set after generation
    children: list[Node] = field(default_factory=list)

    def branch(self) -> Branch[int]:
        return Branch(self.output_ids, [c.branch() for c in self.children])


def contains_list(answer: str) -> bool:
    """True if the answer has at least one numbered or bulleted list item line."""
    return has_list_items(split_lines(answer, 0, len(answer)))


def expand(
    engine: Any, roots: list[Node], sampling: dict, fork_id: int, child_id: int, max_depth: int
) -> None:
    """Generate every node level by level; each fork in a node below max_depth adds a child."""
    level = roots
    while level:
        outputs = engine.generate(input_ids=[n.input_ids for n in level], sampling_params=sampling)
        following: list[Node] = []
        for node, out in zip(level, outputs, strict=True):
            node.output_ids = list(out["output_ids"])
            if node.depth >= max_depth:
                continue
            for pos, token in enumerate(node.output_ids):
                if token == fork_id:
                    prefix = node.input_ids + node.output_ids[: pos + 1] + [child_id]
                    node.children.append(Node(prefix, node.depth + 1))
            following.extend(node.children)
        level = following


def evaluate(
    questions: list[Question],
    max_tokens: int,
    model: str = "apar-smollm2",
    base: str = DEFAULT_MODEL,
    dtype: str = "bfloat16",
    max_depth: int = 2,
) -> dict[str, Any]:
    """Run base then APAR model on ``questions``; per-question rows and summary numbers."""
    from transformers import AutoTokenizer

    import apar_sgl
    from apar_sgl.bench.workload import chat_prompts
    from apar_sgl.models import resolve_model

    base_path, apar_path = resolve_model(base), resolve_model(model)
    sampling = {"temperature": 0.0, "max_new_tokens": max_tokens}
    started = time.perf_counter()
    engine = apar_sgl.Engine(base_path, dtype=dtype, random_seed=0)
    try:
        base_out = engine.generate(chat_prompts(base_path, questions), sampling)
    finally:
        engine.shutdown()
    tokenizer = AutoTokenizer.from_pretrained(apar_path)
    fork_id, child_id = tokenizer.convert_tokens_to_ids([FORK_TOKEN, CHILD_TOKEN])
    roots = [
        Node(tokenizer(p, add_special_tokens=False).input_ids, 0)
        for p in chat_prompts(apar_path, questions)
    ]
    engine = apar_sgl.Engine(apar_path, dtype=dtype, random_seed=0, apar_mode="off")
    try:
        expand(engine, roots, sampling, fork_id, child_id, max_depth)
    finally:
        engine.shutdown()
    rows = [
        _row(q, b["text"], r, tokenizer, fork_id)
        for q, b, r in zip(questions, base_out, roots, strict=True)
    ]
    return {
        "summary": _summary(rows),
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _row(question: Question, base_text: str, root: Node, tokenizer: Any, fork_id: int) -> dict:
    tree = root.branch()
    joined = tokenizer.decode(join(tree, fork_id, allow_missing=True), skip_special_tokens=True)
    stats = tree_stats(tree, fork_id, allow_missing=True)
    return {
        "question_id": question.question_id,
        "category": question.category,
        "question": question.text,
        "base_answer": base_text,
        "base_has_list": contains_list(base_text),
        "raw_apar": tokenizer.decode(root.output_ids, skip_special_tokens=False),
        "forks": root.output_ids.count(fork_id),
        "apar_answer": joined,
        "rouge_l": round(rouge_l(joined, base_text), 4),
        "total_tokens": stats.total_items,
        "critical_path": stats.critical_path,
        "branches": stats.branches,
    }


def _summary(rows: list[dict]) -> dict[str, Any]:
    n = len(rows)
    return {
        "questions": n,
        "fork_rate": round(sum(r["forks"] > 0 for r in rows) / n, 3),
        "base_list_share": round(sum(r["base_has_list"] for r in rows) / n, 3),
        "fork_rate_on_list_questions": round(
            sum(r["forks"] > 0 for r in rows if r["base_has_list"])
            / max(1, sum(r["base_has_list"] for r in rows)),
            3,
        ),
        "rouge_l_median": round(statistics.median(r["rouge_l"] for r in rows), 4),
        "rouge_l_mean": round(statistics.fmean(r["rouge_l"] for r in rows), 4),
        "tokens_per_critical_step": round(
            sum(r["total_tokens"] for r in rows) / max(1, sum(r["critical_path"] for r in rows)), 3
        ),
        "mean_branches": round(statistics.fmean(r["branches"] for r in rows), 2),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", default="apar-smollm2")
    parser.add_argument("--base", default=DEFAULT_MODEL)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--out", type=Path, default=Path("runs/apar-eval"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    questions = vicuna_questions(args.questions)
    report = evaluate(questions, args.max_tokens, args.model, args.base, args.dtype)
    report["settings"] = vars(args) | {"out": str(args.out)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    for row in report["rows"][:3]:
        print(f"\n### Q{row['question_id']}: {row['question']}\n--- base:\n{row['base_answer']}")
        print(f"--- apar raw:\n{row['raw_apar']}\n--- apar joined:\n{row['apar_answer']}")
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
