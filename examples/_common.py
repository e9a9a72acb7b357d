"""Shared by the examples: a token budget the tests can shrink (APAR_EXAMPLE_MAX_TOKENS)."""

from __future__ import annotations

import os


def budget(default: int) -> int:
    return min(default, int(os.environ.get("APAR_EXAMPLE_MAX_TOKENS", default)))
