"""Pure-torch stand-in for `sgl_kernel.speculative`, used only when that import fails.

SGLang's tree-drafting path (NGRAM, and our ANPD) imports
`sgl_kernel.speculative.reconstruct_indices_from_tree_mask`; the CUDA wheel is not loadable
on a CPU host. `platform.activate` registers this module under that name in sys.modules.
"""

from __future__ import annotations

import torch


def reconstruct_indices_from_tree_mask(
    tree_mask,
    verified_seq_len,
    positions,
    retrieve_index,
    retrieve_next_token,
    retrieve_next_sibling,
    batch_size,
    draft_token_num,
):
    """Positions and first-child / next-sibling links of each request's draft tree.

    tree_mask[b, i, j] is True when draft j is i itself or an ancestor of i (j <= i); the
    contract is the one SGLang's reconstruct_tree.py documents for its Triton fallback.
    """
    n = draft_token_num
    mask = tree_mask.reshape(batch_size, n, n).bool().cpu()
    order = torch.arange(n)
    ancestor = mask & (order[None, None, :] < order[None, :, None])  # [b, node, ancestor]
    depth = ancestor.sum(-1)
    positions.view(batch_size, n).copy_(depth + verified_seq_len.reshape(-1, 1).cpu().long())
    retrieve_index.view(batch_size, n).copy_(torch.arange(batch_size * n).view(batch_size, n))
    # A node's parent is its deepest ancestor, i.e. the ancestor with the largest index.
    parent = torch.where(ancestor, order, -1).amax(-1)
    later = order[:, None] > order[None, :]  # [k, node]: k comes after node
    first_child = _first_index(ancestor & later[None], n)
    same_parent = (parent[:, :, None] == parent[:, None, :]) & later[None]
    next_sibling = torch.where(parent >= 0, _first_index(same_parent, n), -1)
    retrieve_next_token.view(batch_size, n).copy_(first_child)
    retrieve_next_sibling.view(batch_size, n).copy_(next_sibling)


def _first_index(hits: torch.Tensor, n: int) -> torch.Tensor:
    """Per column of hits[b, k, node], the smallest row k that is True, or -1."""
    rows = torch.arange(n)[None, :, None]
    first = torch.where(hits, rows, n).amin(1)
    return torch.where(first < n, first, -1)
