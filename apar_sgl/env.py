"""Environment variables apar-sgl reads, declared once and typed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

PlatformMode = Literal["auto", "cpu", "off"]


def platform_mode() -> PlatformMode:
    """APAR_PLATFORM: `auto` (CPU platform only when no CUDA device), `cpu` (force), `off`."""
    value = os.environ.get("APAR_PLATFORM", "auto").strip().lower()
    if value not in ("auto", "cpu", "off"):
        raise ValueError(f"APAR_PLATFORM must be one of auto, cpu, off; got {value!r}")
    return value  # type: ignore[return-value]


def cache_dir() -> Path:
    """APAR_CACHE_DIR, else $XDG_CACHE_HOME/apar-sgl, else ~/.cache/apar-sgl."""
    explicit = os.environ.get("APAR_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "apar-sgl"


def default_backend_url() -> str | None:
    """APAR_BACKEND: a server URL DSL programs use by default instead of an embedded engine."""
    return os.environ.get("APAR_BACKEND") or None


def test_fault() -> str | None:
    """APAR_TEST_FAULT: make one apar code path fail (`spawn`: starting an APAR child raises;
    `reject`: every APAR child is rejected as SGLang rejects an over-long request;
    `draft`: every ANPD drafting step raises).

    For tests that prove a failure inside the scheduler ends only its own requests.
    """
    return os.environ.get("APAR_TEST_FAULT") or None
