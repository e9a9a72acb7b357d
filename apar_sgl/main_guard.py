"""One clear error when a script starts the embedded engine from unguarded top-level code.

SGLang's Engine starts its scheduler and detokenizer with multiprocessing's "spawn" method,
which re-imports the script's ``__main__`` in every child: a top-level ``prog.run(...)``
outside ``if __name__ == "__main__":`` would run again there and fail in each child with a
bare RuntimeError. Checked in the parent, before anything is spawned.
"""

from __future__ import annotations

import ast
import logging
import sys
from types import FrameType, ModuleType

logger = logging.getLogger(__name__)


class MainGuardError(RuntimeError):
    """The embedded engine was started by a script's top-level code outside a main guard."""


def check_main_guard() -> None:
    """Raise MainGuardError if ``__main__``'s top-level code is running outside its guard."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    line = _running_main_line(main, sys._getframe(1)) if path else None
    if line is None:
        return  # python -c, a REPL or a notebook: spawn does not re-import those
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as exc:
        logger.debug("cannot read %s to check its main guard: %s", path, exc)
        return
    if not any(start <= line <= end for start, end in _guarded_lines(tree)):
        raise MainGuardError(
            f"{path}, line {line}, starts the embedded SGLang engine while the script is "
            "being imported. The engine's worker processes re-import the script "
            "(multiprocessing 'spawn') and would run that line again. Put the script's "
            'top-level code under `if __name__ == "__main__":`, for example\n\n'
            'if __name__ == "__main__":\n    state = my_program.run(...)\n'
        )


def _running_main_line(main: ModuleType | None, frame: FrameType | None) -> int | None:
    """The line of ``__main__``'s module-level code on the current call stack, if any."""
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            return frame.f_lineno
        frame = frame.f_back
    return None


def _guarded_lines(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges of the bodies of ``if __name__ == "__main__":`` blocks."""
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test):
            ranges.append((node.body[0].lineno, node.body[-1].end_lineno or node.lineno))
    return ranges


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = {_name_or_str(test.left), _name_or_str(test.comparators[0])}
    return sides == {"name:__name__", "str:__main__"}


def _name_or_str(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return f"name:{node.id}"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return f"str:{node.value}"
    return None
