"""Code that runs inside SGLang's processes: the CPU platform and every hook apar-sgl installs.

Subpackages by concern, each naming the SGLang seam it uses: `cpu` (the platform), `apar`
(model-emitted forks), `anpd` (n-gram drafting), `routes` (parallel JSON, skeleton).
`register()` is the `sglang.srt.plugins` entry point SGLang calls in each of its processes.
All hooks live in one table, `_hook_table()`, assembled from each subpackage's `hooks()`, each
hook with the dotted path of the SGLang function it wraps. `check_hooks_applied()` fails
loudly if SGLang did not apply one (SGLang itself only logs a failed hook and carries on); it
runs in the launching process and in every scheduler process. Hooks marked `isolated` run
inside the scheduler loop and are wrapped by `apar.faults.isolate`: an exception in our code
fails the requests it concerns, never the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

# pyproject maps this folder into apar_sgl; loading it as `runtime_patches` too would copy it.
if __name__ != "apar_sgl.runtime_patches":
    raise ImportError(f"import apar_sgl.runtime_patches, not {__name__}")


logger = logging.getLogger(__name__)


class Hook(NamedTuple):
    target: str  # dotted path of the SGLang function it wraps
    kind: str  # a sglang HookType name: BEFORE, AFTER, AROUND, REPLACE
    fn: Callable
    cpu_only: bool = False
    isolated: bool = False  # runs in the scheduler: its own errors fail its requests only


def _hook_table() -> list[Hook]:
    """Every hook, in registration order (a later AROUND on one target runs outside)."""
    from apar_sgl.runtime_patches import anpd, apar, cpu, routes

    return cpu.hooks() + apar.hooks() + anpd.hooks() + routes.hooks()


def active_hooks() -> list[Hook]:
    """The hooks this process needs: the CPU ones only when our CPU platform is active."""
    from apar_sgl.runtime_patches.cpu.platform import cpu_platform_wanted

    on_cpu = cpu_platform_wanted()
    return [hook for hook in _hook_table() if on_cpu or not hook.cpu_only]


def register() -> None:
    """Entry point `sglang.srt.plugins`: register every active hook with SGLang's registry."""
    from apar_sgl.runtime_patches.apar.faults import isolate
    from apar_sgl.runtime_patches.cpu.platform import cpu_platform_wanted, install_sampling_verify
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    for hook in active_hooks():
        fn = isolate(hook.fn) if hook.isolated else hook.fn
        HookRegistry.register(hook.target, fn, HookType[hook.kind])
    if cpu_platform_wanted():
        install_sampling_verify()
    from apar_sgl.runtime_patches.anpd.worker import register_algorithm

    register_algorithm()  # `--speculative-algorithm ANPD`


def check_hooks_applied() -> None:
    """Raise if SGLang failed to apply any of our hooks (it only logs such failures)."""
    from sglang.srt.plugins.hook_registry import HookRegistry

    missing = [hook.target for hook in active_hooks() if hook.target not in HookRegistry._patched]
    if missing:
        raise RuntimeError(
            "apar-sgl could not hook these SGLang functions (SGLang version changed?): "
            + ", ".join(missing)
        )
