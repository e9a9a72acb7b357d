"""A script that starts the engine at import time gets one MainGuardError naming the fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CALL = "from apar_sgl.main_guard import check_main_guard\n"


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(CALL + textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "body",
    [
        "check_main_guard()\n",
        "def main():\n    check_main_guard()\n\n\nmain()\n",
        'if __name__ != "__main__":\n    pass\nelse:\n    check_main_guard()\n',
    ],
    ids=["top-level", "function-called-at-top-level", "else-of-negated-guard"],
)
def test_unguarded_start_raises_one_clear_error(tmp_path, body):
    res = _run(tmp_path, body)
    assert res.returncode == 1
    assert res.stderr.count("MainGuardError:") == 1
    assert 'if __name__ == "__main__":' in res.stderr
    assert "script.py, line" in res.stderr


@pytest.mark.parametrize(
    "body",
    [
        'if __name__ == "__main__":\n    check_main_guard()\n',
        "def main():\n    check_main_guard()\n\n\nif '__main__' == __name__:\n    main()\n",
        "import sys\ntry:\n    pass\nfinally:\n    if __name__ == '__main__':\n"
        "        check_main_guard()\n",
    ],
    ids=["guarded", "reversed-guard-calls-function", "guard-nested-in-try"],
)
def test_guarded_start_passes(tmp_path, body):
    res = _run(tmp_path, body)
    assert res.returncode == 0, res.stderr


def test_python_c_is_not_checked():
    res = subprocess.run(
        [sys.executable, "-c", CALL + "check_main_guard()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
