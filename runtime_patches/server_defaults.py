"""Server-argument defaults that make SGLang work well on a CPU-only host."""

from __future__ import annotations

import psutil

KV_POOL_BYTES = 1.5 * 2**30


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
    if cfg.mem_fraction_static is None:
        # On CPU the fraction is of machine RAM; aim for a pool of ~1.5 GiB.
        total = psutil.virtual_memory().total
        cfg.mem_fraction_static = round(min(0.5, max(0.02, KV_POOL_BYTES / total)), 3)
    if cfg.speculative_algorithm is not None:
        # The CPU verify path runs without the overlap scheduler (measured in the probe).
        cfg.disable_overlap_schedule = True
