"""The model cache: user-only folders, a lock never opened through a symlink, and a folder that
is incomplete or not ours rebuilt rather than trusted."""

from __future__ import annotations

import os
import stat

import pytest

from apar_sgl.model_cache import ModelNotAvailableError, build_once, trusted


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("APAR_CACHE_DIR", str(root))
    return root


def _counting_build():
    calls = []

    def build(staging):
        calls.append(staging)
        (staging / "config.json").write_text("{}")
        (staging / "model.safetensors").write_bytes(b"x" * 64)

    return build, calls


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_built_folder_and_cache_root_are_user_only_and_trusted(cache):
    build, calls = _counting_build()
    target = build_once(cache / "models" / "m", build)
    assert trusted(target) and len(calls) == 1
    assert _mode(cache) == _mode(cache / "models") == _mode(target) == 0o700
    assert build_once(target, build) == target and len(calls) == 1  # built once


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: (t / "model.safetensors").write_bytes(b"x"),  # truncated
        lambda t: (t / "model.safetensors").unlink(),  # a file missing
        lambda t: (t / ".apar-complete").unlink(),  # never finished (or an older layout)
        lambda t: t.chmod(0o777),  # others could have changed it
    ],
)
def test_damaged_or_foreign_folder_is_rebuilt(cache, damage):
    build, calls = _counting_build()
    target = build_once(cache / "models" / "m", build)
    damage(target)
    assert not trusted(target)
    build_once(target, build)
    assert len(calls) == 2 and trusted(target)


def test_symlinked_target_is_replaced_and_what_it_pointed_to_is_untouched(cache, tmp_path):
    build, calls = _counting_build()
    elsewhere = build_once(tmp_path / "cache" / "models" / "real", build)
    link = cache / "models" / "m"
    link.symlink_to(elsewhere)
    assert not trusted(link)
    build_once(link, build)
    assert not link.is_symlink() and trusted(link) and trusted(elsewhere)


def test_lock_file_is_not_followed_through_a_symlink(cache, tmp_path):
    (cache / "models").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, cache / "models" / ".m.lock")
    with pytest.raises(ModelNotAvailableError, match="lock file"):
        build_once(cache / "models" / "m", _counting_build()[0])
    assert victim.read_text() == "keep"
