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

    tree_mask[b, i, j] is True when draft j is i itself or an ancestor of i (j <= i).
    """
    n = draft_token_num
    mask = tree_mask.reshape(batch_size, n, n).bool().cpu()
    order = torch.arange(n)
    ancestor = mask & (order[None, None, :] < order[None, :, None])
    depth = ancestor.sum(-1)
    positions.view(batch_size, n).copy_(depth + verified_seq_len.reshape(-1, 1).cpu().long())
    retrieve_index.view(batch_size, n).copy_(torch.arange(batch_size * n).view(batch_size, n))
    # A node's parent is its deepest ancestor, i.e. the ancestor with the largest index.
    parent = torch.where(
        ancestor.any(-1), (ancestor * order[None, None, :]).argmax(-1), torch.full_like(depth, -1)
    )
    first_child = torch.full((batch_size, n), -1, dtype=torch.int64)
    next_sibling = torch.full((batch_size, n), -1, dtype=torch.int64)
    for b in range(batch_size):
        last_child_of: dict[int, int] = {}
        for node in range(1, n):
            p = int(parent[b, node])
            if p < 0:
                continue
            if p in last_child_of:
                next_sibling[b, last_child_of[p]] = node
            else:
                first_child[b, p] = node
            last_child_of[p] = node
    retrieve_next_token.view(batch_size, n).copy_(first_child)
    retrieve_next_sibling.view(batch_size, n).copy_(next_sibling)
