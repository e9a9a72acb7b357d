"""`--url`: a running server (apar-sgl's or plain SGLang's) in the place of a bench engine.

It offers what `runner.run_mode` uses of SGLang's Engine (`async_generate`, `loop`,
`get_server_info`) over SGLang's native HTTP routes, so the same closed loop, counters and
report apply to any endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import requests

logger = logging.getLogger(__name__)


class Endpoint:
    """A server at `url`; requests go to its `/generate`, one thread per request in flight."""

    def __init__(self, url: str, timeout_s: float = 1800) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        info = self._get("/get_model_info")
        self.model_path: str = info["model_path"]
        self.tokenizer_path: str = info.get("tokenizer_path") or self.model_path
        self.loop = asyncio.new_event_loop()

    async def async_generate(self, prompt: str, sampling: dict[str, Any]) -> dict[str, Any]:
        body = {"text": prompt, "sampling_params": sampling}
        return await asyncio.to_thread(self._post, "/generate", body)

    def flushed(self) -> Endpoint:
        """This endpoint with SGLang's radix cache flushed: no run reuses an earlier run's KV."""
        res = requests.post(self.url + "/flush_cache", timeout=60)
        if res.status_code != 200:
            logger.warning("%s did not flush its cache: %s", self.url, res.text[:200])
        return self

    def get_server_info(self) -> dict[str, Any]:
        return self._get("/get_server_info")

    def shutdown(self) -> None:
        """Nothing to stop: the server is not ours, and the next run reuses the loop."""
        logger.debug("%r: left running", self)

    def _get(self, route: str) -> Any:
        res = requests.get(self.url + route, timeout=60)
        res.raise_for_status()
        return res.json()

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        res = requests.post(self.url + route, json=body, timeout=self.timeout_s)
        if res.status_code != 200:
            raise RuntimeError(f"POST {self.url}{route} -> {res.status_code}: {res.text[:300]}")
        return res.json()

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r}, model={self.model_path!r})"
