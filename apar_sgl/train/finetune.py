"""CPU fine-tune of an APAR model: LoRA on attention and MLP plus the control-token rows only.

    python -m apar_sgl.train.finetune --corpus runs/apar-corpus.jsonl --out runs/apar-smollm2

Each training input is the chat-templated prompt + a sequence's context + its target + EOS;
the loss covers the target and EOS only, and the context runs without gradient (see
`_backward`). Writes the peft adapter (float16, a few MB), the per-step loss (loss.csv), its
plot (loss.png) and training_record.json into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from apar_sgl.models import DEFAULT_MODEL
from apar_sgl.train.convert import convert_corpus
from apar_sgl.train.corpus import read_jsonl
from apar_sgl.train.filters import clean
from apar_sgl.train.record import StepLog, plot_loss, training_record
from apar_sgl.train.sampling import Sample, length_batches, mix

logger = logging.getLogger(__name__)

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, slots=True)
class FinetuneConfig:
    base: str = DEFAULT_MODEL
    rank: int = 8
    alpha: int = 16
    lr: float = 1e-3
    token_lr_scale: float = 3.0  # the new rows start from the mean embedding: move them faster
    warmup_steps: int = 5
    epochs: int = 1
    max_steps: int | None = None  # cap on optimizer steps; None = all batches of all epochs
    max_minutes: float | None = None  # stop early (recorded) when training takes longer
    max_len: int = 384  # tokens per sequence; longer ones lose the end of their target
    batch_tokens: int = 2048  # tokens per optimizer step (sequences of similar length)
    plain_share: float = 0.5
    children_per_answer: int | None = 3
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.rank < 1 or self.epochs < 1 or self.max_len < 8 or self.batch_tokens < 8:
            raise ValueError("rank, epochs >= 1; max_len, batch_tokens >= 8")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")


class Encoded(NamedTuple):
    input_ids: list[int]
    labels: list[int]  # -100 where no loss


def load_records(corpus: Path) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Usable (prompt, answer) pairs (capped answers trimmed to their last complete line) and
    the count of degenerate answers left out, per reason."""
    return clean(read_jsonl(corpus))


def encode(tokenizer: Any, sample: Sample, max_len: int) -> Encoded | None:
    """Token ids of prompt + context + target + EOS, loss on target + EOS; None if the
    context leaves no room for the target."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": sample.prompt}], tokenize=False, add_generation_prompt=True
    )
    # Pieces are tokenized apart, as at run time: the prompt alone, then generated text.
    head = tokenizer(prompt, add_special_tokens=False).input_ids
    if sample.sequence.context:
        head += tokenizer(sample.sequence.context, add_special_tokens=False).input_ids
    target = tokenizer(sample.sequence.target, add_special_tokens=False).input_ids
    target = target + [tokenizer.eos_token_id]
    if len(head) >= max_len - 1:
        return None
    ids = (head + target)[:max_len]
    return Encoded(ids, [-100] * len(head) + ids[len(head) :])


def build_model(base_dir: str, cfg: FinetuneConfig) -> tuple[Any, Any, tuple[int, int]]:
    """Tokenizer with control tokens, and the peft model with LoRA + trainable token rows."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from apar_sgl.train.shipped import add_control_tokens

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    token_ids = add_control_tokens(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    lora = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=0.0,
        target_modules=list(TARGET_MODULES),
        trainable_token_indices=list(token_ids),
        task_type="CAUSAL_LM",
    )
    return tokenizer, get_peft_model(model, lora), token_ids


def finetune(corpus: Path, out: Path, cfg: FinetuneConfig, base_dir: str | None = None) -> dict:
    """Train, save the adapter, loss log and plot into ``out``; returns the training record."""
    import torch

    from apar_sgl.models import resolve_model

    started = time.perf_counter()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    base_dir = base_dir or resolve_model(cfg.base)
    pairs, degenerate = load_records(corpus)
    converted = convert_corpus(pairs)
    samples, mix_stats = mix(converted.examples, cfg.plain_share, cfg.children_per_answer, cfg.seed)
    tokenizer, model, token_ids = build_model(base_dir, cfg)
    encoded = [e for e in (encode(tokenizer, s, cfg.max_len) for s in samples) if e]
    full_plan = [
        (epoch, batch)
        for epoch in range(cfg.epochs)
        for batch in length_batches(
            [len(e.input_ids) for e in encoded], cfg.batch_tokens, cfg.seed + epoch
        )
    ]
    plan = full_plan[: cfg.max_steps]
    logger.info(
        "%d sequences, %d steps in %d epochs, %d planned",
        len(encoded),
        len(full_plan),
        cfg.epochs,
        len(plan),
    )
    log = _train(model, encoded, plan, cfg, out)
    out.mkdir(parents=True, exist_ok=True)
    _save_adapter(model, out)
    plot_loss(log, out / "loss.png", f"APAR fine-tune of {cfg.base} (CPU, LoRA r={cfg.rank})")
    record = training_record(
        cfg, corpus, base_dir, converted.stats, mix_stats, len(encoded), log, token_ids, len(plan)
    )
    record["degenerate_filtered"] = degenerate
    record["steps_per_epoch"] = len(full_plan) // cfg.epochs
    record["wall_time_s"] = round(time.perf_counter() - started, 1)
    (out / "training_record.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _train(model, encoded, plan, cfg: FinetuneConfig, out: Path) -> list[StepLog]:
    import torch

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    rows = [p for n, p in named if "trainable_tokens" in n]
    params = [p for _, p in named]
    groups = [
        {"params": [p for n, p in named if "trainable_tokens" not in n], "lr": cfg.lr},
        {"params": rows, "lr": cfg.lr * cfg.token_lr_scale},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    total = len(plan)

    def schedule(step: int) -> float:  # linear warm-up, cosine decay to 10%
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    started = time.perf_counter()
    log: list[StepLog] = []
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "loss.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(StepLog._fields)
        for step, (epoch, batch) in enumerate(plan):
            tick = time.perf_counter()
            chosen = [encoded[i] for i in batch]
            target_tokens = sum(len(e.labels) - _head(e) for e in chosen)
            loss_sum = sum(_backward(model, e, target_tokens) for e in chosen)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            entry = StepLog(
                step + 1,
                epoch,
                round(loss_sum / target_tokens, 5),
                scheduler.get_last_lr()[0],
                len(batch),
                target_tokens,
                round(time.perf_counter() - tick, 2),
            )
            log.append(entry)
            writer.writerow(entry)
            handle.flush()
            logger.info("step %d/%d loss %.4f (%.1f s)", step + 1, total, entry.loss, entry.seconds)
            if cfg.max_minutes and time.perf_counter() - started > 60 * cfg.max_minutes:
                logger.warning(
                    "time budget of %s min reached after %d steps", cfg.max_minutes, step + 1
                )
                break
    model.eval()
    return log


def _head(e: Encoded) -> int:
    """Untrained leading tokens (prompt + context); `encode` leaves at least one target."""
    return next(i for i, label in enumerate(e.labels) if label != -100)


def _backward(model, e: Encoded, batch_targets: int) -> float:
    """Accumulate this sequence's share of the batch loss; returns its summed token loss.

    The context (all but its last token) runs without gradient into a KV cache, as a prefix
    cache would at run time: on a CPU this halves the cost of long child contexts, at the
    price of not training how the context itself is encoded (the last context token, which
    predicts the first target token, and the whole target are trained).
    """
    import torch

    split = max(1, _head(e) - 1)
    ids = torch.tensor([e.input_ids])
    with torch.no_grad():
        cache = model(input_ids=ids[:, :split], use_cache=True).past_key_values
    logits = model(input_ids=ids[:, split:], past_key_values=cache, use_cache=False).logits
    # logits at position split + j predict token split + j + 1
    total = torch.nn.functional.cross_entropy(
        logits[0, :-1].float(),
        torch.tensor(e.labels[split + 1 :]),
        ignore_index=-100,
        reduction="sum",
    )
    (total / batch_targets).backward()
    return total.item()


def _save_adapter(model, out: Path) -> None:
    """peft's adapter files with the weights stored as float16 (half the bytes)."""
    import torch
    from safetensors.torch import load_file, save_file

    model.save_pretrained(out, save_embedding_layers=False)
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    weights = out / "adapter_model.safetensors"
    state = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(weights)).items()}
    save_file(state, str(weights), metadata={"format": "pt"})
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = DEFAULT_MODEL
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = FinetuneConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base-dir", default=None, help="HF folder to train (default: --base)")
    for field, value in asdict(defaults).items():
        kind = type(value) if value is not None else (float if "minutes" in field else int)
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=value)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    fields = FinetuneConfig.__dataclass_fields__
    cfg = FinetuneConfig(**{k: v for k, v in vars(args).items() if k in fields})
    record = finetune(args.corpus, args.out, cfg, args.base_dir)
    print(json.dumps({k: record[k] for k in ("steps", "first_loss", "wall_time_s")}))
    print(f"final loss (mean of last 10 steps): {record['final_loss_mean_last_10']}")
    return record


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
