"""Cache folders built once: under a file lock, atomically, user-only, with a manifest.

Used for the converted embedded model (`apar_sgl.models`) and merged shipped adapters
(`apar_sgl.train.shipped`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from apar_sgl import env

logger = logging.getLogger(__name__)


class ModelNotAvailableError(RuntimeError):
    """An embedded model cannot be prepared (wheel missing, conversion failed)."""


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
