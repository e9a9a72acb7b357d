"""docs/architecture.md stays true: every `apar_sgl.…` name it puts in backticks exists."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.dotted import resolve

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_every_name_in_the_architecture_doc_exists():
    names = sorted(set(re.findall(r"`(apar_sgl(?:\.\w+)+)`", DOC.read_text())))
    assert len(names) > 20  # the doc names the functions of each flow
    missing = []
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name}: {exc!r}")
    assert not missing, missing
