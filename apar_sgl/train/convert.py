"""APAR data conversion (arXiv 2401.06761): cut list-item details out into child sequences.

An answer whose list items read "head: details" (or a head line followed by detail lines)
becomes a parent stream in which each item's details are replaced by the fork token right
after the head, plus one child sequence per fork whose context is the parent stream up to
and including the fork followed by the child token. Answers with at least three paragraphs
fall back to "first sentence stays, the rest forks". Other answers are kept as plain
sequences; answers with code, math, URLs, tables or non-Latin text are rejected. Joining the
resulting tree gives back the answer exactly. Chat templating and EOS are the caller's.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from apar_sgl.train.structure import Cut, has_list_items, list_cuts, paragraph_cuts, split_lines
from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN, Branch

logger = logging.getLogger(__name__)

Kind = Literal["list", "paragraph", "plain"]
SkipReason = Literal["control_token", "too_short", "code", "url", "table", "math", "non_latin"]

_URL = re.compile(r"https?://|\bwww\.\w", re.IGNORECASE)
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*\|", re.MULTILINE)
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$", re.MULTILINE)
_LATEX = re.compile(r"\$\$|\\[(\[]|\\(?:frac|sqrt|sum|int|begin|cdot|times|alpha|pi)\b")
_ARITHMETIC = re.compile(r"\d\s*[+*/^=×÷]\s*[\d(]")  # "-" left out: ranges like 5-10


@dataclass(frozen=True, slots=True)
class ConvertConfig:
    """Thresholds of the conversion (the paper forks lists of three or more items)."""

    fork_token: str = FORK_TOKEN
    child_token: str = CHILD_TOKEN
    min_items: int = 3  # list items for a list to fork
    min_paragraphs: int = 3  # paragraphs for the paragraph fallback
    min_paragraph_forks: int = 2
    max_head_chars: int = 150
    min_detail_chars: int = 10
    max_depth: int = 2  # fork levels: 2 lets a child fork its own sub-list once
    min_answer_chars: int = 40
    max_digit_ratio: float = 0.15
    max_arithmetic: int = 2  # "3 + 4"-like spans tolerated before an answer counts as math
    max_non_latin_ratio: float = 0.01

    def __post_init__(self) -> None:
        if not self.fork_token or not self.child_token or self.fork_token == self.child_token:
            raise ValueError("fork_token and child_token must be distinct non-empty strings")
        if self.min_items < 2 or self.min_paragraphs < 2 or self.min_paragraph_forks < 1:
            raise ValueError("min_items, min_paragraphs must be >= 2, min_paragraph_forks >= 1")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be >= 1, got {self.max_depth}")
        if not 0.0 <= self.max_digit_ratio <= 1.0 or not 0.0 <= self.max_non_latin_ratio <= 1.0:
            raise ValueError("ratios must lie in [0, 1]")


@dataclass(frozen=True, slots=True)
class TrainingSequence:
    """Text after the chat-templated prompt: ``context`` is not trained, ``target`` is."""

    context: str
    target: str


@dataclass(frozen=True, slots=True)
class Conversion:
    """A kept answer: its fork tree and its training sequences, parent before children."""

    kind: Kind
    tree: Branch[str]
    sequences: tuple[TrainingSequence, ...]

    @property
    def forks(self) -> int:
        return len(self.sequences) - 1


class Rejected(NamedTuple):
    """An answer left out of the training data, and why."""

    reason: SkipReason


class ConvertedExample(NamedTuple):
    prompt: str
    conversion: Conversion


class CorpusStats(NamedTuple):
    total: int
    structured: int  # kind "list"
    paragraph: int
    plain: int
    filtered: dict[str, int]  # reason -> count
    forks: int


class ConvertedCorpus(NamedTuple):
    examples: list[ConvertedExample]
    stats: CorpusStats


def convert_answer(answer: str, config: ConvertConfig | None = None) -> Conversion | Rejected:
    """Convert one answer into a fork tree and its training sequences, or reject it."""
    cfg = config or ConvertConfig()
    reason = filter_reason(answer, cfg)
    if reason is not None:
        return Rejected(reason)
    lines = split_lines(answer, 0, len(answer))
    kind: Kind = "plain"
    cuts = list_cuts(answer, lines, cfg)
    if cuts:
        kind = "list"
    elif not has_list_items(lines):
        cuts = paragraph_cuts(answer, lines, cfg)
        kind = "paragraph" if cuts else "plain"
    tree = _build(answer, 0, len(answer), cuts, cfg.fork_token)
    sequences: list[TrainingSequence] = []
    _collect(tree, "", cfg, sequences)
    return Conversion(kind, tree, tuple(sequences))


def filter_reason(answer: str, config: ConvertConfig | None = None) -> SkipReason | None:
    """Why ``answer`` is unfit for APAR training data, or None if it is fit."""
    cfg = config or ConvertConfig()
    if cfg.fork_token in answer or cfg.child_token in answer:
        return "control_token"
    if len(answer.strip()) < cfg.min_answer_chars:
        return "too_short"
    if "```" in answer or "~~~" in answer:
        return "code"
    if _URL.search(answer):
        return "url"
    if _TABLE_RULE.search(answer) or len(_TABLE_ROW.findall(answer)) >= 2:
        return "table"
    visible = sum(not c.isspace() for c in answer)
    digits = sum(c.isdigit() for c in answer)
    if (
        _LATEX.search(answer)
        or len(_ARITHMETIC.findall(answer)) > cfg.max_arithmetic
        or digits > cfg.max_digit_ratio * visible
    ):
        return "math"
    letters = [c for c in answer if c.isalpha()]
    foreign = sum(not unicodedata.name(c, "").startswith("LATIN") for c in letters)
    if foreign > cfg.max_non_latin_ratio * len(letters):
        return "non_latin"
    return None


def convert_corpus(
    records: Iterable[tuple[str, str]], config: ConvertConfig | None = None
) -> ConvertedCorpus:
    """Convert (prompt, answer) pairs; rejected ones are only counted in the stats."""
    examples: list[ConvertedExample] = []
    kinds: Counter[str] = Counter()
    filtered: Counter[str] = Counter()
    total = 0
    for prompt, answer in records:
        total += 1
        result = convert_answer(answer, config)
        if isinstance(result, Rejected):
            filtered[result.reason] += 1
            continue
        kinds[result.kind] += 1
        examples.append(ConvertedExample(prompt, result))
    forks = sum(e.conversion.forks for e in examples)
    stats = CorpusStats(
        total, kinds["list"], kinds["paragraph"], kinds["plain"], dict(filtered), forks
    )
    logger.info("converted corpus: %s", stats)
    return ConvertedCorpus(examples, stats)


def _build(text: str, lo: int, hi: int, cuts: list[Cut], fork: str) -> Branch[str]:
    parts, children, pos = [], [], lo
    for cut in cuts:
        parts += [text[pos : cut.start], fork]
        children.append(_build(text, cut.start, cut.end, cut.inner, fork))
        pos = cut.end
    parts.append(text[pos:hi])
    return Branch("".join(parts), children)


def _collect(
    branch: Branch[str], context: str, cfg: ConvertConfig, out: list[TrainingSequence]
) -> None:
    """Pre-order: the branch's own stream, then each child after its fork and child token."""
    assert isinstance(branch.output, str)
    out.append(TrainingSequence(context, branch.output))
    pos = 0
    for child in branch.children:
        pos = branch.output.index(cfg.fork_token, pos) + len(cfg.fork_token)
        _collect(child, context + branch.output[:pos] + cfg.child_token, cfg, out)
