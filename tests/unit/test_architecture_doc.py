"""docs/architecture.md stays true: every `apar_sgl.…` name it puts in backticks exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _resolve(dotted: str) -> object:
    """Import the longest importable module prefix, then walk attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_name_in_the_architecture_doc_exists():
    names = sorted(set(re.findall(r"`(apar_sgl(?:\.\w+)+)`", DOC.read_text())))
    assert len(names) > 20  # the doc names the functions of each flow
    missing = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name}: {exc!r}")
    assert not missing, missing
