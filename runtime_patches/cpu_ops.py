"""Pure-torch stand-ins for the Triton/CUDA helpers SGLang calls on its decode and verify path.

Each function has the signature of the SGLang function it replaces on CPU (see the hook table
in `runtime_patches/__init__.py`) and is tested against a per-request reference loop.
"""

from __future__ import annotations

import torch


def _ragged_positions(
    rows: torch.Tensor, start: torch.Tensor, end: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of every cell in the ragged ranges [start_i, end_i) of row_i."""
    lengths = (end - start).long()
    row_index = torch.repeat_interleave(rows.long(), lengths)
    offsets = torch.cumsum(lengths, 0) - lengths
    within = torch.arange(int(lengths.sum()), device=rows.device) - torch.repeat_interleave(
        offsets, lengths
    )
    return row_index, torch.repeat_interleave(start.long(), lengths) + within


def assign_req_to_token_pool(
    req_pool_indices, req_to_token, start_offset, end_offset, out_cache_loc, batch_size
) -> None:
    """req_to_token[r_i, start_i:end_i] = the next (end_i - start_i) entries of out_cache_loc."""
    n = batch_size
    rows, cols = _ragged_positions(req_pool_indices[:n], start_offset[:n], end_offset[:n])
    req_to_token[rows, cols] = out_cache_loc[: rows.numel()].to(req_to_token.dtype)


def speculative_cache_locs(
    req_pool_indices, req_to_token, start_offset, end_offset, batch_size, draft_token_num, device
) -> torch.Tensor:
    """The KV slots of req_to_token[r_i, start_i:end_i], concatenated over the batch."""
    n = batch_size
    rows, cols = _ragged_positions(req_pool_indices[:n], start_offset[:n], end_offset[:n])
    return req_to_token[rows, cols].to(torch.int64)


def fill_front_out_cache_loc(num_front, out_cache_loc, front_out_cache_loc) -> None:
    """Keep the first num_front[i] slots of each request's equal-width window."""
    batch = num_front.numel()
    window = out_cache_loc.view(batch, -1)
    keep = torch.arange(window.shape[1], device=window.device)[None, :] < num_front[:, None]
    flat = window[keep]
    front_out_cache_loc[: flat.numel()] = flat.to(front_out_cache_loc.dtype)


def fill_accept_out_cache_loc(accept_index, out_cache_loc, accept_out_cache_loc, size) -> None:
    """The KV slots of the accepted draft positions (accept_index == -1 marks padding)."""
    index = accept_index.reshape(-1)[:size]
    values = out_cache_loc[index[index != -1].long()]
    accept_out_cache_loc[: values.numel()] = values.to(accept_out_cache_loc.dtype)


def fill_bonus_tokens(accept_tokens, accept_lens, bonus_tokens, accept_stride, batch_size) -> None:
    """Each request's last accepted token: accept_tokens[i * stride + accept_lens[i] - 1]."""
    index = (
        torch.arange(batch_size, device=accept_lens.device) * accept_stride
        + accept_lens[:batch_size].long()
        - 1
    )
    bonus_tokens[:batch_size] = accept_tokens.reshape(-1)[index].to(bonus_tokens.dtype)


def verify_tree_greedy(
    predicts,
    accept_index,
    accept_token_num,
    candidates,
    retrieve_index,
    retrieve_next_token,
    retrieve_next_sibling,
    target_predict,
    topk: int = -1,
):
    """Walk each draft tree from its root, accepting children that equal the target's argmax.

    Mirrors sgl_kernel's verify_tree_greedy: predicts[last accepted] gets the bonus token.
    """
    batch, _ = candidates.shape
    max_steps = accept_index.shape[1]
    cand, index, next_token, next_sibling = _host_lists(
        candidates, retrieve_index, retrieve_next_token, retrieve_next_sibling
    )
    target = target_predict.reshape(-1).tolist()
    flat_predicts = predicts.view(-1)
    for b in range(batch):
        last = index[b][0]
        accept_index[b, 0] = last
        accepted = 0
        node = 0
        for _ in range(1, max_steps):
            node = next_token[b][node]
            wanted = target[last]
            while node != -1 and cand[b][node] != wanted:
                node = next_sibling[b][node]
            if node == -1:
                break
            flat_predicts[last] = wanted
            accepted += 1
            last = index[b][node]
            accept_index[b, accepted] = last
        accept_token_num[b] = accepted
        flat_predicts[last] = target[last]
    return predicts, accept_index, accept_token_num


def _host_lists(*tensors: torch.Tensor) -> list[list]:
    """Small per-request tree tensors as nested Python lists, for the per-node walks."""
    return [t.tolist() for t in tensors]


def target_verify_attention(
    q,
    k_cache,
    v_cache,
    req_to_token,
    req_pool_indices,
    kv_lens,
    mask,
    draft_token_num,
    num_heads,
    head_dim,
    v_head_dim,
    scaling,
):
    """Tree-masked attention of each request's draft tokens over its whole KV (prefix + drafts).

    kv_lens[i] counts the request's KV including its draft tokens; `mask` is SGLang's flat
    custom mask, draft_token_num x kv_lens[i] booleans per request, request after request.
    One SDPA call for the batch: KV padded to the longest request, padding masked out.
    """
    n = draft_token_num
    batch = kv_lens.numel()
    lens = kv_lens.to(torch.int64)
    columns = torch.arange(int(lens.max()), device=q.device)
    allowed = _padded_tree_mask(mask, lens, n, columns)
    queries = q.view(batch, n, num_heads, head_dim).transpose(1, 2)
    attended = _padded_sdpa(
        queries, k_cache, v_cache, req_to_token, req_pool_indices, allowed, scaling
    )
    return attended.transpose(1, 2).reshape(batch * n, num_heads * v_head_dim)


def decode_attention(
    query, k_cache, v_cache, req_to_token, req_pool_indices, seq_lens, scaling
) -> torch.Tensor:
    """One new token per request over its whole KV: (batch, heads, head_dim) -> same for v.

    The batched form of torch_native's per-request decode loop (one SDPA call per request
    per layer), as `target_verify_attention` is for verify.
    """
    lens = seq_lens.to(torch.int64)
    columns = torch.arange(int(lens.max()), device=query.device)
    allowed = (columns[None, :] < lens[:, None])[:, None, :]  # (batch, 1 query, longest)
    queries = query.unsqueeze(2)  # (batch, heads, 1, head_dim)
    attended = _padded_sdpa(
        queries, k_cache, v_cache, req_to_token, req_pool_indices, allowed, scaling
    )
    return attended.squeeze(2)


def _padded_sdpa(queries, k_cache, v_cache, req_to_token, req_pool_indices, allowed, scaling):
    """SDPA of queries (batch, heads, n, d) over each request's KV, padded to `allowed`'s width.

    One call for the batch: the KV of request i is gathered from its req_to_token row into
    columns 0..longest-1; `allowed` (batch, n, longest) masks padding and unseen tokens.
    """
    columns = torch.arange(allowed.shape[-1], device=queries.device)
    slots = req_to_token[req_pool_indices.long()[:, None], columns[None, :]].long()
    keys = k_cache[slots].transpose(1, 2)  # (batch, kv_heads, longest, head_dim)
    values = v_cache[slots].transpose(1, 2)
    if keys.dtype != queries.dtype:
        keys, values = keys.to(queries.dtype), values.to(queries.dtype)
    return torch.nn.functional.scaled_dot_product_attention(
        queries,
        keys,
        values,
        attn_mask=allowed.unsqueeze(1),
        scale=scaling,
        enable_gqa=queries.shape[1] != keys.shape[1],
    )


def _padded_tree_mask(
    mask: torch.Tensor, lens: torch.Tensor, n: int, columns: torch.Tensor
) -> torch.Tensor:
    """SGLang's ragged flat mask as (batch, n, longest) booleans, False on the padding."""
    starts = torch.cumsum(n * lens, 0) - n * lens
    rows = torch.arange(n, device=lens.device)
    flat = starts[:, None, None] + rows[None, :, None] * lens[:, None, None] + columns
    inside = (columns[None, None, :] < lens[:, None, None]).expand(flat.shape)
    padded = torch.zeros(inside.shape, dtype=torch.bool, device=mask.device)
    padded[inside] = mask[flat[inside]]
    return padded


def tree_speculative_sampling_target_only(
    predicts,
    accept_index,
    accept_token_num,
    candidates,
    retrive_index,
    retrive_next_token,
    retrive_next_sibling,
    uniform_samples,
    uniform_samples_for_final_sampling,
    target_probs,
    draft_probs,
    threshold_single: float = 1.0,
    threshold_acc: float = 1.0,
    deterministic: bool = True,
) -> None:
    """Sampling verify of deterministic draft trees: the target distribution is preserved.

    Mirrors sgl_kernel's kernel of the same name. At each node one coin is drawn; the
    children are tried in order and child i is accepted when the coin falls into its slice
    of the target distribution (with thresholds 1, exactly a sample of the target that
    equals a draft). Rejected drafts have their mass moved into `draft_probs`; after the
    last accepted node the bonus token is sampled from relu(target - draft), i.e. the target
    with the rejected drafts removed.
    """
    batch, n = candidates.shape
    max_steps = accept_index.shape[1]
    cand, index, next_token, next_sibling = _host_lists(
        candidates, retrive_index, retrive_next_token, retrive_next_sibling
    )
    coins = uniform_samples.reshape(batch, n).tolist()
    flat_predicts = predicts.view(-1)
    last_rows: list[int] = []
    for b in range(batch):
        last = index[b][0]
        accept_index[b, 0] = last
        accepted, node, row = 0, 0, 0  # row: the node whose target distribution is in use
        coin, mass = coins[b][0], 0.0
        for _ in range(1, max_steps):
            node = next_token[b][node]
            while node != -1:
                token = cand[b][node]
                single = float(target_probs[b, row, token])
                mass += single
                if coin <= mass / threshold_acc or single >= threshold_single:
                    flat_predicts[last] = token
                    accepted += 1
                    last = index[b][node]
                    accept_index[b, accepted] = last
                    row, coin, mass = node, coins[b][node], 0.0
                    break
                draft_probs[b, row, token] = target_probs[b, row, token]
                node = next_sibling[b][node]
            if node == -1:
                break
        accept_token_num[b] = accepted
        last_rows.append(row)
    rows = torch.tensor(last_rows, dtype=torch.long)
    batch_index = torch.arange(batch)
    residual = (target_probs[batch_index, rows] - draft_probs[batch_index, rows]).clamp(min=0)
    cdf = residual.cumsum(-1)
    threshold = uniform_samples_for_final_sampling.reshape(batch, 1).to(cdf.dtype) * cdf[:, -1:]
    tokens = torch.searchsorted(cdf, threshold, right=True).clamp(max=cdf.shape[-1] - 1)
    last_index = accept_index[batch_index, accept_token_num.long()]
    flat_predicts[last_index.long()] = tokens.view(-1).to(flat_predicts.dtype)
