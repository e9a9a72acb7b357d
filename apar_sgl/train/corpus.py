"""Self-distillation corpus: SmolLM2's own greedy answers to the training prompts, as JSONL.

    python -m apar_sgl.train.corpus --out runs/apar-corpus.jsonl

Prompts go structured and plain interleaved, and each wave is appended as soon as it is done,
so a run stopped early still leaves a usable, mixed corpus.

One JSON object a line: ``prompt``, ``structured`` (the prompt invites a list), ``answer``,
``finish_reason`` (``stop`` or ``length``) and ``completion_tokens``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from apar_sgl.models import DEFAULT_MODEL
from apar_sgl.train.prompts import PROMPTS, Prompt

logger = logging.getLogger(__name__)


class CorpusRecord(NamedTuple):
    prompt: str
    structured: bool
    answer: str
    finish_reason: str
    completion_tokens: int


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
    """Records written by `write_jsonl`, in file order."""
    with open(path, encoding="utf-8") as src:
        for line in src:
            if line.strip():
                yield CorpusRecord(**json.loads(line))


def finish_reason(meta: dict) -> str:
    """`stop` or `length` from SGLang's meta_info (its finish_reason is a dict or None)."""
    reason = meta.get("finish_reason")
    if isinstance(reason, dict):
        return str(reason.get("type", "unknown"))
    return str(reason) if reason else "unknown"


def interleave(prompts: Sequence[Prompt]) -> list[Prompt]:
    """Structured and plain prompts spread evenly, so any prefix of the run has both kinds."""
    structured = [p for p in prompts if p.structured]
    plain = [p for p in prompts if not p.structured]
    keyed = [((i + 0.5) / len(structured), 0, p) for i, p in enumerate(structured)]
    keyed += [((i + 0.5) / len(plain), 1, p) for i, p in enumerate(plain)]
    return [p for _, _, p in sorted(keyed, key=lambda k: (k[0], k[1]))]


def generate(
    prompts: list[Prompt], model: str, max_new_tokens: int, wave: int, dtype: str
) -> Iterator[list[CorpusRecord]]:
    """Greedy answers to ``prompts`` from one engine, yielded per wave of ``wave`` prompts."""
    from tqdm import tqdm
    from transformers import AutoTokenizer

    import apar_sgl
    from apar_sgl.models import resolve_model

    path = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p.text}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]
    sampling = {"temperature": 0.0, "max_new_tokens": max_new_tokens}
    engine = apar_sgl.Engine(path, dtype=dtype, random_seed=0)
    try:
        with tqdm(total=len(texts), desc="corpus", unit="prompt") as bar:
            for start in range(0, len(texts), wave):
                outputs = engine.generate(texts[start : start + wave], sampling)
                yield [
                    CorpusRecord(
                        prompt.text,
                        prompt.structured,
                        out["text"],
                        finish_reason(out["meta_info"]),
                        int(out["meta_info"]["completion_tokens"]),
                    )
                    for prompt, out in zip(prompts[start : start + wave], outputs, strict=True)
                ]
                bar.update(len(outputs))
    finally:
        engine.shutdown()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--wave", type=int, default=32, help="prompts per generate call")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--limit", type=int, default=None, help="first N prompts only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    ordered = interleave(PROMPTS)
    prompts = ordered[: args.limit] if args.limit else ordered
    started = time.perf_counter()
    write_jsonl([], args.out)
    count = capped = 0
    for wave in generate(prompts, args.model, args.max_new_tokens, args.wave, args.dtype):
        count += write_jsonl(wave, args.out, append=True)  # a partial run leaves whole waves
        capped += sum(r.finish_reason == "length" for r in wave)
    print(
        f"wrote {count} answers to {args.out} in {time.perf_counter() - started:.0f} s "
        f"({capped} hit max_new_tokens)"
    )
    return args.out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
