"""Flaws in a generated JSON document that validity does not catch: empty or placeholder values.

A document can validate and still say nothing: ``name=''``, ``name='<NAME>'``,
``city='{city}'``, ``bio='<br>'``. :func:`flaws` lists every string value that is empty (no
letter or digit at all), a template placeholder or markup, by its JSON pointer; the bench and
the tests report the share of documents without any as the quality rate beside validity.
"""

from __future__ import annotations

import re
from typing import Any

from apar_sgl.dsl.schema_split import escape_pointer

_PLACEHOLDER = re.compile(r"<[A-Z0-9_ -]+>|\{[^{}]*\}|\[[^\[\]]*\]|_{3,}|\.{3,}")
_PLACEHOLDER_WORDS = re.compile(
    r"^(?:n/?a|none|null|unknown|tbd|todo|xxx+|string|example|value|lorem ipsum.*)$",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"</?[a-z][a-z0-9]*(?:\s[^>]*)?/?>|&[a-z]+;|\\[nt]|\*\*|`|^#+\s")


def flaws(value: Any, pointer: str = "") -> list[tuple[str, str]]:
    """``(pointer, kind)`` for every flawed string in ``value``; kind: empty/placeholder/markup."""
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in flaws(v, f"{pointer}/{escape_pointer(k)}")]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in flaws(v, f"{pointer}/{i}")]
    if not isinstance(value, str):
        return []
    text = value.strip()
    if not any(c.isalnum() for c in text):
        return [(pointer or "/", "empty")]
    if _MARKUP.search(text):
        return [(pointer or "/", "markup")]
    if _PLACEHOLDER.search(text) or _PLACEHOLDER_WORDS.match(text):
        return [(pointer or "/", "placeholder")]
    return []
