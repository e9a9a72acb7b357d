"""`"apar_mode"` on /v1/chat/completions: the model's forks, skeleton-then-expand, or off.

A request may say `"apar_mode": "model"` (the default: the model forks where it was trained
to, see apar/fork.py), `"skeleton"` (prompted parallelism for any model: the DSL's
`outline` and `expand` programs of `apar_sgl.dsl.skeleton`, run here on the tokenizer
manager) or `"off"` (no forks: `custom_params.apar = false`). `--apar-default-mode` sets what
a request without the field gets. Any other value is a 400 naming the field.

On the skeleton route the response is one answer, the expansions joined in point order, with
the top-level `apar` statistics (points, skeleton and answer tokens, critical path steps,
cached prefix tokens per point). A question the skeleton stage routes to plain decoding is
answered by SGLang's own handler, exactly as without the field (non-streamed responses get
`apar` with `"route": "plain"`). A stream is sent in order, one chunk per point, after all
points are written: the points run as one batch, so nothing is known earlier.

Served on the skeleton route: one text-only user turn, optionally after system messages,
n = 1, no tools, no response_format, no logprobs. Anything else is a 400 when the request
asked for "skeleton", and plain decoding when the server default did.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

from apar_sgl.dsl.backend import Backend, BackendError, Completion, Request
from apar_sgl.dsl.run import GenerationError
from apar_sgl.dsl.skeleton import Outline, SkeletonAnswer, SkeletonOptions, expand, outline, stats
from apar_sgl.runtime_patches.apar.openai_api import _with_apar
from apar_sgl.runtime_patches.routes.chat_response import chat_response

from apar_sgl.config import REQUEST_MODES, apar_args_of

logger = logging.getLogger(__name__)

FIELD = "apar_mode"
_PARALLEL_JSON = "apar_parallel_json"


class RouteError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


async def handle_chat_request(original, self, request, raw_request):
    """sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat.handle_request"""
    try:
        body = await _body(raw_request)
        mode = body.get(FIELD, apar_args_of(self.tokenizer_manager.server_args).apar_default_mode)
        if mode not in REQUEST_MODES:
            raise RouteError(
                400, f"{FIELD} must be one of {', '.join(REQUEST_MODES)}; got {mode!r}"
            )
        if mode == "off":
            request.custom_params = {**(request.custom_params or {}), "apar": False}
        if mode != "skeleton":
            return await original(self, request, raw_request)
        reason = _not_servable(request, body)
        if reason is not None and FIELD in body:
            raise RouteError(400, f'{FIELD}="skeleton" does not support {reason}')
        if reason is not None:
            return await original(self, request, raw_request)
        return await _skeleton(original, self, request, raw_request)
    except RouteError as exc:
        logger.info("apar_mode request failed (%d): %s", exc.status, exc)
        return self.create_error_response(str(exc), "BadRequest", exc.status)


async def _body(raw_request) -> dict:
    if raw_request is None:
        return {}
    try:
        body = await raw_request.json()
    except ValueError:
        return {}  # SGLang already parsed it; let its handler answer
    return body if isinstance(body, dict) else {}


def _not_servable(request, body: dict) -> str | None:
    """Why the skeleton route cannot serve this request, or None."""
    if body.get(_PARALLEL_JSON) is True:
        return _PARALLEL_JSON
    if request.n != 1:
        return f"n={request.n}"
    for name in ("tools", "response_format", "logprobs"):
        if getattr(request, name):
            return name
    if _turn(request) is None:
        return "this conversation (it needs one text-only user turn after any system messages)"
    return None


def _turn(request) -> tuple[str, str | None] | None:
    """(question, system prompt) of a single-turn text conversation, else None."""
    if not request.messages:
        return None
    *head, last = request.messages
    if last.role != "user" or not isinstance(last.content, str) or not last.content.strip():
        return None
    if any(m.role != "system" or not isinstance(m.content, str) for m in head):
        return None
    return last.content, "\n".join(m.content for m in head) or None


async def _skeleton(original, serving, request, raw_request):
    question, system_prompt = _turn(request)
    budget = request.max_completion_tokens or request.max_tokens
    temperature = 0.0 if request.temperature is None else request.temperature
    try:
        options = SkeletonOptions(
            temperature=temperature, **({"max_tokens": budget} if budget else {})
        )
    except ValueError as exc:
        raise RouteError(400, str(exc)) from exc
    loop = asyncio.get_running_loop()
    backend = _ServerBackend(serving.tokenizer_manager, raw_request, loop)
    run_outline = functools.partial(
        outline.run, question, system_prompt=system_prompt, options=options, backend=backend
    )
    plan: Outline = (await _in_thread(loop, run_outline)).ret
    if plan.route == "plain":
        response = await original(serving, request, raw_request)
        if request.stream or not hasattr(response, "usage"):
            return response
        return _with_apar(
            response, stats(plan, [{"completion_tokens": response.usage.completion_tokens}])
        )
    point_tokens = min(options.point_tokens, max(1, options.max_tokens // len(plan.points)))
    point_options = SkeletonOptions(point_tokens=point_tokens, temperature=temperature)
    run_expand = functools.partial(expand.run, plan, options=point_options, backend=backend)
    answer: SkeletonAnswer = (await _in_thread(loop, run_expand)).ret
    if request.stream:
        return _stream_response(request, plan, answer)
    return _with_apar(_response(request, plan, answer), answer.stats)


async def _in_thread(loop, fn):
    try:
        return await loop.run_in_executor(None, fn)
    except (BackendError, GenerationError) as exc:
        raise RouteError(500, str(exc)) from exc


class _ServerBackend(Backend):
    """A DSL backend on the server's own tokenizer manager (the program runs in a thread)."""

    def __init__(self, tokenizer_manager, raw_request, loop) -> None:
        super().__init__()
        self.model_path = tokenizer_manager.server_args.model_path
        self._tm, self._raw_request, self._loop = tokenizer_manager, raw_request, loop

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion]:
        return asyncio.run_coroutine_threadsafe(self._all(requests), self._loop).result()

    async def _all(self, requests: Sequence[Request]) -> list[Completion]:
        outs = await asyncio.gather(*(self._one(r) for r in requests), return_exceptions=True)
        for request, out in zip(requests, outs, strict=True):
            if isinstance(out, ValueError):
                raise RouteError(400, f"{request.label}: {out}")
            if isinstance(out, BaseException):
                raise BackendError(f"{request.label}: {out!r}") from out
        return outs

    async def _one(self, request: Request) -> Completion:
        from sglang.srt.managers.io_struct import GenerateReqInput

        obj = GenerateReqInput(text=request.prompt, sampling_params=dict(request.params))
        out = await self._tm.generate_request(obj, self._raw_request).__anext__()
        return Completion(out["text"], out["meta_info"])

    def _tokenizer(self):
        return self._tm.tokenizer


def _response(request, plan: Outline, answer: SkeletonAnswer):
    tokens = answer.stats["answer_tokens"]
    return chat_response(request, answer.text, _finish(answer), plan.meta["prompt_tokens"], tokens)


def _finish(answer: SkeletonAnswer) -> str:
    return "length" if "length" in answer.stats["finish_reasons"] else "stop"


def _stream_response(request, plan: Outline, answer: SkeletonAnswer):
    from fastapi.responses import StreamingResponse

    return StreamingResponse(_events(request, plan, answer), media_type="text/event-stream")


async def _events(request, plan: Outline, answer: SkeletonAnswer) -> AsyncIterator[str]:
    """Role, one content chunk per point in order, the finish chunk with `apar`, usage if
    asked, [DONE]."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk"}
    base |= {"created": int(time.time()), "model": request.model}
    lines = answer.text.split("\n")
    deltas = [{"role": "assistant", "content": ""}] + [
        {"content": line if i == 0 else "\n" + line} for i, line in enumerate(lines)
    ]
    for delta in deltas:
        yield _event(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    final = {"index": 0, "delta": {}, "finish_reason": _finish(answer)}
    yield _event(base | {"choices": [final], "apar": answer.stats})
    if request.stream_options and request.stream_options.include_usage:
        usage = _response(request, plan, answer).usage.model_dump()
        yield _event(base | {"choices": [], "usage": usage, "apar": answer.stats})
    yield "data: [DONE]\n\n"


def _event(body: dict) -> str:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"
