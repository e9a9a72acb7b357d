"""Server-argument defaults that make SGLang work well on a CPU-only host."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

logger = logging.getLogger(__name__)

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
    # An idle scheduler polls its sockets in a busy loop: a whole core per idle server,
    # measured here, which on a small CPU host slows any busy engine beside it about 3x (the
    # demo's two servers, a router's workers, DP ranks). SGLang's IdleSleeper waits on those
    # sockets instead and wakes on the first message (latency unchanged, measured).
    cfg.sleep_on_idle = True
    # The overlap scheduler prepares the next batch on a second thread during the forward
    # pass; on a CPU that thread takes a core from the forward's OpenMP threads. Measured on 2
    # cores (SmolLM2, bfloat16, greedy, 8 chat questions): plain decoding 1.08x (c=1) and 1.11x
    # (c=4) faster without it; the CPU verify path needs it off too (measured in the probe).
    cfg.disable_overlap_schedule = True
    # SGLang's mixed prefill/decode batches (--enable-mixed-chunk) stay off, as in SGLang: in
    # one, a decode row takes the extend attention path, which rounds differently from decode
    # in bfloat16, so plain greedy output would depend on when other requests arrive (seen on
    # SmolLM2: a 3-prompt batch left its single-prompt answers at token 24).
    _bind_ranks_to_cores(cfg.dp_size * cfg.tp_size * cfg.pp_size)
    if cfg.speculative_ngram_capacity == SGLANG_NGRAM_CAPACITY:
        # SGLang's 10M-node corpus (~2.4 GB) is allocated while weights load, so on CPU it
        # counts as weights and leaves the small KV budget above negative.
        cfg.speculative_ngram_capacity = CPU_NGRAM_CAPACITY


def split_cores(cores: Sequence[int], ranks: int) -> str:
    """SGLANG_CPU_OMP_THREADS_BIND for `ranks` ranks sharing `cores`: one comma list of an
    equal share of the cores per rank, `|`-separated (extra cores go to the first ranks)."""
    if not 1 <= ranks <= len(cores):
        raise ValueError(
            f"cannot split {len(cores)} cores over {ranks} ranks (one core each at least)"
        )
    ordered, share, extra = sorted(cores), len(cores) // ranks, len(cores) % ranks
    groups, start = [], 0
    for rank in range(ranks):
        end = start + share + (rank < extra)
        groups.append(",".join(map(str, ordered[start:end])))
        start = end
    return "|".join(groups)


def _bind_ranks_to_cores(ranks: int) -> None:
    """With more ranks (dp x tp x pp) than NUMA nodes SGLang refuses to start unless
    SGLANG_CPU_OMP_THREADS_BIND names each rank's cores: split this process's cores evenly."""
    if ranks <= 1 or os.environ.get("SGLANG_CPU_OMP_THREADS_BIND"):
        return
    from sglang.srt.utils import get_cpu_ids_by_node

    if ranks <= len(get_cpu_ids_by_node()):
        return  # SGLang's own default: one NUMA node per rank
    binding = split_cores(sorted(os.sched_getaffinity(0)), ranks)
    os.environ["SGLANG_CPU_OMP_THREADS_BIND"] = binding  # the scheduler processes inherit it
    logger.info("SGLANG_CPU_OMP_THREADS_BIND=%s (%d ranks on this machine's cores)", binding, ranks)
