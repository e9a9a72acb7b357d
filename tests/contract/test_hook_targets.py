"""Every hook target still exists in the pinned SGLang with the parameters we recorded.

SGLang only logs a hook whose target vanished, and a wrapper written for other parameters
breaks at run time: a changed signature must fail here first. When SGLang is upgraded on
purpose, check each wrapper against the new code before updating RECORDED.
"""

from __future__ import annotations

import inspect

import pytest
from apar_sgl.runtime_patches import _hook_table

from tests.support.dotted import resolve

RECORDED: dict[str, tuple[str, ...]] = {
    "sglang.srt.mem_cache.memory_pool.MHATokenToKVPool._init_kv_copy_and_warmup": ("self",),
    "sglang.srt.mem_cache.allocation.assign_req_to_token_pool_func": (
        "req_pool_indices",
        "req_to_token",
        "start_offset",
        "end_offset",
        "out_cache_loc",
        "batch_size",
    ),
    "sglang.kernels.ops.speculative.spec_tree.verify_tree_greedy_func": (
        "predicts",
        "accept_index",
        "accept_token_num",
        "candidates",
        "retrieve_index",
        "retrieve_next_token",
        "retrieve_next_sibling",
        "target_predict",
        "topk",
    ),
    "sglang.kernels.ops.speculative.cache_locs.fill_front_out_cache_loc_func": (
        "num_front",
        "out_cache_loc",
        "front_out_cache_loc",
    ),
    "sglang.kernels.ops.speculative.eagle.fill_accept_out_cache_loc_func": (
        "accept_index",
        "out_cache_loc",
        "accept_out_cache_loc",
        "size",
    ),
    "sglang.kernels.ops.speculative.eagle.fill_bonus_tokens_func": (
        "accept_tokens",
        "accept_lens",
        "bonus_tokens",
        "accept_stride",
        "batch_size",
    ),
    "sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend.forward_extend": (
        "self",
        "q",
        "k",
        "v",
        "layer",
        "forward_batch",
        "save_kv_cache",
    ),
    "sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend"
    "._run_sdpa_forward_decode": (
        "self",
        "query",
        "output",
        "k_cache",
        "v_cache",
        "req_to_token",
        "req_pool_indices",
        "seq_lens",
        "encoder_lens",
        "scaling",
        "enable_gqa",
        "causal",
        "is_cross_attn",
        "sliding_window_size",
    ),
    "sglang.srt.layers.quantization.unquant.UnquantizedLinearMethod.apply": (
        "self",
        "layer",
        "x",
        "bias",
    ),
    "sglang.srt.layers.logits_processor.LogitsProcessor._compute_lm_head": (
        "self",
        "hidden_states",
        "lm_head",
        "embedding_bias",
        "out",
    ),
    "sglang.srt.managers.scheduler.Scheduler.__init__": ("self", "server_args", "port_args"),
    "sglang.srt.managers.scheduler.Scheduler.run_batch": ("self", "batch", "pp_proxy_tensors"),
    "sglang.srt.managers.scheduler.Scheduler.process_batch_result": ("self", "batch", "result"),
    "sglang.srt.managers.scheduler.Scheduler.abort_request": ("self", "recv_req"),
    "sglang.srt.managers.scheduler.Scheduler.send_abort_output": ("self", "abort_req", "req"),
    "sglang.srt.managers.scheduler_components.output_streamer.SchedulerOutputStreamer"
    "._stream_output_generation": ("self", "reqs", "return_logprob", "skip_req", "is_idle_batch"),
    "sglang.srt.managers.scheduler_components.output_streamer.SchedulerOutputStreamer"
    ".is_request_level_customized_info_key": ("self", "key"),
    "sglang.srt.managers.scheduler_components.internal_state.SchedulerInternalStateController"
    "._add_speculative": ("self", "state"),
    "sglang.srt.managers.scheduler_components.internal_state.SchedulerInternalStateController"
    ".get_internal_state": ("self", "recv_req"),
    "sglang.srt.managers.tokenizer_manager.TokenizerManager.update_request_meta_info": (
        "self",
        "meta_info",
        "state",
        "customized_info",
        "index",
        "finish_reason",
    ),
    "sglang.srt.entrypoints.openai.serving_completions.OpenAIServingCompletion"
    "._build_completion_response": ("self", "request", "ret", "created"),
    "sglang.srt.entrypoints.openai.serving_completions.OpenAIServingCompletion"
    "._generate_completion_stream": ("self", "adapted_request", "request", "raw_request"),
    "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat._build_chat_response": (
        "self",
        "request",
        "ret",
        "created",
    ),
    "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat._generate_chat_stream": (
        "self",
        "adapted_request",
        "request",
        "raw_request",
    ),
    "sglang.srt.managers.tokenizer_manager.TokenizerManager._create_tokenized_object": (
        "self",
        "obj",
        "input_text",
        "input_ids",
        "input_embeds",
        "mm_inputs",
        "token_type_ids",
    ),
    "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat._process_messages": (
        "self",
        "request",
        "is_multimodal",
        "output_constrained",
    ),
    "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat.handle_request": (
        "self",
        "request",
        "raw_request",
    ),
}


def test_every_hook_target_is_recorded():
    # A target may carry several AROUND hooks (HookRegistry chains them), e.g. handle_request.
    assert sorted({hook.target for hook in _hook_table()}) == sorted(RECORDED)


@pytest.mark.parametrize("target", sorted(RECORDED))
def test_hook_target_signature_is_unchanged(target):
    params = tuple(inspect.signature(resolve(target)).parameters)
    assert params == RECORDED[target], f"{target} now takes {params}"


def test_targets_are_declared_as_data_not_read_from_docstrings():
    """Under `python -OO` docstrings are gone; the table must not depend on them."""
    import subprocess
    import sys

    code = (
        "from apar_sgl.runtime_patches import _hook_table; "
        "t = _hook_table(); assert all(h.target.startswith('sglang.') for h in t), t; "
        "print(len({h.target for h in t}))"
    )
    out = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) == len(RECORDED)
