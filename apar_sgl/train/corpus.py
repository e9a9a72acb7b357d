"""Self-distillation corpus: SmolLM2's own greedy answers to the training prompts, as JSONL.

    python -m apar_sgl.train.corpus --out apar_sgl/train/data/corpus-v2.jsonl

The teacher sees a system prompt asking for the prompt's answer style (`prompts.
SYSTEM_PROMPTS`); the record keeps only the user prompt. Requests run ``--concurrency`` at a
time and each answer is appended as soon as it is done, so a stopped run leaves a usable
corpus and a re-run with the same ``--out`` continues with the prompts not answered yet.

One JSON object a line: ``prompt``, ``structured`` (the prompt invites a list or
paragraphs), ``answer``, ``finish_reason`` (``stop`` or ``length``), ``completion_tokens``,
``kind`` (question type) and ``style`` (what the teacher was asked for).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from apar_sgl.models import DEFAULT_MODEL
from apar_sgl.train.prompts import PROMPTS, Prompt, generation_order, system_prompt

logger = logging.getLogger(__name__)


class CorpusRecord(NamedTuple):
    prompt: str
    structured: bool
    answer: str
    finish_reason: str
    completion_tokens: int
    kind: str = ""  # empty in corpora written before question types existed
    style: str = ""


def write_jsonl(records: Iterable[CorpusRecord], path: Path, append: bool = False) -> int:
    """Write records one JSON object a line; returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "a" if append else "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record._asdict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[CorpusRecord]:
    """Records written by `write_jsonl`, in file order; a torn last line is skipped."""
    with open(path, encoding="utf-8") as src:
        for line in src:
            if not line.strip():
                continue
            try:
                yield CorpusRecord(**json.loads(line))
            except json.JSONDecodeError:
                logger.warning("skipping a torn line in %s", path)


def finish_reason(meta: dict) -> str:
    """`stop` or `length` from SGLang's meta_info (its finish_reason is a dict or None)."""
    reason = meta.get("finish_reason")
    if isinstance(reason, dict):
        return str(reason.get("type", "unknown"))
    return str(reason) if reason else "unknown"


def remaining(prompts: Sequence[Prompt], done: Iterable[CorpusRecord]) -> list[Prompt]:
    """Prompts without an answer in ``done`` yet, in their order: what a re-run still asks."""
    answered = {record.prompt for record in done}
    return [p for p in prompts if p.text not in answered]


def chat_text(tokenizer, prompt: Prompt) -> str:
    """The teacher's input: the style's system prompt, then the user prompt."""
    messages = [
        {"role": "system", "content": system_prompt(prompt)},
        {"role": "user", "content": prompt.text},
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate(
    prompts: list[Prompt],
    model: str,
    max_new_tokens: int,
    concurrency: int,
    dtype: str,
    max_total_tokens: int | None = None,
) -> Iterator[CorpusRecord]:
    """Greedy answers from one engine, ``concurrency`` requests in flight, in finish order."""
    from tqdm import tqdm
    from transformers import AutoTokenizer

    import apar_sgl
    from apar_sgl.models import resolve_model

    path = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    sampling = {"temperature": 0.0, "max_new_tokens": max_new_tokens}
    kv = {"max_total_tokens": max_total_tokens} if max_total_tokens else {}
    engine = apar_sgl.Engine(path, dtype=dtype, random_seed=0, **kv)
    done: asyncio.Queue[CorpusRecord] = asyncio.Queue()
    gate = asyncio.Semaphore(concurrency)

    async def answer(prompt: Prompt) -> None:
        async with gate:
            out = await engine.async_generate(chat_text(tokenizer, prompt), sampling)
        meta = out["meta_info"]
        await done.put(
            CorpusRecord(
                prompt.text,
                prompt.structured,
                out["text"],
                finish_reason(meta),
                int(meta["completion_tokens"]),
                prompt.kind,
                prompt.style,
            )
        )

    async def start() -> list[asyncio.Task]:
        return [asyncio.ensure_future(answer(p)) for p in prompts]

    try:
        tasks = engine.loop.run_until_complete(start())
        for _ in tqdm(range(len(tasks)), desc="corpus", unit="answer", mininterval=30):
            yield engine.loop.run_until_complete(done.get())
    finally:
        engine.shutdown()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSONL file, appended to")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument(
        "--max-total-tokens", type=int, default=8192, help="KV pool size (less memory)"
    )
    parser.add_argument("--seed", type=int, default=0, help="order of the prompts")
    parser.add_argument("--limit", type=int, default=None, help="first N prompts only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    ordered = generation_order(PROMPTS, args.seed)[: args.limit]
    prompts = remaining(ordered, read_jsonl(args.out)) if args.out.exists() else ordered
    logger.info("%d of %d prompts left to answer", len(prompts), len(ordered))
    started = time.perf_counter()
    count = capped = tokens = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as out:
        answers = generate(
            prompts,
            args.model,
            args.max_new_tokens,
            args.concurrency,
            args.dtype,
            args.max_total_tokens,
        )
        for record in answers if prompts else ():
            out.write(json.dumps(record._asdict(), ensure_ascii=False) + "\n")
            out.flush()  # a killed run loses at most the answers in flight
            count += 1
            capped += record.finish_reason == "length"
            tokens += record.completion_tokens
    seconds = time.perf_counter() - started
    print(
        f"wrote {count} answers ({tokens} tokens, {capped} hit max_new_tokens) to {args.out} "
        f"in {seconds:.0f} s"
    )
    return args.out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
