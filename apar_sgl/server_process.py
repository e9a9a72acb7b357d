"""Run `python -m apar_sgl.launch_server` as a child process: for the demo, tests and scripts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_group_alive(pgid: int) -> bool:
    """Whether any process of process group `pgid` still runs (signal 0: nothing is sent)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class ServerProcess:
    """A launched server; `stop()` ends its whole process group."""

    def __init__(
        self,
        args: Sequence[str],
        port: int | None = None,
        timeout_s: float = 300,
        capture: bool = True,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A file, not a pipe: an unread pipe would block a chatty server.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="apar-server-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "apar_sgl.launch_server", "--port", str(self.port), *args],
            stdout=self.log if capture else None,
            stderr=subprocess.STDOUT if capture else None,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        if wait:
            try:
                self.wait_ready(timeout_s)
            except BaseException:
                self.stop()
                raise

    def wait_ready(self, timeout_s: float) -> None:
        """Block until /health answers 200; raise if the server exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                log = self.log.read()[-4000:]
                raise RuntimeError(f"server exited with code {self.proc.returncode}\n{log}")
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(1)
        raise TimeoutError(f"server not ready in {timeout_s} s")

    def log_text(self) -> str:
        """Everything the server printed so far (when started with `capture=True`)."""
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
