"""Fine-tuned models shipped in the repo as small adapters, merged into their base on first use.

An adapter folder (under `apar_sgl/train/adapters/<name>/`) holds a peft LoRA adapter whose
`trainable_token_indices` rows are the APAR control tokens. `prepare(name, resolve_model)` adds
those tokens to the base tokenizer, grows the embedding matrix, writes the LoRA products and
the token rows into the weights and saves a plain HF folder into the cache, once
(`model_cache.build_once`). The merge reads the safetensors directly: serving needs neither
peft nor training code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from apar_sgl import env
from apar_sgl.model_cache import build_once, trusted
from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN

logger = logging.getLogger(__name__)

ADAPTERS_DIR = Path(__file__).parent / "adapters"
CONTROL_TOKENS = (FORK_TOKEN, CHILD_TOKEN)
_PEFT_PREFIX = "base_model.model."
_TOKEN_ROWS_SUFFIX = ".token_adapter.trainable_tokens_delta"


class ShippedModel(NamedTuple):
    name: str
    base: str  # a name `apar_sgl.models.resolve_model` knows
    adapter_dir: Path


SHIPPED = {
    "apar-smollm2": ShippedModel(
        "apar-smollm2", "smollm2-135m-instruct", ADAPTERS_DIR / "apar-smollm2"
    ),
}


class AdapterFormatError(ValueError):
    """An adapter folder does not hold what the merge expects."""


def add_control_tokens(tokenizer: Any) -> tuple[int, int]:
    """Add [Fork] and [Child] as special tokens unless present; return their ids."""
    missing = [t for t in CONTROL_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens(
            {"extra_special_tokens": missing}, replace_extra_special_tokens=False
        )
    fork_id, child_id = tokenizer.convert_tokens_to_ids(list(CONTROL_TOKENS))
    return fork_id, child_id


def prepare(name: str, resolve_model: Callable[[str], str]) -> Path:
    """The merged HF folder of shipped model ``name`` in the cache, built once.

    `resolve_model` (`apar_sgl.models.resolve_model`) gives the base model's folder.
    """
    try:
        model = SHIPPED[name]
    except KeyError:
        raise KeyError(f"unknown shipped model {name!r}; known: {sorted(SHIPPED)}") from None
    weights = model.adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: the {name!r} adapter is not shipped")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    target = env.cache_dir() / "models" / f"{name}-{digest}"
    if trusted(target):
        return target
    base_dir = Path(resolve_model(model.base))
    logger.info("merging %s into %s -> %s (once)", model.adapter_dir, base_dir, target)
    return build_once(target, lambda staging: merge_adapter(base_dir, model.adapter_dir, staging))


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """Write base + LoRA + control-token rows as a plain float32 HF folder into ``out_dir``."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    state = load_file(str(adapter_dir / "adapter_model.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    token_ids = list(add_control_tokens(tokenizer))
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        merge_state(model, state, config, token_ids)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def merge_state(model: Any, state: dict, config: dict, token_ids: list[int]) -> int:
    """Add ``scaling * B @ A`` to each LoRA target, copy in the token rows; returns the
    number of LoRA pairs merged."""
    params = dict(model.named_parameters())
    scaling = config["lora_alpha"] / config["r"]
    indices = _token_indices(config)
    if sorted(indices) != sorted(token_ids):
        raise AdapterFormatError(
            f"adapter trains token rows {indices} but the tokenizer's control tokens are "
            f"{token_ids}"
        )
    merged = 0
    for key, a in state.items():
        if key.endswith(".lora_A.weight"):
            module = _strip(key, ".lora_A.weight")
            b = state[key.replace(".lora_A.", ".lora_B.")]
            weight = params[f"{module}.weight"]
            weight += scaling * (b.to(weight) @ a.to(weight))
            merged += 1
        elif key.endswith(_TOKEN_ROWS_SUFFIX):
            module = _strip(key, _TOKEN_ROWS_SUFFIX)
            weight = params[f"{module}.weight"]
            weight[indices] = state[key].to(weight)
    if merged == 0:
        raise AdapterFormatError("adapter holds no LoRA weights")
    return merged


def _token_indices(config: dict) -> list[int]:
    value = config.get("trainable_token_indices")
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    if not value:
        raise AdapterFormatError("adapter_config.json has no trainable_token_indices")
    return [int(i) for i in value]


def _strip(key: str, suffix: str) -> str:
    if not key.startswith(_PEFT_PREFIX):
        raise AdapterFormatError(f"unexpected adapter key {key!r}")
    return key[len(_PEFT_PREFIX) : -len(suffix)]
