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
    Each draft token attends to exactly the keys its mask row allows, in position order: the
    keys plain decoding would attend to had the token's ancestors been accepted.
    """
    n = draft_token_num
    queries = q.view(-1, num_heads, head_dim)
    out = q.new_empty((queries.shape[0], num_heads, v_head_dim))
    offset = 0
    rows_and_lens = zip(req_pool_indices.tolist(), kv_lens.tolist(), strict=True)
    for i, (row, total) in enumerate(rows_and_lens):
        keys, values = _gather_kv(req_to_token[row, :total], k_cache, v_cache)
        allowed = mask[offset : offset + n * total].view(n, total)
        offset += n * total
        for j, visible in enumerate(_visible_keys(allowed)):
            token = i * n + j
            out[token] = _attend(queries[token], keys[visible], values[visible], scaling)
    return out.view(-1, num_heads * v_head_dim)


def _visible_keys(allowed: torch.Tensor) -> list:
    """Per mask row, an index of the keys it sees: a slice when they are a prefix (a chain)."""
    ends = allowed.sum(1)
    columns = torch.arange(allowed.shape[1], device=allowed.device)
    if torch.equal(allowed, columns[None, :] < ends[:, None]):
        return [slice(0, end) for end in ends.tolist()]
    return list(allowed)


def decode_attention(
    query, k_cache, v_cache, req_to_token, req_pool_indices, seq_lens, scaling
) -> torch.Tensor:
    """One new token per request over its whole KV: (batch, heads, head_dim) -> same for v."""
    out = query.new_empty((query.shape[0], query.shape[1], v_cache.shape[-1]))
    rows_and_lens = zip(req_pool_indices.tolist(), seq_lens.tolist(), strict=True)
    for i, (row, total) in enumerate(rows_and_lens):
        keys, values = _gather_kv(req_to_token[row, :total], k_cache, v_cache)
        out[i] = _attend(query[i], keys, values, scaling)
    return out


def _gather_kv(slots, k_cache, v_cache) -> tuple[torch.Tensor, torch.Tensor]:
    """A request's keys and values, (len, kv_heads, head_dim) each, in float32."""
    slots = slots.long()
    return k_cache.index_select(0, slots).float(), v_cache.index_select(0, slots).float()


def _attend(query, keys, values, scaling) -> torch.Tensor:
    """One token's attention (heads, head_dim) over `keys`/`values` (len, kv_heads, dim).

    Decode and verify both go through here, one query at a time over exactly its own keys,
    laid out alike. A token's output is then bit-for-bit the same whatever its batch or
    draft neighbours (a padded or multi-query SDPA call changes the rounding): greedy
    speculative decoding reproduces plain decoding exactly, and plain decoding does not
    depend on concurrency. Float32 SDPA is also 3x faster than bfloat16 on these CPUs.
    """
    attended = torch.nn.functional.scaled_dot_product_attention(
        query.float()[None, :, None],  # (1, heads, 1, head_dim)
        keys.transpose(0, 1)[None],  # (1, kv_heads, len, head_dim)
        values.transpose(0, 1)[None],
        scale=scaling,
        enable_gqa=query.shape[0] != keys.shape[1],
    )
    return attended[0, :, 0].to(query.dtype)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T (+ bias) for a float32 decode or verify batch, computed as weight @ x.T.

    On this project's CPUs (AMD EPYC) MKL runs x @ weight.T for a few rows as one GEMV per
    row, so a 4-token verify read every weight 4 times. The transposed product is one GEMM
    that reads the weight once; decoding is weight-bandwidth bound here, so 4 rows cost what
    1 row costs (SmolLM2's 30 layers: 37 ms for 1 row, 69 ms for 4 as GEMV rows, 35 ms for 4
    as one GEMM).
    Up to `ROW_EXACT_ROWS` rows are zero-padded to a multiple of 4: MKL then reduces every
    row in the same order, so a row's result does not depend on the rows beside it.
    """
    rows = x.shape[0]
    if rows <= ROW_EXACT_ROWS:
        x = torch.cat([x, x.new_zeros(-rows % 4, x.shape[1])])
    out = torch.matmul(weight, x.T).T[:rows]
    if bias is not None:
        out = out + bias
    return out.contiguous()


ROW_EXACT_ROWS = 8  # measured: float32 GEMMs of 4 and 8 columns agree bit for bit, others not


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
