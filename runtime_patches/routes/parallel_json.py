"""Field-parallel JSON on /v1/chat/completions, opted into with `"apar_parallel_json": true`.

A chat request with `response_format={"type": "json_schema", ...}` and the flag at the top of
its body (or `"x-apar-parallel-json": true` at the top of its schema, which survives proxies
such as sglang-router that rebuild the body from OpenAI's fields) is answered with ONE JSON
document whose leaves are generated in parallel branches on the shared chat prompt, through the
DSL's planner and step (`gen_json`, `split_schema`, `generate_json`). Without the flag the
request goes to SGLang untouched.

`max_completion_tokens` / `max_tokens` cap each leaf branch (default: each leaf's budget follows
from its bound, see `apar_sgl.dsl.leaf_bounds`); the temperature defaults to 0. Errors, never
a partial document: an invalid or unsupported schema, streaming or n > 1 get 400 before any
generation (schema errors start with the JSON pointer); a branch that cannot finish gets 422
naming its property path; a branch the engine rejects gets the engine's status and the
branch's pointer.

Caps on client input, each a 400 naming the JSON pointer where it was crossed: the schema's
size, depth and pattern length (`apar_sgl.dsl.schema_walk`: 20,000 values, 64 levels,
1,000 characters) and its branches
(`--apar-max-json-branches`, default 64). The schema is checked and split in a worker thread,
so a large schema never stalls the event loop that serves other clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from apar_sgl.dsl.backend import Completion, Request
from apar_sgl.dsl.json_gen import BranchError, JsonResult, generate_json
from apar_sgl.dsl.ops import DslError, GenJson, gen_json
from apar_sgl.dsl.run import GenerationError
from apar_sgl.dsl.schema_limits import plan_untrusted
from apar_sgl.dsl.schema_split import SchemaPlan
from apar_sgl.runtime_patches.routes.chat_response import chat_response

from apar_sgl.config import apar_args_of

logger = logging.getLogger(__name__)

FLAG = "apar_parallel_json"
SCHEMA_FLAG = "x-apar-parallel-json"  # the same opt-in as a schema extension keyword
_NAME = "response"


class ParallelJsonError(Exception):
    """A parallel-JSON request failed; becomes an OpenAI error response with ``status``."""

    def __init__(self, status: int, err_type: str, message: str) -> None:
        self.status, self.err_type = status, err_type
        super().__init__(message)


async def handle_chat_request(original, self, request, raw_request):
    """sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat.handle_request"""
    try:
        if raw_request is None or not await _opted_in(raw_request):
            return await original(self, request, raw_request)
        return await _parallel_json(self, request, raw_request)
    except ParallelJsonError as exc:
        logger.info("parallel JSON request failed (%d): %s", exc.status, exc)
        return self.create_error_response(str(exc), exc.err_type, exc.status)
    except ValueError as exc:  # from SGLang's request conversion, as its handler maps it
        return self.create_error_response(str(exc), "BadRequest", 400)


async def _opted_in(raw_request) -> bool:
    try:
        body = await raw_request.json()
    except ValueError:
        return False  # SGLang already parsed it; let the original handler answer
    if not isinstance(body, dict):
        return False
    flag = body.get(FLAG, False)
    if not isinstance(flag, bool):
        raise _bad(f"{FLAG} must be a boolean, got {flag!r}")
    in_schema = _schema_of(body).get(SCHEMA_FLAG, False)
    if not isinstance(in_schema, bool):
        raise _bad(f"response_format.json_schema.schema/{SCHEMA_FLAG} must be a boolean")
    return flag or in_schema


def _schema_of(body: dict) -> dict:
    """The raw body's JSON schema, or {} where it has none."""
    fmt = body.get("response_format")
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) else {}


async def _parallel_json(serving, request, raw_request):
    loop = asyncio.get_running_loop()
    max_branches = apar_args_of(serving.tokenizer_manager.server_args).apar_max_json_branches
    expr, plan = await loop.run_in_executor(None, plan_request, request, max_branches)
    adapted, _ = await loop.run_in_executor(
        None, serving._convert_to_internal_request, request, raw_request
    )
    if any(getattr(adapted, key) for key in ("image_data", "video_data", "audio_data")):
        raise _bad(f"{FLAG} supports text-only messages")
    tokenizer = serving.tokenizer_manager.tokenizer
    ids = adapted.input_ids if adapted.input_ids is not None else tokenizer.encode(adapted.text)
    sender = _BranchSender(serving.tokenizer_manager, raw_request, list(ids))
    step = generate_json(plan, expr, sender.prefix, _NAME)
    try:
        requests = next(step)
        while True:
            requests = step.send(await sender.generate(requests))
    except StopIteration as done:
        result: JsonResult = done.value
    except BranchError as exc:
        raise ParallelJsonError(422, "UnprocessableEntity", str(exc)) from exc
    except GenerationError as exc:
        raise ParallelJsonError(500, "InternalServerError", str(exc)) from exc
    return _response(request, plan, result, len(ids))


def plan_request(request, max_branches: int) -> tuple[GenJson, SchemaPlan]:
    """The request's gen_json expression and plan; 400 (before generation) if not servable."""
    if request.stream:
        raise _bad(f"{FLAG} does not support stream=true")
    if request.n != 1:
        raise _bad(f"{FLAG} supports n=1 only, got n={request.n}")
    fmt = request.response_format
    if fmt is None or getattr(fmt, "type", None) != "json_schema" or fmt.json_schema is None:
        raise _bad(f"{FLAG} needs response_format of type json_schema")
    schema = fmt.json_schema.schema_
    if not isinstance(schema, dict):
        raise _bad(f"{FLAG}: response_format.json_schema.schema is missing")
    schema = {key: value for key, value in schema.items() if key != SCHEMA_FLAG}
    max_tokens = request.max_completion_tokens or request.max_tokens
    temperature = 0.0 if request.temperature is None else request.temperature
    try:
        plan = plan_untrusted(schema, max_branches=max_branches)
        expr = gen_json(_NAME, schema, temperature=temperature, max_tokens=max_tokens)
    except (ValueError, DslError) as exc:  # SchemaSplitError is a ValueError
        raise _bad(f"{FLAG}: response_format.json_schema.schema {exc}") from exc
    return expr, plan


class _BranchSender:
    """Sends one DSL batch to the in-process tokenizer manager, each branch its own request.

    Branch prompts are the chat prompt's token ids plus the tokenized hint after it, so every
    branch shares the prompt's exact tokens in the radix cache.
    """

    def __init__(self, tokenizer_manager, raw_request, prefix_ids: list[int]) -> None:
        self._tm = tokenizer_manager
        self._raw_request = raw_request
        self._prefix_ids = prefix_ids
        self.prefix = tokenizer_manager.tokenizer.decode(prefix_ids)

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        outs = await asyncio.gather(*(self._one(r) for r in requests), return_exceptions=True)
        for request, out in zip(requests, outs, strict=True):
            if isinstance(out, BaseException):
                raise _rejected(request, out)
        return outs

    async def _one(self, request: Request) -> Completion:
        from sglang.srt.managers.io_struct import GenerateReqInput

        tail = request.prompt[len(self.prefix) :]
        tail_ids = self._tm.tokenizer.encode(tail, add_special_tokens=False) if tail else []
        obj = GenerateReqInput(
            input_ids=self._prefix_ids + tail_ids, sampling_params=dict(request.params)
        )
        out = await self._tm.generate_request(obj, self._raw_request).__anext__()
        return Completion(out["text"], out["meta_info"])


def _rejected(request: Request, exc: BaseException) -> ParallelJsonError:
    where = f"branch {request.label}"
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ValueError):
        return ParallelJsonError(400, "BadRequest", f"{where}: {exc}")
    if isinstance(status, int) and 400 <= status < 600:
        return ParallelJsonError(status, "BadRequest", f"{where}: {getattr(exc, 'detail', exc)}")
    logger.error("%s failed", where, exc_info=exc)
    return ParallelJsonError(500, "InternalServerError", f"{where}: {exc!r}")


def _response(request, plan: SchemaPlan, result: JsonResult, prompt_tokens: int):
    completion_tokens = sum(m["completion_tokens"] for m in result.metas.values())
    steps = sum(
        max(result.metas[b.pointer]["completion_tokens"] for b in stage) for stage in plan.stages
    )
    metadata = {
        "weight_version": next(iter(result.metas.values()), {}).get("weight_version"),
        FLAG: {"branches": len(plan.branches), "stages": len(plan.stages), "decode_steps": steps},
    }
    return chat_response(
        request, json.dumps(result.obj), "stop", prompt_tokens, completion_tokens, metadata
    )


def _bad(message: str) -> ParallelJsonError:
    return ParallelJsonError(400, "BadRequest", message)
