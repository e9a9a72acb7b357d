"""A running program's state: a cursor over generated text, captures and forks."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence
from typing import Any

from apar_sgl.dsl.ops import DslError, Expr, ForkExpr, as_expr
from apar_sgl.dsl.run import Run, drive

logger = logging.getLogger(__name__)


_current: contextvars.ContextVar[State] = contextvars.ContextVar("apar_current_state")


class DeferredError(DslError):
    """A branch value was read inside its fork block, before the branches ran."""


class State:
    """Cursor of one program run (or one fork branch).

    On a root state ``state += expr`` runs ``expr`` at once. Inside a ``fork`` block branch
    states only record; the branches run together when the block exits.
    """

    def __init__(self, run: Run, label: str = "", *, item: Any = None, index: int = 0) -> None:
        self._run = run
        self.label = label
        self.item = item
        self.index = index
        self._text = ""
        self._vars: dict[str, Any] = {}
        self._meta: dict[str, Any] = {}
        self._pending: list[Expr] | None = None
        self._committed = 0
        self.forks: list[tuple[State, ...]] = []
        self.ret: Any = None

    def __iadd__(self, expr: Expr | str) -> State:
        expr = as_expr(expr)
        if self._pending is not None:
            self._pending.append(expr)
        else:
            from apar_sgl.dsl.executor import execute

            drive(self._run, execute(self, expr))
        return self

    def fork(self, branches: int | Sequence[Any], *, join: str = "\n") -> Fork:
        """Open a parallel section: ``branches`` copies, or one branch per item of a list.

        After the block the branches' new text is appended here in branch order, separated
        by ``join``; their captures stay on the branch states (``state.branches``).
        """
        return Fork(self, branches, join)

    @property
    def text(self) -> str:
        self._check_ready("text")
        return self._text

    @property
    def branches(self) -> tuple[State, ...]:
        """Branches of the latest fork of this state."""
        if not self.forks:
            raise DslError("this state has no fork yet")
        return self.forks[-1]

    def __getitem__(self, name: str) -> Any:
        self._check_ready(repr(name))
        if name in self._vars:
            return self._vars[name]
        if any(name in b._vars for branches in self.forks for b in branches):
            raise KeyError(f"{name!r} was captured in fork branches: read it from state.branches")
        raise KeyError(f"no capture named {name!r}; captures: {sorted(self._vars)}")

    def get(self, name: str, default: Any = None) -> Any:
        self._check_ready(repr(name))
        return self._vars.get(name, default)

    def meta(self, name: str) -> Any:
        """SGLang ``meta_info`` of capture ``name`` (for gen_json: ``{pointer: meta_info}``)."""
        self._check_ready(repr(name))
        return self._meta[name]

    @property
    def captures(self) -> dict[str, Any]:
        self._check_ready("captures")
        return dict(self._vars)

    def _check_ready(self, what: str) -> None:
        if self._pending is not None:
            raise DeferredError(
                f"branch {self.label}: {what} is known only after its fork block exits"
            )

    def _append(self, text: str) -> None:
        self._text += text

    def _capture(self, name: str | None, value: Any, meta: Any) -> None:
        if name is not None:
            self._vars[name] = value
            self._meta[name] = meta

    def __repr__(self) -> str:
        if self._pending is not None:
            return f"State({self.label or 'root'}, recording {len(self._pending)} ops)"
        return (
            f"State({self.label or 'root'}, {len(self._text)} chars, "
            f"captures={sorted(self._vars)}, forks={len(self.forks)})"
        )


class Fork:
    """Context manager of one ``fork`` block; see :meth:`State.fork`."""

    def __init__(self, parent: State, branches: int | Sequence[Any], join: str) -> None:
        if isinstance(branches, bool | str) or not isinstance(branches, int | Sequence):
            raise DslError(f"fork() takes a branch count or a list of items, got {branches!r}")
        items = [None] * branches if isinstance(branches, int) else list(branches)
        if not items:
            raise DslError("fork() needs at least one branch")
        self.parent = parent
        self.join = join
        number = len(parent.forks) + sum(isinstance(e, ForkExpr) for e in parent._pending or ())
        base = f"{parent.label}." if parent.label else ""
        self.branches = tuple(
            State(parent._run, f"{base}fork{number}[{i}]", item=item, index=i)
            for i, item in enumerate(items)
        )
        self._open = False

    def __enter__(self) -> list[State]:
        if self._open:
            raise DslError("a fork block can be entered only once")
        self._open = True
        for b in self.branches:
            b._pending = []
        return list(self.branches)  # a list, so that `branches[i] += ...` works

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        if self.parent._pending is not None:
            self.parent._pending.append(ForkExpr(self))
        else:
            from apar_sgl.dsl.executor import run_fork

            drive(self.parent._run, run_fork(self.parent, self))

    def __repr__(self) -> str:
        return f"Fork({len(self.branches)} branches of {self.parent.label or 'root'})"


def current_state() -> State:
    try:
        return _current.get()
    except LookupError:
        raise DslError("apar.fork() is only valid inside a running @apar.function") from None


def fork(branches: int | Sequence[Any], *, join: str = "\n") -> Fork:
    """``state.fork`` on the running program's root state; use ``branch.fork`` to nest."""
    return current_state().fork(branches, join=join)
