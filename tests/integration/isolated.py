"""Run an SGLang Engine in a fresh process and return its outputs.

SGLang keeps the resolved server arguments in process-wide state (`runtime_context.get_spec()`
and friends), so two Engines with different speculative settings cannot live in one process:
the older one's tokenizer manager starts reading the newer one's settings. Tests that compare
engine configurations run each one here, one after the other.
"""

from __future__ import annotations

import multiprocessing
import queue
from typing import Any

Job = tuple[Any, dict]  # (prompt, a list of prompts, or {"input_ids": ...}; sampling params)
INTERNAL_STATE: Job = ("<internal state>", {})  # a job that returns the scheduler's counters
STATE_KEYS = ("anpd", "avg_spec_accept_length")
TIMEOUT_S = 600


def generate_isolated(model_path: str, engine_kwargs: dict, jobs: list[Job]) -> list[Any]:
    """Start an Engine with `engine_kwargs` in a spawned process, run `jobs` in order."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_run, args=(model_path, engine_kwargs, jobs, results))
    proc.start()
    try:
        status, payload = results.get(timeout=TIMEOUT_S)
    except queue.Empty:
        proc.kill()
        raise RuntimeError(f"engine process gave no result in {TIMEOUT_S} s") from None
    proc.join(timeout=60)
    if status == "error":
        raise RuntimeError(f"engine process failed:\n{payload}")
    return payload


def _run(model_path: str, engine_kwargs: dict, jobs: list[Job], results) -> None:
    import traceback

    try:
        import apar_sgl

        # Tests pin the trees the model writes; the load-aware fork policy has its own tests.
        engine = apar_sgl.Engine(model_path, **{"apar_fork_policy": "always", **engine_kwargs})
        try:
            outputs = [_generate(engine, prompt, params) for prompt, params in jobs]
        finally:
            engine.shutdown()
        results.put(("ok", outputs))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _generate(engine, prompt, params: dict):
    if (prompt, params) == INTERNAL_STATE:
        state = engine.get_server_info()["internal_states"][0]
        return {key: state[key] for key in STATE_KEYS if key in state}
    if isinstance(prompt, dict):
        out = engine.generate(sampling_params=params, **prompt)
    else:
        out = engine.generate(prompt, params)
    return [_plain(o) for o in out] if isinstance(out, list) else _plain(out)


def _plain(output: dict) -> dict:
    """Only picklable, comparable fields."""
    return {
        "text": output["text"],
        "output_ids": list(output["output_ids"]),
        "meta_info": {k: v for k, v in output["meta_info"].items() if _simple(v) or k == "apar"},
    }


def _simple(value) -> bool:
    return value is None or isinstance(value, (int, float, str, bool))
