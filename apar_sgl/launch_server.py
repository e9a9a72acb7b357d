"""`python -m apar_sgl.launch_server`: SGLang's HTTP server (native and OpenAI APIs) with
apar-sgl's plugin, settings and embedded default model.

Accepts every `sglang serve` argument plus the `--apar-*` ones; `--model-path` defaults to
the embedded SmolLM2-135M-Instruct and the server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys

from apar_sgl.config import AparArgs, attach
from apar_sgl.models import DEFAULT_MODEL, resolve_model
from apar_sgl.preflight import PreflightError, check_model_path, check_port_free


def build_parser() -> argparse.ArgumentParser:
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="python -m apar_sgl.launch_server")
    ServerArgs.add_cli_args(parser)
    AparArgs.add_cli_args(parser)
    for action in parser._actions:
        if action.dest == "model_path":
            action.required = False
            action.default = DEFAULT_MODEL
            action.help += f" An apar-sgl model name works too (default: {DEFAULT_MODEL})."
    return parser


def prepare_server_args(argv: list[str]):
    """Parse argv into SGLang's ServerArgs carrying our AparArgs; raise PreflightError early."""
    from sglang.srt.server_args import ServerArgs

    from apar_sgl.runtime_patches.cpu.platform import cpu_platform_wanted

    args = build_parser().parse_args(argv)
    apar_args = AparArgs.from_cli_args(args)
    args.model_path = resolve_model(args.model_path)
    if args.device is None and cpu_platform_wanted():
        args.device = "cpu"  # SGLang resolves devices before platform defaults
    check_model_path(args.model_path)
    check_port_free(args.host, args.port)
    server_args = ServerArgs.from_cli_args(args)
    attach(server_args, apar_args)
    return server_args


def main(argv: list[str] | None = None) -> None:
    from sglang.launch_server import run_server
    from sglang.srt.plugins import load_plugins
    from sglang.srt.utils import kill_process_tree

    from apar_sgl.models import ModelNotAvailableError
    from apar_sgl.runtime_patches import check_hooks_applied

    load_plugins()
    check_hooks_applied()
    try:
        server_args = prepare_server_args(sys.argv[1:] if argv is None else argv)
    except (PreflightError, ModelNotAvailableError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    try:
        run_server(server_args)
    finally:
        kill_process_tree(os.getpid(), include_parent=False)


if __name__ == "__main__":
    main()
