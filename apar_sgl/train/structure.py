"""Find where an answer forks: list items split into head and details, or paragraphs.

Works on absolute character offsets so that cutting details out and joining them back is
exact. Markdown-like list rules: an item continues over more-indented lines and over
unindented lines not preceded by a blank line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from apar_sgl.train.convert import ConvertConfig

logger = logging.getLogger(__name__)

_ITEM = re.compile(r"([ \t]*)(\d{1,3}[.)]|[-*\u2022])[ \t]+(?=\S)")
_COLON = re.compile(r":[*_]*(?=\s|$)")
_SENTENCE_END = re.compile(r"[.!?][\"')\]*_]*(?=\s+[\"'(*_]*[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "e.g i.e u.s etc vs mr mrs ms dr prof st jr sr no fig approx dept est inc ltd co".split()
)


class Line(NamedTuple):
    start: int  # absolute offset in the answer
    body: str  # without its line break


@dataclass(slots=True)
class Cut:
    """Details cut out of the answer: a child covering answer[start:end]."""

    start: int
    end: int
    inner: list[Cut] = field(default_factory=list)


def split_lines(text: str, lo: int, hi: int) -> list[Line]:
    """Lines of text[lo:hi] with absolute offsets; any str.splitlines break counts."""
    lines, pos = [], lo
    region = text[lo:hi]
    for raw, body in zip(region.splitlines(keepends=True), region.splitlines(), strict=True):
        lines.append(Line(pos, body))
        pos += len(raw)
    return lines


def has_list_items(lines: list[Line]) -> bool:
    """True if any line starts a numbered or bulleted list item."""
    return any(_ITEM.match(line.body) for line in lines)


def list_cuts(text: str, lines: list[Line], cfg: ConvertConfig, depth: int = 1) -> list[Cut]:
    """Cuts for every list of >= min_items items that all split into head and details."""
    cuts: list[Cut] = []
    for items in _find_lists(lines):
        if len(items) < cfg.min_items:
            continue
        found = [_item_cut(text, lines, first, last, cfg) for first, last in items]
        item_cuts = [cut for cut in found if cut is not None]
        if len(item_cuts) < len(found):
            continue
        for cut in item_cuts:
            if depth < cfg.max_depth:
                inner_lines = split_lines(text, cut.start, cut.end)[1:]  # first line: the head's
                cut.inner = list_cuts(text, inner_lines, cfg, depth + 1)
            cuts.append(cut)
    return cuts


def _find_lists(lines: list[Line]) -> list[list[tuple[int, int]]]:
    """Lists as (first line, last non-blank line) per item, by markdown-like rules."""
    lists: list[list[tuple[int, int]]] = []
    i = 0
    while i < len(lines):
        match = _ITEM.match(lines[i].body)
        if match is None:
            i += 1
            continue
        indent, key = _indent(match.group(1)), _marker_key(match.group(2))
        items, last, blank_before, j = [[i, i]], i, False, i + 1
        while j < len(lines):
            body = lines[j].body
            if not body.strip():
                blank_before, j = True, j + 1
                continue
            sub = _ITEM.match(body)
            line_indent = _indent(body[: len(body) - len(body.lstrip(" \t"))])
            if sub and line_indent == indent and _marker_key(sub.group(2)) == key:
                items.append([j, j])
            elif line_indent > indent or (sub is None and not blank_before):
                items[-1][1] = j
            else:
                break
            last, blank_before, j = j, False, j + 1
        lists.append([(first, end) for first, end in items])
        i = last + 1
    return lists


def _item_cut(
    text: str, lines: list[Line], first: int, last: int, cfg: ConvertConfig
) -> Cut | None:
    """Split one item into head and details: colon or sentence end, else the head line."""
    line = lines[first]
    match = _ITEM.match(line.body)
    assert match is not None
    rest = line.body[match.end() :]
    head_end = _head_end(rest, cfg.max_head_chars)
    if head_end is None and last > first:
        head_end = len(rest)
    if head_end is None:
        return None
    start = line.start + match.end() + head_end
    return _details_cut(text, start, lines[last].start + len(lines[last].body), cfg)


def paragraph_cuts(text: str, lines: list[Line], cfg: ConvertConfig) -> list[Cut]:
    """Paper's fallback: each paragraph's first sentence (or heading line) stays in the parent."""
    paragraphs: list[tuple[int, int]] = []
    for k, line in enumerate(lines):
        if not line.body.strip():
            continue
        if k and lines[k - 1].body.strip() and paragraphs:
            paragraphs[-1] = (paragraphs[-1][0], k)
        else:
            paragraphs.append((k, k))
    if len(paragraphs) < cfg.min_paragraphs:
        return []
    cuts = []
    for first, last in paragraphs:
        head_line = lines[first]
        end = lines[last].start + len(lines[last].body)
        para = text[head_line.start : end]
        head_end = _sentence_end(para, len(para))
        first_line_is_heading = _sentence_end(head_line.body, len(head_line.body)) is None
        if last > first and first_line_is_heading and len(head_line.body) <= cfg.max_head_chars:
            head_end = len(head_line.body)
        if head_end is not None:
            cut = _details_cut(text, head_line.start + head_end, end, cfg)
            if cut is not None:
                cuts.append(cut)
    return cuts if len(cuts) >= cfg.min_paragraph_forks else []


def _details_cut(text: str, start: int, end: int, cfg: ConvertConfig) -> Cut | None:
    details = text[start:end].rstrip()
    if len(details.strip()) < cfg.min_detail_chars:
        return None
    return Cut(start, start + len(details))


def _head_end(rest: str, max_chars: int) -> int | None:
    """End of an item head on its first line: the earlier of the first ':' and sentence end."""
    ends = [_sentence_end(rest, max_chars)]
    colon = _COLON.search(rest)
    if (
        colon is not None
        and colon.start() < max_chars
        and any(c.isalnum() for c in rest[: colon.start()])
    ):
        ends.append(colon.end())
    found = [e for e in ends if e is not None]
    return min(found) if found else None


def _sentence_end(text: str, max_chars: int) -> int | None:
    """End of the first sentence starting before ``max_chars``, skipping abbreviations."""
    for match in _SENTENCE_END.finditer(text):
        if match.start() >= max_chars:
            return None
        words = text[: match.start()].split()
        word = words[-1].lstrip("*_\"'(").lower() if words else ""
        if len(word) > 1 and word not in _ABBREVIATIONS:
            return match.end()
    return None


def _indent(prefix: str) -> int:
    return len(prefix.expandtabs(4))


def _marker_key(marker: str) -> str:
    return "#" + marker[-1] if marker[0].isdigit() else marker
