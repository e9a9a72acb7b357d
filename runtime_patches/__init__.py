"""Code that runs inside SGLang's processes: the CPU platform and every hook apar-sgl installs.

`register()` is the `sglang.srt.plugins` entry point SGLang calls in each of its processes.
All hooks live in `HOOKS`, one table; `check_hooks_applied()` fails loudly if SGLang did not
apply one (SGLang itself only logs a failed hook and carries on).
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
    target: str
    kind: str  # a sglang HookType name: BEFORE, AFTER, AROUND, REPLACE
    fn: Callable
    cpu_only: bool


def _hook_table() -> list[Hook]:
    from apar_sgl.runtime_patches import cpu_hooks

    hooks = [
        Hook(_target(fn), "AROUND", fn, cpu_only=True)
        for fn in (
            cpu_hooks.skip_kv_copy_warmup,
            cpu_hooks.assign_req_to_token_pool,
            cpu_hooks.verify_tree_greedy,
            cpu_hooks.fill_front_out_cache_loc,
            cpu_hooks.fill_accept_out_cache_loc,
            cpu_hooks.fill_bonus_tokens,
            cpu_hooks.torch_native_forward_extend,
            cpu_hooks.torch_native_decode_attention,
            cpu_hooks.unquantized_linear,
            cpu_hooks.compute_lm_head,
        )
    ]
    hooks += _apar_hooks()
    hooks += _anpd_hooks()
    hooks += _parallel_json_hooks()
    return hooks


def _apar_hooks() -> list[Hook]:
    """The APAR runtime: forks in the scheduler, one joined answer per request."""
    from apar_sgl.runtime_patches import apar_fork, apar_openai, apar_stream

    hooks = [
        Hook(_target(fn), "AFTER", fn, cpu_only=False)
        for fn in (
            apar_fork.scheduler_init,
            apar_openai.build_completion_response,
            apar_openai.build_chat_response,
        )
    ]
    hooks += [
        Hook(_target(fn), "AROUND", fn, cpu_only=False)
        for fn in (
            apar_fork.run_batch,
            apar_fork.process_batch_result,
            apar_fork.abort_request,
            apar_fork.send_abort_output,
            apar_stream.stream_output_generation,
            apar_stream.is_request_level_customized_info_key,
            apar_stream.update_request_meta_info,
            apar_openai.generate_completion_stream,
            apar_openai.generate_chat_stream,
        )
    ]
    return hooks


def _anpd_hooks() -> list[Hook]:
    """ANPD's counters in the scheduler's internal state (the worker itself is an algorithm)."""
    from apar_sgl.runtime_patches import anpd_worker

    fn = anpd_worker.add_speculative_state
    return [Hook(_target(fn), "AFTER", fn, cpu_only=False)]


def _parallel_json_hooks() -> list[Hook]:
    """`"apar_parallel_json": true` on /v1/chat/completions: field-parallel JSON documents."""
    from apar_sgl.runtime_patches import parallel_json_route

    fn = parallel_json_route.handle_chat_request
    return [Hook(_target(fn), "AROUND", fn, cpu_only=False)]


def _target(fn: Callable) -> str:
    """A hook's target is the first line of its docstring."""
    return fn.__doc__.strip().splitlines()[0]


def active_hooks() -> list[Hook]:
    """The hooks this process needs: the CPU ones only when our CPU platform is active."""
    from apar_sgl.runtime_patches.platform import cpu_platform_wanted

    on_cpu = cpu_platform_wanted()
    return [hook for hook in _hook_table() if on_cpu or not hook.cpu_only]


def register() -> None:
    """Entry point `sglang.srt.plugins`: register every active hook with SGLang's registry."""
    from apar_sgl.runtime_patches.platform import cpu_platform_wanted, install_sampling_verify
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    for hook in active_hooks():
        HookRegistry.register(hook.target, hook.fn, HookType[hook.kind])
    if cpu_platform_wanted():
        install_sampling_verify()
    _register_speculative_algorithms()


def _register_speculative_algorithms() -> None:
    """`--speculative-algorithm ANPD` (runtime_patches/anpd_worker.py)."""
    from apar_sgl.runtime_patches import anpd_worker

    anpd_worker.register_algorithm()


def check_hooks_applied() -> None:
    """Raise if SGLang failed to apply any of our hooks (it only logs such failures)."""
    from sglang.srt.plugins.hook_registry import HookRegistry

    missing = [hook.target for hook in active_hooks() if hook.target not in HookRegistry._patched]
    if missing:
        raise RuntimeError(
            "apar-sgl could not hook these SGLang functions (SGLang version changed?): "
            + ", ".join(missing)
        )
