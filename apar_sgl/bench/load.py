"""`python -m apar_sgl.bench.load`: many clients at once against one server, then a leak check.

N client threads (default 32) send, for a bounded time, a mix of plain, streaming, forking,
closed-early streaming and parallel-JSON requests (with `--speculative-algorithm ANPD` on
the server, every one is drafted too). Reports requests/s, p50/p99 latency and errors by
kind; then waits for the server to go idle and reads what must be back to zero: running and
queued requests, live APAR trees and branches, live ANPD tables. Without `--url` it starts
`apar_sgl.launch_server --model-path apar-smollm2 --speculative-algorithm ANPD` itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

KINDS = ("plain", "stream", "fork", "closed-stream", "json")
JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 8},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
    },
    "required": ["title", "year"],
}


@dataclass(slots=True)
class Outcome:
    kind: str
    seconds: float
    error: str | None = None  # None: success; else "http 500", "timeout", ...


@dataclass(slots=True)
class LoadReport:
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    after: dict = field(default_factory=dict)  # counters once the server went idle

    def summary(self) -> dict:
        ok = sorted(o.seconds for o in self.outcomes if o.error is None)
        return {
            "requests": len(self.outcomes),
            "requests_per_s": round(len(self.outcomes) / self.seconds, 2),
            "latency_p50_s": round(_quantile(ok, 0.5), 3) if ok else None,
            "latency_p99_s": round(_quantile(ok, 0.99), 3) if ok else None,
            "by_kind": dict(Counter(o.kind for o in self.outcomes)),
            "errors": dict(Counter(f"{o.kind}: {o.error}" for o in self.outcomes if o.error)),
            "after": self.after,
        }


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_load(
    url: str,
    prompts: Sequence[str],
    clients: int = 32,
    duration_s: float = 60,
    max_tokens: int = 64,
    kinds: Sequence[str] = KINDS,
    timeout_s: float = 300,
) -> LoadReport:
    """Run the load for `duration_s` (requests in flight then finish), then the idle check."""
    deadline = time.monotonic() + duration_s
    report = LoadReport(0.0)
    lock = threading.Lock()
    work = itertools.count()

    def client() -> None:
        while time.monotonic() < deadline:
            n = next(work)
            kind = kinds[n % len(kinds)]
            send = _SENDERS[kind]
            start = time.monotonic()
            try:
                error = send(url, prompts[n % len(prompts)], max_tokens, timeout_s)
            except requests.Timeout:
                error = "timeout"
            except requests.RequestException as exc:
                error = type(exc).__name__
            with lock:
                report.outcomes.append(Outcome(kind, time.monotonic() - start, error))

    started = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - started
    report.after = idle_counters(url)
    return report


def idle_counters(url: str, wait_s: float = 60) -> dict:
    """The server's live-work counters, polled until they reach zero or `wait_s` passes."""
    deadline = time.monotonic() + wait_s
    while True:
        counters = live_counters(url)
        if not any(counters.values()) or time.monotonic() > deadline:
            healthy = requests.get(url + "/health", timeout=30).status_code == 200
            return counters | {"healthy": healthy}
        time.sleep(0.5)


def live_counters(url: str) -> dict[str, int]:
    """Work still held by the server: SGLang's requests, apar's trees and ANPD's tables."""
    info = requests.get(url + "/get_server_info", timeout=30).json()
    out: Counter[str] = Counter()
    for state in info.get("internal_states", []):
        for key, value in (state.get("apar") or {}).items():
            out[f"apar_{key}"] += int(value)
        for key in ("live_tables", "live_families"):
            out[f"anpd_{key}"] += int((state.get("anpd") or {}).get(key) or 0)
    return dict(out)


def _chat_body(prompt: str, max_tokens: int, **extra) -> dict:
    messages = [{"role": "user", "content": prompt}]
    return {"model": "default", "messages": messages, "max_tokens": max_tokens, **extra}


def _status(reply: requests.Response) -> str | None:
    return None if reply.status_code == 200 else f"http {reply.status_code}: {reply.text[:160]}"


def _plain(url, prompt, max_tokens, timeout_s):
    body = _chat_body(prompt, max_tokens, custom_params={"apar": False})
    return _status(requests.post(url + "/v1/chat/completions", json=body, timeout=timeout_s))


def _fork(url, prompt, max_tokens, timeout_s):
    body = {"text": prompt, "sampling_params": {"max_new_tokens": max_tokens}}
    return _status(requests.post(url + "/generate", json=body, timeout=timeout_s))


def _stream(url, prompt, max_tokens, timeout_s, close_after: int | None = None):
    body = _chat_body(prompt, max_tokens, stream=True)
    with requests.post(
        url + "/v1/chat/completions", json=body, stream=True, timeout=timeout_s
    ) as reply:
        if reply.status_code != 200:
            return _status(reply)
        for n, line in enumerate(reply.iter_lines()):
            if close_after is not None and n >= close_after:
                return None  # the client walks away mid-stream
            if line.startswith(b"data: [DONE]"):
                return None
    return "stream ended without [DONE]" if close_after is None else None


def _json(url, prompt, max_tokens, timeout_s):
    schema = {"type": "json_schema", "json_schema": {"name": "doc", "schema": JSON_SCHEMA}}
    body = _chat_body(prompt, max_tokens, response_format=schema, apar_parallel_json=True)
    reply = requests.post(url + "/v1/chat/completions", json=body, timeout=timeout_s)
    if reply.status_code != 200:
        return _status(reply)
    doc = json.loads(reply.json()["choices"][0]["message"]["content"])
    return None if set(doc) == {"title", "year"} else "json missing fields"


_SENDERS: dict[str, Callable] = {
    "plain": _plain,
    "stream": _stream,
    "fork": _fork,
    "closed-stream": lambda *a: _stream(*a, close_after=1),
    "json": _json,
}


def main(argv: list[str] | None = None) -> dict:
    from apar_sgl.bench.workload import vicuna_questions
    from apar_sgl.server_process import ServerProcess

    parser = argparse.ArgumentParser(prog="python -m apar_sgl.bench.load", description=__doc__)
    parser.add_argument("--url", help="a running server; default: start one")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60, help="seconds of sending")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"from {', '.join(KINDS)}")
    parser.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args, server_args = parser.parse_known_args(argv)
    kinds = args.kinds.split(",")
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {KINDS}")
    if args.clients < 1 or args.duration <= 0:
        parser.error("--clients must be >= 1 and --duration > 0")
    prompts = [q.text for q in vicuna_questions()]
    server = None
    if args.url is None:
        server = ServerProcess(
            server_args or ["--model-path", "apar-smollm2", "--speculative-algorithm", "ANPD"]
        )
    try:
        url = args.url or server.url
        summary = run_load(url, prompts, args.clients, args.duration, args.max_tokens, kinds)
        summary = summary.summary()
    finally:
        if server is not None:
            server.stop()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return summary


if __name__ == "__main__":
    main()
