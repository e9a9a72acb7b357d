"""The CPU platform: SGLang on a machine with no GPU.

SGLang seams: the `sglang.srt.platforms` entry point (`platform.activate` names
`AparCpuPlatform`, an out-of-tree `SRTPlatform`); AROUND hooks that route the Triton/CUDA
helpers of the decode and verify path to pure torch (`wrappers` → `ops`); and the sampling
kernels SGLang leaves None off CUDA, filled by `platform.install_sampling_verify`.
"""

from __future__ import annotations

from apar_sgl.runtime_patches import Hook


def hooks() -> list[Hook]:
    """Our CPU platform's stand-ins for SGLang's Triton/CUDA paths (active only on it)."""
    from apar_sgl.runtime_patches.cpu import wrappers as w

    spec = "sglang.kernels.ops.speculative"
    torch_native = "sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend"
    table = {
        "sglang.srt.mem_cache.memory_pool.MHATokenToKVPool._init_kv_copy_and_warmup": (
            w.skip_kv_copy_warmup
        ),
        "sglang.srt.mem_cache.allocation.assign_req_to_token_pool_func": (
            w.assign_req_to_token_pool
        ),
        f"{spec}.spec_tree.verify_tree_greedy_func": w.verify_tree_greedy,
        f"{spec}.cache_locs.fill_front_out_cache_loc_func": w.fill_front_out_cache_loc,
        f"{spec}.eagle.fill_accept_out_cache_loc_func": w.fill_accept_out_cache_loc,
        f"{spec}.eagle.fill_bonus_tokens_func": w.fill_bonus_tokens,
        f"{torch_native}.forward_extend": w.torch_native_forward_extend,
        f"{torch_native}._run_sdpa_forward_decode": w.torch_native_decode_attention,
        "sglang.srt.layers.quantization.unquant.UnquantizedLinearMethod.apply": (
            w.unquantized_linear
        ),
        "sglang.srt.layers.logits_processor.LogitsProcessor._compute_lm_head": w.compute_lm_head,
    }
    return [Hook(target, "AROUND", fn, cpu_only=True) for target, fn in table.items()]
