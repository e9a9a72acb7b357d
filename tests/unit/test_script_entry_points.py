"""Every `python -m` entry point runs `main()` only after the whole module is defined.

A function defined below `if __name__ == "__main__": main()` exists when the module is
imported (as tests do) but not when it is run as a script, so the guard must come last.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    path
    for folder in ("apar_sgl", "dsl", "runtime_patches", "examples")
    for path in (ROOT / folder).rglob("*.py")
)


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and isinstance(node.test.ops[0], ast.Eq)
    )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_main_guard_is_the_last_statement(path):
    body = ast.parse(path.read_text()).body
    guards = [i for i, node in enumerate(body) if _is_main_guard(node)]
    assert guards in ([], [len(body) - 1]), f"{path}: code after its __main__ block"


def test_the_bench_entry_point_is_among_those_checked():
    assert ROOT / "apar_sgl" / "bench" / "__main__.py" in SOURCES
