"""Per-request n-gram tables of one scheduler: observe, inherit, release.

Each request's table is seeded from its prompt and fed its accepted tokens at draft time. An
APAR child starts from a fork of its parent's table; the children of one parent also share a
family table, so each drafts from its siblings' accepted tokens. With a shared corpus on,
finished requests' tokens feed every later table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from apar_sgl.ngram.control import DraftLengthController
from apar_sgl.ngram.table import NgramTable


@dataclass(slots=True)
class RequestState:
    table: NgramTable
    control: DraftLengthController
    fed: int | None = 0  # tokens of prompt + output in the table; None: inherited, re-sync tail
    drafted: int = 0  # depth of the last draft, for control.update
    levels: list[int] = field(default_factory=list)  # match level of each drafted chain token
    tokens: list[int] = field(default_factory=list)  # prompt + output, kept for the corpus only


class RequestTables:
    """The live requests' tables, by rid, and their families' shared tables, by parent rid."""

    def __init__(
        self,
        max_n: int,
        max_entries_per_level: int,
        shared_corpus: bool,
        new_controller: Callable[[], DraftLengthController],
    ) -> None:
        self._max_n = max_n
        self._max_entries = max_entries_per_level
        self._new_controller = new_controller
        self._states: dict[str, RequestState] = {}
        self._families: dict[str, NgramTable] = {}  # by parent rid: its children's shared table
        self._corpus = NgramTable(max_n) if shared_corpus else None

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, rid: str) -> bool:
        return rid in self._states

    @property
    def families(self) -> int:
        return len(self._families)

    def get(self, rid: str) -> RequestState | None:
        return self._states.get(rid)

    def observe(self, rid: str, prompt: Sequence[int], output: Sequence[int]) -> RequestState:
        """The request's state with every token so far fed to its table."""
        state = self._states.get(rid)
        if state is None:
            state = self._states[rid] = RequestState(self._table(), self._new_controller())
        total = len(prompt) + len(output)
        if state.fed is None:  # inherited: the parent's n-grams are there, only the tail is not
            tail = (list(prompt) + list(output))[-(self._max_n - 1) :]
            state.table.extend(tail, new_sequence=True)
        elif state.fed < len(prompt):
            state.table.extend(list(prompt[state.fed :]) + list(output))
        else:
            state.table.extend(output[state.fed - len(prompt) :])
        if self._corpus is not None:
            state.tokens.extend((list(prompt) + list(output))[len(state.tokens) :])
        state.fed = total
        return state

    def inherit(self, parent_rid: str, child_rid: str) -> bool:
        """Start `child_rid` with a fork of its parent's table (a fork shares the prefix).

        The children of one parent also read and feed a shared family table. False when the
        parent has no table (it never decoded under ANPD, or has already been released).
        """
        parent = self._states.get(parent_rid)
        if parent is None:
            return False
        family = self._families.get(parent_rid)
        if family is None:
            family = self._families[parent_rid] = self._table()
        table = parent.table.fork(family=family)
        self._states[child_rid] = RequestState(table, self._new_controller(), fed=None)
        return True

    def rids(self) -> list[str]:
        return list(self._states)

    def release(self, rids: Iterable[str]) -> None:
        """Forget finished requests (into the shared corpus, if on); children keep their family
        table through their own."""
        for rid in rids:
            state = self._states.pop(rid, None)
            self._families.pop(rid, None)
            if state is not None and self._corpus is not None:
                self._corpus.extend(state.tokens, new_sequence=True)

    def reset(self) -> None:
        self._states.clear()
        self._families.clear()

    def _table(self) -> NgramTable:
        sources = (self._corpus,) if self._corpus is not None else ()
        return NgramTable(self._max_n, self._max_entries, sources=sources)
