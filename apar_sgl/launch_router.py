"""`python -m apar_sgl.launch_router --workers N [server args...]`: N apar servers behind
sglang-router (the `router` extra), all on this machine.

Each worker is `python -m apar_sgl.launch_server` with the given server args on a free
loopback port; the router is sglang-router's own (`sglang_router.launch_router`, cache-aware
policy by default) on `--host`/`--port`, configured by its `--router-*` flags. SIGINT or
SIGTERM stops the router and every worker.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal
import sys

from apar_sgl.preflight import PreflightError, check_port_free
from apar_sgl.server_process import ServerProcess

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from sglang_router.router_args import RouterArgs

    parser = argparse.ArgumentParser(
        prog="python -m apar_sgl.launch_router",
        description="Arguments not listed here go to every worker "
        "(see python -m apar_sgl.launch_server --help).",
        allow_abbrev=False,  # an abbreviated server flag must reach the workers intact
    )
    parser.add_argument("--workers", type=int, default=2, help="apar servers to start")
    parser.add_argument("--host", default="127.0.0.1", help="the router's address")
    parser.add_argument("--port", type=int, default=30000, help="the router's port")
    RouterArgs.add_cli_args(parser, use_router_prefix=True, exclude_host_port=True)
    return parser


def parse_args(argv: list[str]):
    """Split argv into (workers, RouterArgs without worker URLs, the workers' server args)."""
    from sglang_router.router_args import RouterArgs

    args, server_args = build_parser().parse_known_args(argv)
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    return args.workers, RouterArgs.from_cli_args(args, use_router_prefix=True), server_args


def _run_router(router_args) -> None:
    from sglang_router.launch_router import launch_router

    launch_router(router_args)


def _interrupt(signum, frame) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the clean-up
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def serve(count: int, router_args, server_args: list[str]) -> int:
    """Run workers and router until SIGINT/SIGTERM (0) or the router's own exit (1)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    workers: list[ServerProcess] = []
    router = None
    try:
        for _ in range(count):
            workers.append(ServerProcess(server_args, capture=False, wait=False))
        for w in workers:  # they start up side by side
            w.wait_ready(router_args.worker_startup_timeout_secs)
        router_args.worker_urls = [w.url for w in workers]
        router = multiprocessing.get_context("spawn").Process(
            target=_run_router, args=(router_args,), name="sglang-router"
        )
        router.start()
        logger.info(
            "router on http://%s:%d; workers: %s",
            router_args.host,
            router_args.port,
            ", ".join(f"{w.url} (pid {w.proc.pid})" for w in workers),
        )
        _watch(router, workers)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if router is not None and router.is_alive():
            router.terminate()
            router.join(10)
            if router.is_alive():
                router.kill()
                router.join()
        for w in workers:
            w.stop()


def _watch(router, workers: list[ServerProcess]) -> None:
    """Wait while the router lives; log each worker that exits (the router routes around it)."""
    running = set(range(len(workers)))
    while router.is_alive():
        router.join(1)
        for i in sorted(running):
            if workers[i].proc.poll() is not None:
                running.discard(i)
                logger.warning(
                    "worker %s exited with code %s", workers[i].url, workers[i].proc.returncode
                )
    logger.error("router exited with code %s", router.exitcode)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[apar-router] %(asctime)s %(message)s")
    try:
        count, router_args, server_args = parse_args(sys.argv[1:] if argv is None else argv)
        check_port_free(router_args.host, router_args.port)
    except (PreflightError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    sys.exit(serve(count, router_args, server_args))


if __name__ == "__main__":
    main()
