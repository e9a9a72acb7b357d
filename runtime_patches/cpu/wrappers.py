"""Hook bodies that route SGLang's Triton/CUDA-only helpers to `ops` on our CPU platform.

Each function's docstring starts with the dotted path of the SGLang 0.5.23 target it wraps.
"""

from __future__ import annotations

import torch
from apar_sgl.runtime_patches.cpu import ops
from apar_sgl.runtime_patches.cpu.row_exact import rows_alone


def skip_kv_copy_warmup(original, self):
    """sglang.srt.mem_cache.memory_pool.MHATokenToKVPool._init_kv_copy_and_warmup

    The warm-up launches a Triton kernel; with no config SGLang uses its torch KV mover.
    """
    self._kv_copy_config = None


def assign_req_to_token_pool(original, *args, **kwargs):
    """sglang.srt.mem_cache.allocation.assign_req_to_token_pool_func"""
    return ops.assign_req_to_token_pool(*args, **kwargs)


def verify_tree_greedy(original, *args, **kwargs):
    """sglang.kernels.ops.speculative.spec_tree.verify_tree_greedy_func"""
    return ops.verify_tree_greedy(*args, **kwargs)


def fill_front_out_cache_loc(original, *args, **kwargs):
    """sglang.kernels.ops.speculative.cache_locs.fill_front_out_cache_loc_func"""
    return ops.fill_front_out_cache_loc(*args, **kwargs)


def fill_accept_out_cache_loc(original, *args, **kwargs):
    """sglang.kernels.ops.speculative.eagle.fill_accept_out_cache_loc_func"""
    return ops.fill_accept_out_cache_loc(*args, **kwargs)


def fill_bonus_tokens(original, *args, **kwargs):
    """sglang.kernels.ops.speculative.eagle.fill_bonus_tokens_func"""
    return ops.fill_bonus_tokens(*args, **kwargs)


def torch_native_forward_extend(original, self, q, k, v, layer, forward_batch, save_kv_cache=True):
    """sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend.forward_extend

    Adds the target-verify (tree mask) mode the torch_native backend lacks.
    """
    if not forward_batch.forward_mode.is_target_verify():
        return original(self, q, k, v, layer, forward_batch, save_kv_cache)
    from sglang.srt.mem_cache.memory_pool import KVWriteLoc

    if save_kv_cache and k is not None and v is not None:
        self.token_to_kv_pool.set_kv_buffer(
            layer, KVWriteLoc(forward_batch.out_cache_loc, self.swa_out_cache_loc), k, v
        )
    spec = forward_batch.spec_info
    n = spec.draft_token_num
    mask = spec.custom_mask.reshape(-1).bool()
    kv_lens = forward_batch.seq_lens
    if int((n * (kv_lens + n)).sum()) == mask.numel():
        kv_lens = kv_lens + n  # seq_lens counted the prefix only
    return ops.target_verify_attention(
        q,
        self.token_to_kv_pool.get_key_buffer(layer.layer_id),
        self.token_to_kv_pool.get_value_buffer(layer.layer_id),
        self.req_to_token_pool.req_to_token,
        forward_batch.req_pool_indices,
        kv_lens,
        mask,
        n,
        layer.tp_q_head_num,
        layer.qk_head_dim,
        layer.v_head_dim,
        layer.scaling,
    )


def torch_native_decode_attention(
    original,
    self,
    query,
    output,
    k_cache,
    v_cache,
    req_to_token,
    req_pool_indices,
    seq_lens,
    encoder_lens=None,
    scaling=None,
    enable_gqa=False,
    causal=False,
    is_cross_attn=False,
    sliding_window_size=None,
):
    """sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend._run_sdpa_forward_decode

    Routes decode through `ops.decode_attention`, the same per-token attention verify
    uses, so that a token's output does not depend on whether it was decoded or verified.
    Encoder and sliding-window models keep SGLang's loop.
    """
    if encoder_lens is not None or is_cross_attn or (sliding_window_size or -1) > -1:
        return original(
            self, query, output, k_cache, v_cache, req_to_token, req_pool_indices, seq_lens,
            encoder_lens, scaling=scaling, enable_gqa=enable_gqa, causal=causal,
            is_cross_attn=is_cross_attn, sliding_window_size=sliding_window_size,
        )  # fmt: skip
    output.copy_(
        ops.decode_attention(
            query, k_cache, v_cache, req_to_token, req_pool_indices, seq_lens, scaling
        )
    )
    return output


def unquantized_linear(original, self, layer, x, bias=None):
    """sglang.srt.layers.quantization.unquant.UnquantizedLinearMethod.apply

    Float32 inputs of up to `_GEMM_MAX_ROWS` rows (decode and verify batches, short prefills)
    run as `ops.linear`. Bfloat16 inputs run through `row_exact.rows_alone`, so a row's
    result never depends on the rows beside it (a decode row batched with another request's
    prefill, a wide verify); other inputs keep SGLang's code.
    """
    if getattr(layer, "use_intel_amx_backend", False):
        return original(self, layer, x, bias)
    if _float32_batch(x, layer.weight):
        return ops.linear(x, layer.weight, bias)
    if x.dim() == 2 and x.dtype == layer.weight.dtype == torch.bfloat16:
        return rows_alone(x, lambda rows: original(self, layer, rows, bias))
    return original(self, layer, x, bias)


def compute_lm_head(original, self, hidden_states, lm_head, embedding_bias=None, *, out=None):
    """sglang.srt.layers.logits_processor.LogitsProcessor._compute_lm_head

    A plain head (unquantized, no LoRA, no bias) over a float32 decode or verify batch runs as
    `ops.linear`; over bfloat16 rows through `row_exact.rows_alone`, as the linear layers do.
    Other heads (quantized, LoRA, a float32 head, Intel AMX) keep SGLang's code.
    """
    from sglang.srt.layers.logits_processor import should_apply_lm_head_quant_method

    weight = getattr(lm_head, "weight", None)
    plain = (
        weight is not None
        and hidden_states.dim() == 2
        and embedding_bias is None
        and not hasattr(lm_head, "set_lora")
        and not should_apply_lm_head_quant_method(lm_head, getattr(lm_head, "quant_method", None))
        and self.rl_on_policy_target is None
    )
    if plain and _float32_batch(hidden_states, weight):
        return ops.linear(hidden_states, weight)
    if (
        plain
        and hidden_states.dtype == weight.dtype == torch.bfloat16
        and not self.use_fp32_lm_head
        and not getattr(lm_head, "use_intel_amx_backend", False)
    ):
        return rows_alone(hidden_states, lambda rows: original(self, rows, lm_head))
    return original(self, hidden_states, lm_head, embedding_bias, out=out)


def _float32_batch(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        x.dim() == 2 and x.shape[0] <= _GEMM_MAX_ROWS and x.dtype == weight.dtype == torch.float32
    )


_GEMM_MAX_ROWS = 64  # a decode or verify batch; prefill keeps SGLang's matmul
