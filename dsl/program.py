"""``@apar.function``: an immutable program; ``run`` returns the finished :class:`State`."""

from __future__ import annotations

import functools
import inspect
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apar_sgl.dsl.backend import Backend, as_backend
from apar_sgl.dsl.run import Run, StreamChunk
from apar_sgl.dsl.state import State, _current

logger = logging.getLogger(__name__)


class Program:
    """A function ``fn(state, *args, **kwargs)`` that builds and generates through ``state``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        signature = inspect.signature(fn)
        if not signature.parameters:
            raise TypeError(f"@apar.function {fn.__name__} must take the state as first argument")
        self.fn = fn
        self.signature = signature
        functools.update_wrapper(self, fn, updated=())

    def run(self, *args: Any, backend: Backend | str | Any | None = None, **kwargs: Any) -> State:
        """Run once; ``backend`` is a Backend, a server URL, an Engine, or None (default)."""
        return self._run(Run(as_backend(backend)), args, kwargs)

    def run_batch(
        self,
        batch: Sequence[Mapping[str, Any]],
        *,
        backend: Backend | str | Any | None = None,
        num_threads: int = 16,
        progress_bar: bool = False,
    ) -> list[State]:
        """Run once per kwargs mapping, concurrently; concurrent generations share batches."""
        resolved = as_backend(backend)
        for kwargs in batch:
            self._bind(kwargs)
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(batch), desc=self.__name__)

        def one(kwargs: Mapping[str, Any]) -> State:
            state = self._run(Run(resolved), (), dict(kwargs))
            if bar is not None:
                bar.update(1)
            return state

        try:
            with ThreadPoolExecutor(max(1, min(num_threads, len(batch)))) as pool:
                return list(pool.map(one, batch))
        finally:
            if bar is not None:
                bar.close()

    def stream(
        self, *args: Any, backend: Backend | str | Any | None = None, **kwargs: Any
    ) -> ProgramStream:
        """Iterate :class:`StreamChunk` s while the program runs; ``.state`` when done."""
        return ProgramStream(self, as_backend(backend), args, kwargs)

    def _run(self, run: Run, args: tuple, kwargs: dict[str, Any]) -> State:
        self._bind(kwargs, args)
        state = State(run)
        token = _current.set(state)
        try:
            state.ret = self.fn(state, *args, **kwargs)
        finally:
            _current.reset(token)
        return state

    def _bind(self, kwargs: Mapping[str, Any], args: tuple = ()) -> None:
        try:
            self.signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.__name__}: {exc}") from None

    def __call__(self, *args: Any, **kwargs: Any) -> State:
        return self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<apar.function {self.__name__}{self.signature}>"


class ProgramStream:
    """Runs a program in a thread and yields its chunks; re-raises the program's error."""

    _DONE = object()

    def __init__(self, program: Program, backend: Backend, args: tuple, kwargs: dict) -> None:
        self.state: State | None = None
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        run = Run(backend, sink=self._queue.put)
        self._thread = threading.Thread(
            target=self._work, args=(program, run, args, kwargs), daemon=True
        )
        self._thread.start()

    def _work(self, program: Program, run: Run, args: tuple, kwargs: dict) -> None:
        try:
            self.state = program._run(run, args, kwargs)
        except BaseException as exc:
            self._error = exc
        finally:
            self._queue.put(self._DONE)

    def __iter__(self) -> Iterator[StreamChunk]:
        while (chunk := self._queue.get()) is not self._DONE:
            yield chunk
        self._thread.join()
        if self._error is not None:
            raise self._error


def function(fn: Callable[..., Any]) -> Program:
    """Decorate ``fn(state, ...)`` into a :class:`Program`."""
    return Program(fn)
