"""Run one benchmark mode: start its engine, send the prompts at a fixed concurrency."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from apar_sgl.bench.modes import Mode


@dataclass(slots=True)
class RequestResult:
    mode: str
    concurrency: int
    question_id: int
    text: str
    output_tokens: int
    decode_steps: int
    accept_length: float | None
    latency_s: float
    peak_kv_tokens: int
    apar: dict[str, Any] | None = None


@dataclass(slots=True)
class ModeRun:
    mode: str
    model: str
    concurrency: int
    wall_s: float
    results: list[RequestResult]
    drafter: dict[str, Any] | None = None  # ANPD's counters and step times for the run, if any
    trial: int = 0  # which of the interleaved repeats (`--repeats`) this run belongs to
    dtype: str = "?"  # the dtype the engine resolved (`--dtype auto`: the server's default)


def peak_kv_tokens(meta: dict[str, Any]) -> int:
    """Most KV tokens the request held at once: its tree's peak, else prompt + output."""
    if meta.get("apar"):
        return int(meta["apar"]["peak_kv_tokens"])
    return int(meta["prompt_tokens"]) + int(meta["completion_tokens"])


def decode_steps(meta: dict[str, Any]) -> int:
    """Sequential forward passes this answer took after prefill."""
    if meta.get("apar"):
        return int(meta["apar"]["critical_path_steps"])
    if meta.get("spec_verify_ct"):
        return int(meta["spec_verify_ct"])
    return int(meta["completion_tokens"])


def run_mode(
    engine,
    mode: Mode,
    model: str,
    question_ids: list[int],
    prompts: list[str],
    max_tokens: int,
    concurrency: int,
    trial: int = 0,
) -> ModeRun:
    """Closed loop: `concurrency` requests in flight, the next one sent when one finishes.

    Each answer's latency is its own (send to last token), so a short answer is not charged
    for a long neighbour.
    """
    sampling = {"temperature": 0.0, "max_new_tokens": max_tokens, **mode.sampling_extra}
    results: list[RequestResult | None] = [None] * len(prompts)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int, bar: tqdm) -> None:
        async with slots:
            sent = time.perf_counter()
            out = await engine.async_generate(prompts[i], sampling)
            latency = time.perf_counter() - sent
        meta = out["meta_info"]
        results[i] = RequestResult(
            mode=mode.name,
            concurrency=concurrency,
            question_id=question_ids[i],
            text=out["text"],
            output_tokens=int(meta["completion_tokens"]),
            decode_steps=decode_steps(meta),
            accept_length=meta.get("spec_accept_length"),
            latency_s=latency,
            peak_kv_tokens=peak_kv_tokens(meta),
            apar=meta.get("apar"),
        )
        bar.update(1)

    async def all_requests() -> None:
        desc = f"{mode.name} c={concurrency} trial {trial + 1}"
        with tqdm(total=len(prompts), desc=desc, unit="q") as bar:
            await asyncio.gather(*(one(i, bar) for i in range(len(prompts))))

    started = time.perf_counter()
    engine.loop.run_until_complete(all_requests())  # the loop SGLang's Engine runs on
    wall = time.perf_counter() - started
    info = engine.get_server_info()
    # A router in front of the workers answers without the schedulers' internal states.
    drafter = (info.get("internal_states") or [{}])[0].get("anpd")
    dtype = str(info.get("dtype", "?"))
    return ModeRun(mode.name, model, concurrency, wall, list(results), drafter, trial, dtype)
