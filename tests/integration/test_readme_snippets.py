"""Every ```python block of README.md runs as written, as a file, on the embedded engine.

README.md is read at test time, so a rewritten README is checked as it stands. A block that
is not meant to run on its own is marked by the line `<!-- readme-test: skip -->` right
before its opening fence.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_MARK = "<!-- readme-test: skip -->"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block not marked with SKIP_MARK."""
    blocks = []
    for match in FENCE.finditer(markdown):
        before = markdown[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() != SKIP_MARK:
            blocks.append((markdown.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


BLOCKS = python_blocks((ROOT / "README.md").read_text())


def test_readme_has_python_blocks():
    assert BLOCKS, "README.md has no runnable ```python block"


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_block_runs_as_a_file(line, code, tmp_path):
    script = tmp_path / f"readme_line_{line}.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "APAR_BACKEND"}  # the embedded engine
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"README.md line {line}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.strip(), "the block printed nothing"
