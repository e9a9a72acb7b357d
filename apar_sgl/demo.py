"""`python -m apar_sgl.demo` (`make demo`): apar-sgl in one screen, on the embedded models.

Starts two servers (`python -m apar_sgl.launch_server`, default bfloat16): the base
SmolLM2-135M-Instruct with plain decoding, and our APAR fine-tune `apar-smollm2` with ANPD
drafting. Then: (1) one list question answered by both, side by side, with wall time and
decode steps on the critical path; (2) a DSL program whose `fork()` branches run as one batch;
(3) `gen_json` returning a validated pydantic object, one branch per field.
"""

from __future__ import annotations

import concurrent.futures
import textwrap
import time
from typing import Any

import requests
from pydantic import BaseModel, Field

import apar_sgl as apar
from apar_sgl.server_process import ServerProcess

# A list question outside the Vicuna set the bench uses, on which apar-smollm2 forks.
QUESTION = "List four ways to save money on groceries."
MAX_TOKENS = 128
PLAIN = ("plain decoding", "SmolLM2-135M-Instruct", ["--constrained-json-disable-any-whitespace"])
APAR = (
    "APAR + ANPD",
    "apar-smollm2",
    ["--model", "apar-smollm2", "--speculative-algorithm", "ANPD"],
)
COLUMN = 48
# The KV pool is capped in tokens on CPU; a large share keeps SGLang's start-up check from
# counting what the other server (or another job) allocates meanwhile as our weights.
SERVER_ARGS = ["--log-level", "warning", "--mem-fraction-static", "0.8"]


class Contact(BaseModel):
    name: str = Field(max_length=40)
    city: str = Field(max_length=30)
    age: int = Field(ge=0, le=120)


@apar.function
def day_plan(s, city: str, parts: list[str]):
    s += apar.system("You are a concise travel guide.")
    s += apar.user(f"Plan one day in {city}: one activity for each of: {', '.join(parts)}.")
    s += apar.assistant_begin()
    with apar.fork(parts) as branches:  # one batch; every branch reuses the cached prompt
        for b in branches:
            # "- Item:" heads: after "Item: " (trailing space) or "2. Item:" (no item 1
            # before it) this model writes a newline or repeats the list.
            b += f"- {b.item.capitalize()}:" + apar.gen("plan", max_tokens=40, stop="\n")
    # Sees all branches; the regex keeps the model from ending the line at once (it did).
    s += "\nIn short:" + apar.gen("summary", max_tokens=40, regex=r" [A-Z][^\n]*")
    s += apar.assistant_end()


@apar.function
def extract(s, text: str):
    s += apar.system("Extract the requested fields from the text.")
    s += apar.user(text)
    s += apar.assistant_begin()
    s += apar.gen_json("contact", Contact)  # each field in its own constrained branch
    s += apar.assistant_end()


def main() -> None:
    started = time.perf_counter()
    print("apar-sgl: parallel decoding inside one answer, on SGLang, on this CPU\n")
    plain, forked = _start_servers()
    try:
        print(f"\n[1/3] {APAR[0]} vs {PLAIN[0]}: the APAR model forks its own list answer")
        _side_by_side(plain.url, forked.url)
        print("\n[2/3] DSL: a fork() block's branches go to SGLang as one batch on a shared prefix")
        _fork_program(plain.url)
        print("\n[3/3] Parallel JSON: gen_json fills each field of a pydantic model in parallel")
        _parallel_json(plain.url)
    finally:
        plain.stop()
        forked.stop()
    print(f"\ndemo done in {time.perf_counter() - started:.0f} s")


def _start_servers() -> tuple[ServerProcess, ServerProcess]:
    """Both servers start at once; one line as each is ready."""
    started = time.perf_counter()
    configs = [PLAIN, APAR]
    print("starting two servers (default bfloat16; first run converts the models once) ...")
    with concurrent.futures.ThreadPoolExecutor(len(configs)) as pool:
        futures = {
            pool.submit(ServerProcess, [*SERVER_ARGS, *args], timeout_s=1800): (f"{model} ({what})")
            for what, model, args in configs
        }
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
                print(f"  ready: {futures[future]} after {time.perf_counter() - started:.0f} s")
        except BaseException:
            for future in futures:
                if not future.cancel() and future.exception() is None:
                    future.result().stop()
            raise
    plain, forked = (future.result() for future in futures)
    return plain, forked


def _side_by_side(plain_url: str, apar_url: str) -> None:
    runs = [_answer(plain_url), _answer(apar_url)]
    print(f"Q: {QUESTION} (greedy, at most {MAX_TOKENS} tokens, one request at a time)\n")
    columns = [textwrap.wrap(run["text"].replace("\n", " / "), COLUMN) for run in runs]
    print(f"{PLAIN[0] + ', ' + PLAIN[1]:<{COLUMN}} | {APAR[0] + ', ' + APAR[1]}")
    for i in range(max(len(c) for c in columns)):
        left, right = (c[i] if i < len(c) else "" for c in columns)
        print(f"{left:<{COLUMN}} | {right}")
    print()
    rows = [
        ("answer tokens", "tokens"),
        ("branches", "branches"),
        ("decode steps on the critical path", "steps"),
        ("wall time, s", "wall_s"),
        ("ms per answer token", "ms_per_token"),
    ]
    for label, key in rows:
        print(f"{label:<36}{runs[0][key]:>12}{runs[1][key]:>12}")
    speedup = runs[0]["ms_per_token"] / runs[1]["ms_per_token"]
    steps = (runs[0]["steps"] / runs[0]["tokens"]) / (runs[1]["steps"] / runs[1]["tokens"])
    print(
        f"=> {speedup:.2f}x faster per answer token, {steps:.2f}x fewer decode steps per token "
        "(the answers differ: different models)"
    )


def _answer(url: str) -> dict[str, Any]:
    info = requests.get(url + "/get_model_info", timeout=60).json()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(info["tokenizer_path"])
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True
    )
    _generate(url, prompt, 8)  # warm-up: first-request costs and ANPD's step timing
    sent = time.perf_counter()
    out = _generate(url, prompt, MAX_TOKENS)
    wall = time.perf_counter() - sent
    meta = out["meta_info"]
    tree = meta.get("apar") or {}
    tokens = int(meta["completion_tokens"])
    return {
        "text": out["text"].strip(),
        "tokens": tokens,
        "branches": tree.get("branches", 1),
        "steps": int(tree.get("critical_path_steps", meta.get("spec_verify_ct") or tokens)),
        "wall_s": round(wall, 1),
        "ms_per_token": round(1000 * wall / max(1, tokens), 1),
    }


def _generate(url: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    body = {"text": prompt, "sampling_params": {"max_new_tokens": max_tokens, "temperature": 0}}
    res = requests.post(url + "/generate", json=body, timeout=600)
    res.raise_for_status()
    return res.json()


def _fork_program(url: str) -> None:
    sent = time.perf_counter()
    state = day_plan.run(city="Lisbon", parts=["morning", "afternoon", "evening"], backend=url)
    wall = time.perf_counter() - sent
    for b in state.branches:
        meta = b.meta("plan")
        print(
            f"  {b.index + 1}. {b.item.capitalize()}: {b['plan'].strip()}\n"
            f"     (prompt {meta['prompt_tokens']} tokens, {meta['cached_tokens']} from the "
            "radix cache)"
        )
    print(f"  In short: {state['summary'].strip()}\n  ({wall:.1f} s for the program)")


def _parallel_json(url: str) -> None:
    text = "Maria Lopes is 34 and lives in Porto, where she works as a doctor."
    sent = time.perf_counter()
    state = extract.run(text, backend=url)
    wall = time.perf_counter() - sent
    contact = state["contact"]
    branches = state.meta("contact")
    print(f"  text: {text}\n  {contact!r}  (a validated {type(contact).__name__})")
    print(f"  {len(branches)} branches, {wall:.1f} s")


if __name__ == "__main__":
    main()
