"""`apar_sgl.Engine`: SGLang's offline Engine with apar-sgl's defaults and settings."""

from __future__ import annotations

from typing import Any

from apar_sgl.config import AparArgs, attach
from apar_sgl.main_guard import check_main_guard
from apar_sgl.models import resolve_model
from apar_sgl.preflight import check_model_path


def Engine(model: str | None = None, **kwargs: Any):
    """Start SGLang's Engine on `model` (an apar-sgl model name, HF folder or id).

    Keyword arguments are SGLang ServerArgs fields plus AparArgs' `apar_*` fields. On a host
    without a GPU our platform plugin fills in working CPU defaults.
    """
    check_main_guard()  # before SGLang spawns children that re-import __main__
    from sglang.srt.entrypoints.engine import Engine as SglEngine
    from sglang.srt.plugins import load_plugins
    from sglang.srt.server_args import ServerArgs

    from apar_sgl.runtime_patches import check_hooks_applied
    from apar_sgl.runtime_patches.cpu.platform import cpu_platform_wanted

    load_plugins()
    check_hooks_applied()
    apar_args = AparArgs.pop_from_kwargs(kwargs)
    model_path = resolve_model(model or kwargs.pop("model_path", None))
    check_model_path(model_path)
    kwargs.setdefault("log_level", "error")
    if cpu_platform_wanted():
        kwargs.setdefault("device", "cpu")  # SGLang resolves devices before platform defaults
    server_args = ServerArgs(model_path=model_path, **kwargs)
    attach(server_args, apar_args)
    return SglEngine(server_args=server_args)
