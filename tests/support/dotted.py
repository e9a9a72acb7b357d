"""Resolve a dotted path (`package.module.Class.attr`) to the object it names, for tests that
check that names written as data or in docs still exist."""

from __future__ import annotations

import importlib


def resolve(dotted: str):
    """Import the longest importable module prefix of `dotted`, then walk the attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f"no importable module prefix in {dotted}")
