"""Out-of-tree SGLang platform that runs SGLang on a machine with no GPU.

SGLang 0.5.23 only runs on CPU with a CPU build of sgl_kernel (not on PyPI). This platform
uses the torch_native attention backend and pure-torch stand-ins (see `ops`) instead.
It activates by itself when torch sees no CUDA device, so a GPU host keeps SGLang's own
platform and its FlashInfer kernels; APAR_PLATFORM=cpu|off overrides the detection.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

from apar_sgl import env

logger = logging.getLogger(__name__)

PLATFORM_CLASS = "apar_sgl.runtime_patches.cpu.platform.AparCpuPlatform"


def cpu_platform_wanted() -> bool:
    """Whether this process should run SGLang through our CPU platform."""
    mode = env.platform_mode()
    if mode != "auto":
        return mode == "cpu"
    if os.environ.get("SGLANG_USE_CPU_ENGINE") == "1":
        return False  # the user asked for SGLang's own CPU engine
    import torch

    return not torch.cuda.is_available()


def activate() -> str | None:
    """Entry point `sglang.srt.platforms`: our platform's class path, or None to stay out."""
    if not cpu_platform_wanted():
        return None
    _install_kernel_standins()
    # The Triton KV mover has no driver here; SGLang's own torch mover is the stand-in.
    os.environ.setdefault("SGLANG_NATIVE_MOVE_KV_CACHE", "1")
    return PLATFORM_CLASS


def _install_kernel_standins() -> None:
    """Register pure-torch modules for compiled ones that are missing, never shadowing them."""
    try:
        importlib.import_module("sgl_kernel.speculative")
    except ImportError:
        from apar_sgl.runtime_patches.cpu import kernel_standins

        sys.modules.setdefault("sgl_kernel.speculative", kernel_standins)


def install_sampling_verify() -> None:
    """Fill SGLang's speculative sampling kernels, None off CUDA, with ours.

    Without them a speculative request with temperature > 0 (`tree_speculative_sampling_
    target_only`), and with top_k or top_p set (`top_k_renorm_prob`, `top_p_renorm_prob`),
    crashes the scheduler on a plugin platform (SGLang's CPU engine instead verifies
    greedily, which is lossy). The names are None, not functions, so no hook can wrap them
    (and a REPLACE hook would rebind every None in sys.modules); `eagle_utils` imports them
    by name, so both bindings are set.
    """
    from apar_sgl.runtime_patches.cpu import ops, renorm_standins
    from sglang.kernels.ops.sampling import renorm
    from sglang.kernels.ops.speculative import verify_sampling

    eagle_utils = sys.modules.get("sglang.srt.speculative.eagle_utils")
    standins = {
        "tree_speculative_sampling_target_only": (
            ops.tree_speculative_sampling_target_only,
            verify_sampling,
        ),
        "top_k_renorm_prob": (renorm_standins.top_k_renorm_prob, renorm),
        "top_p_renorm_prob": (renorm_standins.top_p_renorm_prob, renorm),
    }
    for name, (standin, home) in standins.items():
        for module in (home, eagle_utils):
            if module is not None and getattr(module, name, None) is None:
                setattr(module, name, standin)


def _make_platform_class() -> type:
    from apar_sgl.runtime_patches.cpu import ops
    from sglang.srt.platforms.cpu import CpuDeviceMixin
    from sglang.srt.platforms.device_mixin import PlatformEnum
    from sglang.srt.platforms.interface import PlatformCapabilities, SRTPlatform

    class AparCpuPlatform(CpuDeviceMixin, SRTPlatform):
        """SGLang on CPU: torch_native attention, no graphs, pure-torch speculative helpers."""

        _enum = PlatformEnum.OOT
        device_name = "cpu"
        device_type = "cpu"
        capabilities = PlatformCapabilities()

        def apply_server_args_defaults(self, server_args) -> None:
            from apar_sgl.runtime_patches.cpu.server_defaults import apply_cpu_defaults

            apply_cpu_defaults(server_args)

        def get_default_attention_backend(self) -> str:
            return "torch_native"

        def is_pin_memory_available(self, device=None) -> bool:
            return False

        def supports_speculative_algorithm(self, algorithm: str) -> bool:
            return True

        def get_speculative_cache_locs_fn(self):
            return ops.speculative_cache_locs

    return AparCpuPlatform


def __getattr__(name: str):
    # SGLang resolves PLATFORM_CLASS lazily; building the class imports SGLang, so defer it.
    if name == "AparCpuPlatform":
        cls = _make_platform_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
