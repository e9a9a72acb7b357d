"""Checks that turn SGLang's late, long failures into one-line errors before start-up."""

from __future__ import annotations

import errno
import socket
from pathlib import Path


class PreflightError(ValueError):
    """Bad input caught before SGLang starts."""


def check_model_path(model_path: str) -> None:
    """A path-like model must exist: SGLang would otherwise try a model hub and time out."""
    looks_like_path = model_path.startswith(("/", "./", "../", "~")) or Path(model_path).exists()
    path = Path(model_path).expanduser()
    if looks_like_path and not (path / "config.json").is_file():
        reason = "no such folder" if not path.exists() else "no config.json in it"
        raise PreflightError(f"model path {model_path!r} is not a model folder ({reason})")


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PreflightError(f"port {port} on {host} is already in use") from None
            raise PreflightError(f"cannot bind {host}:{port}: {exc.strerror}") from None
