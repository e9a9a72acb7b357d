"""What a teacher corpus holds: answers per type and style, left-out answers by reason, and
the shape of the converted APAR trees. Pure Python.

    python -m apar_sgl.train.corpus_report apar_sgl/train/data/corpus-v2.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from apar_sgl.train.convert import ConvertedExample, convert_corpus
from apar_sgl.train.corpus import CorpusRecord, read_jsonl
from apar_sgl.train.filters import clean

logger = logging.getLogger(__name__)


def branch_stats(examples: Sequence[ConvertedExample]) -> dict[str, Any]:
    """Top-level branches of each converted answer: how many fork, how wide, how balanced.

    Balance is the shortest branch over the longest one (in characters), 1.0 = equal.
    """
    widths = [len(e.conversion.tree.children) for e in examples]
    forked = [e for e, w in zip(examples, widths, strict=True) if w >= 2]
    balance = [_balance(e) for e in forked]
    kinds = Counter(e.conversion.kind for e in forked)
    return {
        "answers": len(examples),
        "share_with_2_or_more_branches": _round(len(forked) / len(examples) if examples else 0),
        "share_with_3_or_more_branches": _round(
            sum(w >= 3 for w in widths) / len(examples) if examples else 0
        ),
        "mean_branches_all": _round(mean(widths) if widths else 0),
        "mean_branches_forked": _round(mean(w for w in widths if w >= 2) if forked else 0),
        "forked_by_kind": dict(sorted(kinds.items())),  # list vs paragraph forks
        "branch_histogram": dict(sorted(Counter(widths).items())),
        "mean_balance_forked": _round(mean(balance) if balance else 0),
        "nested_forks": sum(any(c.children for c in e.conversion.tree.children) for e in forked),
    }


def report(records: Sequence[CorpusRecord]) -> dict[str, Any]:
    """Counts of the raw corpus, of what the filters and the conversion keep, tree shapes."""
    pairs, degenerate = clean(records)
    converted = convert_corpus(pairs)
    by_prompt = {r.prompt: r for r in records}
    styles = Counter(by_prompt[e.prompt].style for e in converted.examples)
    styled = {
        style: branch_stats([e for e in converted.examples if by_prompt[e.prompt].style == style])
        for style in sorted(styles)
    }
    return {
        "answers": len(records),
        "by_kind": dict(sorted(Counter(r.kind for r in records).items())),
        "by_style": dict(sorted(Counter(r.style for r in records).items())),
        "capped": sum(r.finish_reason == "length" for r in records),
        "completion_tokens": sum(r.completion_tokens for r in records),
        "degenerate_filtered": dict(sorted(degenerate.items())),
        "conversion_filtered": dict(sorted(converted.stats.filtered.items())),
        "kept": len(converted.examples),
        "kept_by_conversion_kind": {
            "list": converted.stats.structured,
            "paragraph": converted.stats.paragraph,
            "plain": converted.stats.plain,
        },
        "branches": branch_stats(converted.examples),
        "branches_by_style": styled,
    }


def _balance(example: ConvertedExample) -> float:
    sizes = [_size(child) for child in example.conversion.tree.children]
    return min(sizes) / max(sizes) if max(sizes) else 0.0


def _size(branch) -> int:
    return len(branch.output) + sum(_size(child) for child in branch.children)


def _round(value: float) -> float:
    return round(value, 3)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    args = parser.parse_args(argv)
    result = report(list(read_jsonl(args.corpus)))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
