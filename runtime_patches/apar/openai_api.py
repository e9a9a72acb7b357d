"""The `apar` object of OpenAI-compatible responses: the request's `meta_info["apar"]` stats.

/v1/completions and /v1/chat/completions responses get a top-level `apar` field: the stats
dict for one choice, a list ordered by choice index for several. A stream carries it on every
chunk sent once all its choices have finished: the chunk with the last finish reason and the
usage/extension chunks after it. A request APAR did not handle (opted out with
`custom_params={"apar": false}`, or a model without control tokens) gets no `apar` field.

`usage.completion_tokens` is the length of the joined answer the client receives, as
`meta_info["completion_tokens"]` (fork and forced child tokens and children's final stop
tokens excluded); all tokens the tree generated are `apar.total_tokens`.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from apar_sgl.runtime_patches.apar.stream import APAR_INFO_KEY

logger = logging.getLogger(__name__)


def build_completion_response(result, self, request, ret, created):
    """sglang.srt.entrypoints.openai.serving_completions.OpenAIServingCompletion._build_completion_response"""
    return _with_apar(result, _stats_of(ret))


def build_chat_response(result, self, request, ret, created):
    """sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat._build_chat_response"""
    return _with_apar(result, _stats_of(ret))


def generate_completion_stream(original, self, adapted_request, request, raw_request):
    """sglang.srt.entrypoints.openai.serving_completions.OpenAIServingCompletion._generate_completion_stream"""
    return _stream_with_apar(original, self, adapted_request, request, raw_request)


def generate_chat_stream(original, self, adapted_request, request, raw_request):
    """sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat._generate_chat_stream"""
    return _stream_with_apar(original, self, adapted_request, request, raw_request)


def _stats_of(ret: list[dict]) -> Any:
    """The response's `apar` value: one choice's stats, a list for several, None if absent."""
    stats = [item["meta_info"].get(APAR_INFO_KEY) for item in ret]
    if not any(s is not None for s in stats):
        return None
    return stats[0] if len(stats) == 1 else stats


def _with_apar(response, stats: Any):
    """`response` as its subclass with an `apar` field (an error response passes unchanged)."""
    from pydantic import BaseModel

    if stats is None or not isinstance(response, BaseModel):
        return response
    cls = _apar_model(type(response))
    return cls.model_construct(
        _fields_set={*response.model_fields_set, APAR_INFO_KEY},
        **dict(response),
        apar=stats,
    )


@functools.cache
def _apar_model(base: type) -> type:
    from pydantic import create_model

    return create_model(f"Apar{base.__name__}", __base__=base, apar=(Any, None))


async def _stream_with_apar(original, serving, adapted_request, request, raw_request):
    tap = _StatsTap(serving.tokenizer_manager)
    async for chunk in original(_Serving(serving, tap), adapted_request, request, raw_request):
        stats = tap.final_stats()
        yield chunk if stats is None else _add_to_chunk(chunk, stats)


def _add_to_chunk(chunk: str, stats: Any) -> str:
    """Add `apar` to an SSE `data: {...}` event; other events (`[DONE]`, errors) pass."""
    if not chunk.startswith("data: {"):
        return chunk
    body = json.loads(chunk[len("data: ") :])
    body[APAR_INFO_KEY] = stats
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


class _Serving:
    """The serving object as its stream generator sees it, with the tokenizer manager tapped."""

    def __init__(self, serving, tap: _StatsTap):
        self._serving = serving
        self.tokenizer_manager = tap

    def __getattr__(self, name: str):
        return getattr(self._serving, name)


class _StatsTap:
    """Forwards to the tokenizer manager, recording the APAR stats of finished choices."""

    def __init__(self, tokenizer_manager):
        self._tokenizer_manager = tokenizer_manager
        self._stats: dict[int, Any] = {}
        self._running: set[int] = set()

    def __getattr__(self, name: str):
        return getattr(self._tokenizer_manager, name)

    async def generate_request(self, *args, **kwargs):
        async for content in self._tokenizer_manager.generate_request(*args, **kwargs):
            index = content.get("index", 0)
            meta = content["meta_info"]
            if meta.get("finish_reason") is None:
                self._running.add(index)
            else:
                self._running.discard(index)
                if APAR_INFO_KEY in meta:
                    self._stats[index] = meta[APAR_INFO_KEY]
            yield content

    def final_stats(self) -> Any:
        """The `apar` value once every choice seen has finished, else None."""
        if self._running or not self._stats:
            return None
        ordered = [self._stats.get(i) for i in range(max(self._stats) + 1)]
        return ordered[0] if len(ordered) == 1 else ordered
