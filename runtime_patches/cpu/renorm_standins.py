"""Pure-torch top-k / top-p renormalisation for SGLang's speculative sampling verify on CPU.

`sglang.kernels.ops.sampling.renorm` leaves both names None off CUDA/HIP/NPU/MUSA, and
`eagle_sample` calls them for any drafted request with top_k or top_p set, which crashed the
scheduler. These keep the same tokens as SGLang's own torch sampler
(`top_k_top_p_min_p_sampling_from_probs_torch`): rank < top_k, and the probability mass
before a token at most top_p; the kept probabilities are renormalised to sum to 1.
"""

from __future__ import annotations

import torch


def top_k_renorm_prob(probs: torch.Tensor, top_ks: torch.Tensor) -> torch.Tensor:
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    ranks = torch.arange(probs.shape[-1], device=probs.device).view(1, -1)
    return _keep_sorted(probs, sorted_probs, order, ranks < top_ks.view(-1, 1))


def top_p_renorm_prob(probs: torch.Tensor, top_ps: torch.Tensor) -> torch.Tensor:
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    return _keep_sorted(probs, sorted_probs, order, mass_before <= top_ps.view(-1, 1))


def _keep_sorted(probs, sorted_probs, order, keep) -> torch.Tensor:
    kept = torch.zeros_like(probs).scatter_(-1, order, sorted_probs * keep)
    return kept / kept.sum(dim=-1, keepdim=True)
