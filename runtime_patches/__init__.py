"""Code that runs inside SGLang's processes: the CPU platform and every hook apar-sgl installs.

`register()` is the `sglang.srt.plugins` entry point SGLang calls in each of its processes.
All hooks live in one table, `_hook_table()`, each with the dotted path of the SGLang function it
wraps. `check_hooks_applied()` fails loudly if SGLang did not apply one (SGLang itself only logs
a failed hook and carries on); it runs in the launching process and in every scheduler process.
Hooks marked `isolated` run inside the scheduler loop and are wrapped by
`apar_faults.isolate`: an exception in our code fails the requests it concerns, never the loop.
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


_SCHEDULER = "sglang.srt.managers.scheduler.Scheduler"
_STREAMER = "sglang.srt.managers.scheduler_components.output_streamer.SchedulerOutputStreamer"
_TOKENIZER_MANAGER = "sglang.srt.managers.tokenizer_manager.TokenizerManager"
_CHAT = "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat"
_COMPLETION = "sglang.srt.entrypoints.openai.serving_completions.OpenAIServingCompletion"


def _hook_table() -> list[Hook]:
    return (
        _cpu_hooks()
        + _request_hooks()
        + _apar_hooks()
        + _anpd_hooks()
        + _parallel_json_hooks()
        + _chat_mode_hooks()
    )


def _cpu_hooks() -> list[Hook]:
    """Our CPU platform's stand-ins for SGLang's Triton/CUDA paths."""
    from apar_sgl.runtime_patches import cpu_hooks as c

    spec = "sglang.kernels.ops.speculative"
    torch_native = "sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend"
    table = {
        "sglang.srt.mem_cache.memory_pool.MHATokenToKVPool._init_kv_copy_and_warmup": (
            c.skip_kv_copy_warmup
        ),
        "sglang.srt.mem_cache.allocation.assign_req_to_token_pool_func": (
            c.assign_req_to_token_pool
        ),
        f"{spec}.spec_tree.verify_tree_greedy_func": c.verify_tree_greedy,
        f"{spec}.cache_locs.fill_front_out_cache_loc_func": c.fill_front_out_cache_loc,
        f"{spec}.eagle.fill_accept_out_cache_loc_func": c.fill_accept_out_cache_loc,
        f"{spec}.eagle.fill_bonus_tokens_func": c.fill_bonus_tokens,
        f"{torch_native}.forward_extend": c.torch_native_forward_extend,
        f"{torch_native}._run_sdpa_forward_decode": c.torch_native_decode_attention,
        "sglang.srt.layers.quantization.unquant.UnquantizedLinearMethod.apply": (
            c.unquantized_linear
        ),
        "sglang.srt.layers.logits_processor.LogitsProcessor._compute_lm_head": (c.compute_lm_head),
    }
    return [Hook(target, "AROUND", fn, cpu_only=True) for target, fn in table.items()]


def _request_hooks() -> list[Hook]:
    """Client input checked where it enters: apar's request fields, control tokens as text."""
    from apar_sgl.runtime_patches import request_checks

    return [
        Hook(
            f"{_TOKENIZER_MANAGER}._create_tokenized_object",
            "AROUND",
            request_checks.create_tokenized_object,
        ),
        Hook(f"{_CHAT}._process_messages", "AROUND", request_checks.process_messages),
    ]


def _apar_hooks() -> list[Hook]:
    """The APAR runtime: forks in the scheduler, one joined answer per request."""
    from apar_sgl.runtime_patches import apar_counters, apar_fork, apar_openai, apar_stream

    return [
        Hook(f"{_SCHEDULER}.__init__", "AFTER", apar_fork.scheduler_init),
        Hook(f"{_SCHEDULER}.run_batch", "AROUND", apar_fork.run_batch, isolated=True),
        Hook(
            f"{_SCHEDULER}.process_batch_result",
            "AROUND",
            apar_fork.process_batch_result,
            isolated=True,
        ),
        Hook(f"{_SCHEDULER}.abort_request", "AROUND", apar_fork.abort_request, isolated=True),
        Hook(
            f"{_SCHEDULER}.send_abort_output", "AROUND", apar_fork.send_abort_output, isolated=True
        ),
        Hook(
            f"{_STREAMER}._stream_output_generation",
            "AROUND",
            apar_stream.stream_output_generation,
            isolated=True,
        ),
        Hook(
            f"{_STREAMER}.is_request_level_customized_info_key",
            "AROUND",
            apar_stream.is_request_level_customized_info_key,
        ),
        Hook(
            f"{_TOKENIZER_MANAGER}.update_request_meta_info",
            "AROUND",
            apar_stream.update_request_meta_info,
        ),
        Hook(
            f"{_COMPLETION}._build_completion_response",
            "AFTER",
            apar_openai.build_completion_response,
        ),
        Hook(f"{_CHAT}._build_chat_response", "AFTER", apar_openai.build_chat_response),
        Hook(
            f"{_COMPLETION}._generate_completion_stream",
            "AROUND",
            apar_openai.generate_completion_stream,
        ),
        Hook(f"{_CHAT}._generate_chat_stream", "AROUND", apar_openai.generate_chat_stream),
        Hook(
            "sglang.srt.managers.scheduler_components.internal_state"
            ".SchedulerInternalStateController.get_internal_state",
            "AFTER",
            apar_counters.add_internal_state,
        ),
    ]


def _anpd_hooks() -> list[Hook]:
    """ANPD's counters in the scheduler's internal state (the worker itself is an algorithm)."""
    from apar_sgl.runtime_patches import anpd_worker

    target = (
        "sglang.srt.managers.scheduler_components.internal_state"
        ".SchedulerInternalStateController._add_speculative"
    )
    return [Hook(target, "AFTER", anpd_worker.add_speculative_state)]


def _parallel_json_hooks() -> list[Hook]:
    """`"apar_parallel_json": true` on /v1/chat/completions: field-parallel JSON documents."""
    from apar_sgl.runtime_patches import parallel_json_route

    return [Hook(f"{_CHAT}.handle_request", "AROUND", parallel_json_route.handle_chat_request)]


def _chat_mode_hooks() -> list[Hook]:
    """`"apar_mode"` on /v1/chat/completions: model forks, skeleton-then-expand, or off.

    A second AROUND on handle_request: SGLang's HookRegistry chains AROUND hooks (the later
    registered runs outside), and each of these passes requests it does not serve inward.
    """
    from apar_sgl.runtime_patches import skeleton_route

    return [Hook(f"{_CHAT}.handle_request", "AROUND", skeleton_route.handle_chat_request)]


def active_hooks() -> list[Hook]:
    """The hooks this process needs: the CPU ones only when our CPU platform is active."""
    from apar_sgl.runtime_patches.platform import cpu_platform_wanted

    on_cpu = cpu_platform_wanted()
    return [hook for hook in _hook_table() if on_cpu or not hook.cpu_only]


def register() -> None:
    """Entry point `sglang.srt.plugins`: register every active hook with SGLang's registry."""
    from apar_sgl.runtime_patches.apar_faults import isolate
    from apar_sgl.runtime_patches.platform import cpu_platform_wanted, install_sampling_verify
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    for hook in active_hooks():
        fn = isolate(hook.fn) if hook.isolated else hook.fn
        HookRegistry.register(hook.target, fn, HookType[hook.kind])
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
