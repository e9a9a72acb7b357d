"""Degenerate teacher answers: repetition loops, truncated lists, empty items. Pure Python.

`degenerate_reason` names the first defect found, or returns None for a usable answer. It
runs on the answer as it will be trained (after `sampling.trim_truncated` for capped ones).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from apar_sgl.train.sampling import trim_truncated

if TYPE_CHECKING:
    from apar_sgl.train.corpus import CorpusRecord

logger = logging.getLogger(__name__)

DegenerateReason = Literal[
    "empty", "repeated_line", "loop", "empty_item", "truncated_list", "instruction_echo"
]

_ITEM = re.compile(r"^[ \t]*(?:\d{1,3}[.)]|[-*\u2022])(?:[ \t]+(.*))?$")
_WORD = re.compile(r"[a-z0-9']+")
# Phrases of the teacher's system prompts that a well-behaved answer never repeats.
_ECHOES = (
    "heading:",
    "topic sentence",
    "sentences that explain it",
    "so nothing is missing later",  # the points prompt's example
    "build on it once it feels natural",
    "as an ai",
)

MIN_LINE_WORDS = 4  # shorter lines ("Conclusion:") may repeat legitimately
NGRAM = 4
MIN_DISTINCT_NGRAMS = 0.7  # share of distinct word 4-grams below which an answer loops
MIN_NGRAMS = 20  # too few 4-grams to judge


def degenerate_reason(answer: str, capped: bool = False) -> DegenerateReason | None:
    """Why the (trimmed) ``answer`` is degenerate; ``capped``: it hit the token limit."""
    text = answer.strip()
    if not text:
        return "empty"
    lower = text.lower()
    if any(echo in lower for echo in _ECHOES):
        return "instruction_echo"
    if _repeated_line(text):
        return "repeated_line"
    if distinct_ngram_share(lower) < MIN_DISTINCT_NGRAMS:
        return "loop"
    if _has_empty_item(text):
        return "empty_item"
    if capped and _ends_in_list(text):
        return "truncated_list"
    return None


def distinct_ngram_share(text: str, n: int = NGRAM) -> float:
    """Distinct word n-grams over all of them; 1.0 when there are fewer than MIN_NGRAMS."""
    words = _WORD.findall(text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < MIN_NGRAMS:
        return 1.0
    return len(set(grams)) / len(grams)


def _repeated_line(text: str) -> bool:
    """Some line of at least MIN_LINE_WORDS words occurs twice (list markers ignored)."""
    lines = []
    for line in text.splitlines():
        match = _ITEM.match(line)
        body = (match.group(1) or "") if match else line
        words = _WORD.findall(body.lower())
        if len(words) >= MIN_LINE_WORDS:
            lines.append(" ".join(words))
    return any(count > 1 for count in Counter(lines).values())


def _has_empty_item(text: str) -> bool:
    """A list marker with nothing after it, or an item head ending in ':' whose details
    never come (the next line is an item at the same or a lower indent, or there is none)."""
    lines = [line for line in text.splitlines() if line.strip()]
    for k, line in enumerate(lines):
        match = _ITEM.match(line)
        if match is None:
            continue
        body = (match.group(1) or "").strip(" *_")
        if len(body) < 2:
            return True
        if body.endswith(":"):
            after = lines[k + 1] if k + 1 < len(lines) else None
            if after is None or (_ITEM.match(after) and _indent(after) <= _indent(line)):
                return True
    return False


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _ends_in_list(text: str) -> bool:
    """The last non-blank line is a list item: a capped answer that stopped inside its list."""
    last = [line for line in text.splitlines() if line.strip()][-1]
    return _ITEM.match(last) is not None


def clean(records: Iterable[CorpusRecord]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Usable (prompt, answer) pairs and the count of left-out answers per reason.

    Capped answers are first cut back to their last complete line (`trim_truncated`);
    ``uncuttable`` counts those with no such line.
    """
    pairs: list[tuple[str, str]] = []
    dropped: Counter[str] = Counter()
    for record in records:
        capped = record.finish_reason == "length"
        answer = trim_truncated(record.answer) if capped else record.answer.strip()
        reason = "uncuttable" if answer is None else degenerate_reason(answer, capped)
        if reason is None:
            pairs.append((record.prompt, answer))
        else:
            dropped[reason] += 1
    return pairs, dict(dropped)
