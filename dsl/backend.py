"""Where programs generate: the in-process SGLang Engine or a running server's ``/generate``.

Every call is one batch. Calls from several threads (``run_batch``) coalesce: while one batch
runs, later callers queue, and the next caller sends everything queued as one batch.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from apar_sgl.dsl.chat import ChatFormat, chat_format_for

from apar_sgl import env

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Request:
    prompt: str
    params: Mapping[str, Any] = field(hash=False)
    label: str = ""


class Completion(NamedTuple):
    text: str
    meta: dict[str, Any]


class BackendError(RuntimeError):
    """The engine or server rejected or failed a request."""


@dataclass(slots=True, eq=False)
class _Ticket:
    requests: Sequence[Request]
    result: list[Completion] | None = None
    error: BaseException | None = None


class Backend(ABC):
    """Sends batches of requests; subclasses implement :meth:`_generate_batch`."""

    model_path: str

    def __init__(self) -> None:
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self._call_lock = threading.Lock()
        self._chat_lock = threading.Lock()
        self._chat: ChatFormat | None = None

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Generate all ``requests`` in one batched call (coalesced with concurrent callers)."""
        ticket = _Ticket(list(requests))
        with self._queue_lock:
            self._queue.append(ticket)
        with self._call_lock:
            if ticket.result is None and ticket.error is None:
                with self._queue_lock:
                    tickets, self._queue = self._queue, []
                self._run(tickets)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def stream(self, request: Request) -> Iterator[str]:
        """Yield text deltas of one request, then return its :class:`Completion`."""
        return (yield from _no_stream(self, request))

    @property
    def chat_format(self) -> ChatFormat:
        # run_batch threads ask at once; transformers' lazy imports are not thread-safe.
        with self._chat_lock:
            if self._chat is None:
                self._chat = chat_format_for(self._tokenizer(), self.model_path)
        return self._chat

    def shutdown(self) -> None:
        """Release what this backend started (nothing for a server by URL)."""
        logger.debug("%r: nothing to shut down", self)

    @abstractmethod
    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion]: ...

    @abstractmethod
    def _tokenizer(self) -> Any | None: ...

    def _run(self, tickets: list[_Ticket]) -> None:
        flat = [r for t in tickets for r in t.requests]
        logger.debug("batch of %d requests from %d callers", len(flat), len(tickets))
        try:
            results = self._generate_batch(flat)
        except BaseException as exc:
            for t in tickets:
                t.error = exc
            return
        start = 0
        for t in tickets:
            t.result, start = results[start : start + len(t.requests)], start + len(t.requests)


def _no_stream(backend: Backend, request: Request) -> Iterator[str]:
    completion = backend.generate([request])[0]
    yield completion.text
    return completion


class EngineBackend(Backend):
    """An in-process ``apar_sgl.Engine`` (SGLang's offline Engine)."""

    def __init__(self, engine: Any, *, owned: bool = False) -> None:
        super().__init__()
        self.engine = engine
        self.model_path = engine.server_args.model_path
        self._owned = owned

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion]:
        try:
            outs = self.engine.generate(
                prompt=[r.prompt for r in requests],
                sampling_params=[dict(r.params) for r in requests],
            )
        except ValueError as exc:
            raise BackendError(f"engine rejected the batch: {exc}") from exc
        return [Completion(o["text"], o["meta_info"]) for o in outs]

    def stream(self, request: Request) -> Iterator[str]:
        with self._call_lock:
            out, seen = None, 0
            for out in self.engine.generate(
                prompt=request.prompt, sampling_params=dict(request.params), stream=True
            ):
                yield out["text"][seen:]
                seen = len(out["text"])
        return Completion(out["text"], out["meta_info"])

    def _tokenizer(self) -> Any | None:
        return self.engine.tokenizer_manager.tokenizer

    def shutdown(self) -> None:
        if self._owned:
            self.engine.shutdown()

    def __repr__(self) -> str:
        return f"EngineBackend({self.model_path!r})"


class HttpBackend(Backend):
    """A running SGLang server (``apar_sgl.launch_server`` or plain SGLang) by base URL."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 600.0) -> None:
        super().__init__()
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self.model_path = self._get("/model_info")["model_path"]

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion]:
        body = {
            "text": [r.prompt for r in requests],
            "sampling_params": [dict(r.params) for r in requests],
        }
        outs = self._post("/generate", body)
        return [Completion(o["text"], o["meta_info"]) for o in outs]

    def stream(self, request: Request) -> Iterator[str]:
        import requests as http

        body = {"text": request.prompt, "sampling_params": dict(request.params), "stream": True}
        with self._call_lock:
            res = http.post(
                self.url + "/generate",
                json=body,
                headers=self._headers,
                stream=True,
                timeout=self._timeout,
            )
            _check(res)
            out, seen = None, 0
            for line in res.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:") or line == "data: [DONE]":
                    continue
                out = json.loads(line[5:])
                yield out["text"][seen:]
                seen = len(out["text"])
        return Completion(out["text"], out["meta_info"])

    def _tokenizer(self) -> Any | None:
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(self.model_path)
        except (OSError, ValueError) as exc:
            logger.info("no local tokenizer for %s: %s", self.model_path, exc)
            return None

    def _get(self, route: str) -> Any:
        import requests as http

        res = http.get(self.url + route, headers=self._headers, timeout=self._timeout)
        _check(res)
        return res.json()

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        import requests as http

        res = http.post(self.url + route, json=body, headers=self._headers, timeout=self._timeout)
        _check(res)
        return res.json()

    def __repr__(self) -> str:
        return f"HttpBackend({self.url!r}, model={self.model_path!r})"


def _check(res: Any) -> None:
    if res.status_code != 200:
        raise BackendError(f"{res.request.method} {res.url} -> {res.status_code}: {res.text[:500]}")


_default: Backend | None = None
_default_lock = threading.Lock()


def set_default_backend(backend: Backend | str | Any | None) -> Backend | None:
    """Set the backend programs use when ``run`` gets none: a Backend, a URL or an Engine."""
    global _default
    with _default_lock:
        _default = None if backend is None else as_backend(backend)
        return _default


def default_backend() -> Backend:
    """The default backend: the server at $APAR_BACKEND if set, else one shared embedded
    Engine on the default model, started on first use."""
    global _default
    with _default_lock:
        if _default is None and env.default_backend_url():
            _default = HttpBackend(env.default_backend_url())
        if _default is None:
            from apar_sgl.engine import Engine

            logger.info("starting the embedded engine on the default model")
            # Weak small models otherwise may emit only whitespace under a JSON grammar.
            engine = Engine(constrained_json_disable_any_whitespace=True)
            _default = EngineBackend(engine, owned=True)
            atexit.register(_default.shutdown)
        return _default


def as_backend(backend: Backend | str | Any | None) -> Backend:
    if backend is None:
        return default_backend()
    if isinstance(backend, Backend):
        return backend
    if isinstance(backend, str):
        if not backend.startswith(("http://", "https://")):
            raise ValueError(f"backend URL must start with http:// or https://, got {backend!r}")
        return HttpBackend(backend)
    if hasattr(backend, "generate") and hasattr(backend, "tokenizer_manager"):
        return EngineBackend(backend)
    raise TypeError(f"expected a Backend, a server URL or an SGLang Engine, got {backend!r}")
