"""The CPU top-k / top-p renormalisation keeps the tokens SGLang's own torch sampler keeps."""

from __future__ import annotations

import pytest
import torch
from apar_sgl.runtime_patches.cpu.renorm_standins import top_k_renorm_prob, top_p_renorm_prob


def _probs(rows: int = 6, vocab: int = 50) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.softmax(torch.randn(rows, vocab) * 3, dim=-1)


def _kept_by_sglang(probs, top_ks, top_ps) -> torch.Tensor:
    """The mask SGLang's `top_k_top_p_min_p_sampling_from_probs_torch` applies, per token."""
    from sglang.srt.layers.sampler import top_k_top_p_min_p_sampling_from_probs_torch

    kept = torch.zeros_like(probs, dtype=torch.bool)
    for _ in range(400):  # every token it can sample is one it keeps
        ids = top_k_top_p_min_p_sampling_from_probs_torch(
            probs.clone(), top_ks, top_ps, torch.zeros(len(probs)), False, None, None
        )
        kept[torch.arange(len(probs)), ids.long()] = True
    return kept


@pytest.mark.parametrize("k", [1, 3, 50])
def test_top_k_keeps_the_k_most_likely_and_sums_to_one(k):
    probs = _probs()
    out = top_k_renorm_prob(probs, torch.full((len(probs),), k))
    assert torch.allclose(out.sum(-1), torch.ones(len(probs)))
    assert ((out > 0).sum(-1) == k).all()
    top = probs.topk(k, dim=-1).indices
    assert (out.gather(-1, top) > 0).all()
    kept = out > 0
    assert torch.allclose(out[kept], (probs * kept / (probs * kept).sum(-1, keepdim=True))[kept])


def test_top_p_keeps_what_sglangs_sampler_can_sample():
    probs = _probs()
    top_ps = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    out = top_p_renorm_prob(probs, top_ps)
    assert torch.allclose(out.sum(-1), torch.ones(len(probs)))
    sampled = _kept_by_sglang(probs, torch.full((len(probs),), probs.shape[-1]), top_ps)
    assert not (sampled & (out == 0)).any()  # it never samples a token we drop
    sorted_mass = (probs * (out > 0)).sum(-1)
    assert (sorted_mass >= top_ps - 1e-6).all()  # and we keep at least top_p of the mass
