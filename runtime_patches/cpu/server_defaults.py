"""Server-argument defaults that make SGLang work well on a CPU-only host."""

from __future__ import annotations

MEM_FRACTION_STATIC = 0.3
MAX_TOTAL_TOKENS = 65536  # SmolLM2-135M: 1.5 GiB of KV in bfloat16, 3 GiB in float32
SGLANG_NGRAM_CAPACITY = 10_000_000
CPU_NGRAM_CAPACITY = 1_000_000


def apply_cpu_defaults(cfg) -> None:
    """Fill the fields the user left unset; SGLang records each write with its source."""
    if cfg.device is None:
        cfg.device = "cpu"
    if cfg.attention_backend is None:
        cfg.attention_backend = "torch_native"
    if cfg.cuda_graph_backend_decode is None:
        cfg.cuda_graph_backend_decode = "disabled"
    if cfg.cuda_graph_backend_prefill is None:
        cfg.cuda_graph_backend_prefill = "disabled"
    if cfg.dtype == "auto":
        cfg.dtype = "bfloat16"  # ~1.5x faster than float32 here; SGLang's auto picks float16
    if cfg.mem_fraction_static is None:
        # On CPU SGLang budgets weights + KV as this share of the RAM free at start-up and
        # fails when other processes grow meanwhile: be generous and cap the pool in tokens.
        cfg.mem_fraction_static = MEM_FRACTION_STATIC
    if cfg.max_total_tokens is None:
        cfg.max_total_tokens = MAX_TOTAL_TOKENS
    if cfg.speculative_algorithm is not None:
        # The CPU verify path runs without the overlap scheduler (measured in the probe).
        cfg.disable_overlap_schedule = True
    else:
        # A new request's prefill (an APAR child's is one token) rides along with the running
        # decode batch instead of pausing it for a step: fewer steps on a forked answer's
        # critical path, same outputs (measured on the APAR fixture model).
        cfg.enable_mixed_chunk = True
    if cfg.speculative_ngram_capacity == SGLANG_NGRAM_CAPACITY:
        # SGLang's 10M-node corpus (~2.4 GB) is allocated while weights load, so on CPU it
        # counts as weights and leaves the small KV budget above negative.
        cfg.speculative_ngram_capacity = CPU_NGRAM_CAPACITY
