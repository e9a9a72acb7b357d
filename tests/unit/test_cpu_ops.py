"""The vectorised CPU stand-ins in cpu_ops / kernel_standins against slow per-request loops."""

from __future__ import annotations

import pytest
import torch
from apar_sgl.runtime_patches.cpu import kernel_standins
from apar_sgl.runtime_patches.cpu import ops as cpu_ops

SEEDS = range(5)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ranges(g: torch.Generator, batch: int, width: int = 40):
    start = torch.randint(0, width // 2, (batch,), generator=g)
    end = start + torch.randint(0, width // 2, (batch,), generator=g)
    rows = torch.randperm(batch + 3, generator=g)[:batch]
    return rows, start, end


@pytest.mark.parametrize("seed", SEEDS)
def test_assign_req_to_token_pool_matches_loop(seed):
    g = _gen(seed)
    batch = 1 + seed
    rows, start, end = _ranges(g, batch)
    pool = torch.zeros(batch + 3, 48, dtype=torch.int32)
    out_cache_loc = torch.randint(1, 10_000, (int((end - start).sum()) + 5,), generator=g)
    expected = pool.clone()
    offset = 0
    for r, s, e in zip(rows.tolist(), start.tolist(), end.tolist(), strict=True):
        expected[r, s:e] = out_cache_loc[offset : offset + e - s].int()
        offset += e - s
    cpu_ops.assign_req_to_token_pool(rows, pool, start, end, out_cache_loc, batch)
    assert torch.equal(pool, expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_speculative_cache_locs_matches_loop(seed):
    g = _gen(seed)
    batch, n = 1 + seed, 4
    rows, start, _ = _ranges(g, batch)
    pool = torch.randint(0, 10_000, (batch + 3, 48), dtype=torch.int32, generator=g)
    expected = torch.cat(
        [pool[r, s : s + n] for r, s in zip(rows.tolist(), start.tolist(), strict=True)]
    )
    got = cpu_ops.speculative_cache_locs(rows, pool, start, start + n, batch, n, "cpu")
    assert got.dtype == torch.int64
    assert torch.equal(got, expected.long())


@pytest.mark.parametrize("seed", SEEDS)
def test_fill_front_out_cache_loc_matches_loop(seed):
    g = _gen(seed)
    batch, width = 1 + seed, 6
    num_front = torch.randint(0, width + 1, (batch,), generator=g)
    out_cache_loc = torch.randint(0, 10_000, (batch * width,), generator=g)
    front = torch.full((batch * width,), -7, dtype=torch.int64)
    expected = front.clone()
    flat = [out_cache_loc[i * width + j] for i in range(batch) for j in range(num_front[i])]
    expected[: len(flat)] = torch.tensor(flat, dtype=torch.int64)
    cpu_ops.fill_front_out_cache_loc(num_front, out_cache_loc, front)
    assert torch.equal(front, expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_fill_accept_out_cache_loc_matches_loop(seed):
    g = _gen(seed)
    batch, steps = 1 + seed, 5
    out_cache_loc = torch.randint(0, 10_000, (batch * 8,), generator=g)
    accept_index = torch.randint(0, batch * 8, (batch, steps), generator=g)
    accept_index[torch.rand(batch, steps, generator=g) < 0.3] = -1
    size = batch * steps
    got = torch.zeros(size, dtype=torch.int64)
    expected = got.clone()
    kept = [out_cache_loc[i] for i in accept_index.reshape(-1).tolist() if i != -1]
    if kept:
        expected[: len(kept)] = torch.stack(kept)
    cpu_ops.fill_accept_out_cache_loc(accept_index, out_cache_loc, got, size)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_fill_bonus_tokens_matches_loop(seed):
    g = _gen(seed)
    batch, stride = 1 + seed, 4
    accept_tokens = torch.randint(0, 500, (batch * stride,), generator=g)
    accept_lens = torch.randint(1, stride + 1, (batch,), generator=g, dtype=torch.int32)
    bonus = torch.zeros(batch, dtype=torch.int64)
    cpu_ops.fill_bonus_tokens(accept_tokens, accept_lens, bonus, stride, batch)
    expected = [accept_tokens[i * stride + accept_lens[i] - 1] for i in range(batch)]
    assert bonus.tolist() == [int(t) for t in expected]


def _random_trees(g: torch.Generator, batch: int, n: int) -> torch.Tensor:
    """Tree masks (batch, n, n) with node 0 the root and parents before children."""
    mask = torch.zeros(batch, n, n, dtype=torch.bool)
    for b in range(batch):
        mask[b, 0, 0] = True
        for node in range(1, n):
            parent = int(torch.randint(0, node, (1,), generator=g))
            mask[b, node] = mask[b, parent]
            mask[b, node, node] = True
    return mask


def _parents(tree: torch.Tensor) -> list[int]:
    """Per node, its parent (deepest strict ancestor) or -1."""
    out = []
    for node in range(tree.shape[0]):
        ancestors = [j for j in range(node) if tree[node, j]]
        out.append(ancestors[-1] if ancestors else -1)
    return out


def _links_loop(tree: torch.Tensor) -> tuple[list[int], list[int]]:
    """First child and next sibling of each node by a per-node scan."""
    parents = _parents(tree)
    n = len(parents)
    first_child = [next((k for k in range(n) if parents[k] == i), -1) for i in range(n)]
    next_sibling = [
        next((k for k in range(i + 1, n) if parents[k] == parents[i]), -1)
        if parents[i] >= 0
        else -1
        for i in range(n)
    ]
    return first_child, next_sibling


@pytest.mark.parametrize("seed", SEEDS)
def test_reconstruct_indices_from_tree_mask_matches_loop(seed):
    g = _gen(seed)
    batch, n = 1 + seed, 7
    trees = _random_trees(g, batch, n)
    seq_lens = torch.randint(1, 50, (batch,), generator=g)
    positions = torch.empty(batch * n, dtype=torch.int64)
    index, next_token, next_sibling = (torch.empty(batch, n, dtype=torch.int64) for _ in "abc")
    kernel_standins.reconstruct_indices_from_tree_mask(
        trees.reshape(-1), seq_lens, positions, index, next_token, next_sibling, batch, n
    )
    for b in range(batch):
        first_child, sibling = _links_loop(trees[b])
        depths = [int(trees[b, i, :i].sum()) for i in range(n)]
        assert next_token[b].tolist() == first_child
        assert next_sibling[b].tolist() == sibling
        assert positions.view(batch, n)[b].tolist() == [d + int(seq_lens[b]) for d in depths]
        assert index[b].tolist() == list(range(b * n, (b + 1) * n))


def _tree_links(trees: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """retrieve_index, first child and next sibling of (batch, n, n) tree masks."""
    batch, n, _ = trees.shape
    index, next_token, next_sibling = (torch.empty(batch, n, dtype=torch.int64) for _ in "abc")
    kernel_standins.reconstruct_indices_from_tree_mask(
        trees.reshape(-1), torch.zeros(batch), torch.empty(batch * n, dtype=torch.int64),
        index, next_token, next_sibling, batch, n,
    )  # fmt: skip
    return index, next_token, next_sibling


@pytest.mark.parametrize("seed", SEEDS)
def test_verify_tree_greedy_accepts_the_longest_matching_path(seed):
    g = _gen(seed)
    batch, n, vocab = 1 + seed, 8, 3  # a tiny vocabulary so that drafts often match
    trees = _random_trees(g, batch, n)
    candidates = torch.randint(0, vocab, (batch, n), generator=g)
    target = torch.randint(0, vocab, (batch * n,), generator=g)
    index, next_token, next_sibling = _tree_links(trees)
    predicts = torch.full((batch * n,), -1, dtype=torch.int64)
    accept_index = torch.full((batch, n), -1, dtype=torch.int64)
    accept_num = torch.zeros(batch, dtype=torch.int64)
    cpu_ops.verify_tree_greedy(
        predicts, accept_index, accept_num, candidates, index, next_token, next_sibling, target
    )
    for b in range(batch):
        parents = _parents(trees[b])
        path = [0]  # from the root, the first child (in node order) whose token is the target's
        while True:
            wanted = int(target[b * n + path[-1]])
            children = [k for k in range(n) if parents[k] == path[-1]]
            match = next((k for k in children if int(candidates[b, k]) == wanted), None)
            if match is None:
                break
            path.append(match)
        assert int(accept_num[b]) == len(path) - 1
        assert accept_index[b, : len(path)].tolist() == [b * n + k for k in path]
        for parent, child in zip(path, path[1:], strict=False):
            assert int(predicts[b * n + parent]) == int(candidates[b, child])
        assert int(predicts[b * n + path[-1]]) == int(target[b * n + path[-1]])


def _target_verify_attention_loop(
    q, k_cache, v_cache, req_to_token, rows, kv_lens, mask, n, heads, head_dim, v_dim, scale
):
    """The per-request reference: one SDPA call per request over its own KV."""
    queries = q.view(-1, heads, head_dim)
    out = q.new_empty((queries.shape[0], heads * v_dim)).view(-1, heads, v_dim)
    offset = 0
    for i, total in enumerate(kv_lens.tolist()):
        slots = req_to_token[int(rows[i]), :total].long()
        keys, values = k_cache[slots].transpose(0, 1), v_cache[slots].transpose(0, 1)
        allowed = mask[offset : offset + n * total].view(n, total)
        offset += n * total
        attended = torch.nn.functional.scaled_dot_product_attention(
            queries[i * n : (i + 1) * n].transpose(0, 1).unsqueeze(0),
            keys.unsqueeze(0),
            values.unsqueeze(0),
            attn_mask=allowed,
            scale=scale,
            enable_gqa=heads != keys.shape[0],
        )
        out[i * n : (i + 1) * n] = attended.squeeze(0).transpose(0, 1)
    return out.view(-1, heads * v_dim)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_target_verify_attention_matches_per_request_loop(seed, kv_heads):
    g = _gen(seed)
    batch, n, heads, head_dim, pool_size = 1 + seed, 5, 4, 8, 400
    prefix = torch.randint(1, 30, (batch,), generator=g)
    kv_lens = prefix + n
    trees = _random_trees(g, batch, n)
    mask = torch.cat(
        [torch.cat([torch.ones(n, int(p), dtype=torch.bool), trees[b]], 1).reshape(-1)
         for b, p in enumerate(prefix.tolist())]
    )  # fmt: skip
    rows = torch.randperm(batch + 2, generator=g)[:batch]
    req_to_token = torch.randint(1, pool_size, (batch + 2, 64), dtype=torch.int32, generator=g)
    k_cache = torch.randn(pool_size, kv_heads, head_dim, generator=g)
    v_cache = torch.randn(pool_size, kv_heads, head_dim, generator=g)
    q = torch.randn(batch * n, heads * head_dim, generator=g)
    args = (q, k_cache, v_cache, req_to_token, rows, kv_lens, mask, n, heads, head_dim, head_dim)
    got = cpu_ops.target_verify_attention(*args, 0.3)
    expected = _target_verify_attention_loop(*args, 0.3)
    assert got.shape == (batch * n, heads * head_dim)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def _sampling_verify(trees, candidates, probs, g):
    """Run the sampling verify on (batch, n) trees with fresh coins; return its outputs."""
    batch, n = candidates.shape
    index, next_token, next_sibling = _tree_links(trees)
    predicts = torch.full((batch * n,), -1, dtype=torch.int64)
    accept_index = torch.full((batch, n), -1, dtype=torch.int64)
    accept_num = torch.zeros(batch, dtype=torch.int32)
    cpu_ops.tree_speculative_sampling_target_only(
        predicts, accept_index, accept_num, candidates, index, next_token, next_sibling,
        torch.rand(batch, n, generator=g), torch.rand(batch, generator=g),
        probs, torch.zeros_like(probs),
    )  # fmt: skip
    return predicts, accept_index, accept_num


def test_sampling_verify_with_one_hot_targets_is_greedy_verify():
    g = _gen(0)
    batch, n, vocab = 6, 8, 3
    trees = _random_trees(g, batch, n)
    candidates = torch.randint(0, vocab, (batch, n), generator=g)
    target = torch.randint(0, vocab, (batch * n,), generator=g)
    probs = torch.nn.functional.one_hot(target, vocab).float().view(batch, n, vocab)
    predicts, accept_index, accept_num = _sampling_verify(trees, candidates, probs, g)
    index, next_token, next_sibling = _tree_links(trees)
    greedy = (torch.full((batch * n,), -1, dtype=torch.int64), torch.full((batch, n), -1))
    greedy_num = torch.zeros(batch, dtype=torch.int64)
    cpu_ops.verify_tree_greedy(
        greedy[0], greedy[1], greedy_num, candidates, index, next_token, next_sibling, target
    )
    assert accept_num.tolist() == greedy_num.tolist()
    assert torch.equal(accept_index, greedy[1])
    assert torch.equal(predicts, greedy[0])


def test_sampling_verify_preserves_the_target_distribution():
    """Monte Carlo over 20k rows: the first two emitted tokens follow the target's law."""
    g = _gen(1)
    batch, vocab = 20_000, 4
    # root -> node1 (token 1) -> node3 (token 3); root -> node2 (token 2), a sibling of node1
    tree = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 1]], dtype=torch.bool)
    trees = tree.expand(batch, 4, 4)
    candidates = torch.tensor([0, 1, 2, 3]).expand(batch, 4)
    rows = torch.tensor(
        [[0.1, 0.4, 0.2, 0.3], [0.3, 0.1, 0.2, 0.4], [0.25] * 4, [0.7, 0.1, 0.1, 0.1]]
    )
    probs = rows.expand(batch, 4, vocab).clone()
    predicts, accept_index, accept_num = _sampling_verify(trees, candidates, probs, g)
    first = predicts.view(batch, 4)[:, 0]
    freq = torch.bincount(first, minlength=vocab).float() / batch
    torch.testing.assert_close(freq, rows[0], atol=0.015, rtol=0)
    # after token 1 (node1), the next token follows node1's row, whether a draft or the bonus
    after_one = first == 1
    second = predicts.view(batch, 4)[after_one, 1]
    freq = torch.bincount(second, minlength=vocab).float() / int(after_one.sum())
    torch.testing.assert_close(freq, rows[1], atol=0.03, rtol=0)
    assert set(accept_num.tolist()) == {0, 1, 2}


def _decode_attention_loop(query, k_cache, v_cache, req_to_token, rows, seq_lens, scale):
    """torch_native's reference: one SDPA call per request over its own KV."""
    out = []
    for i, total in enumerate(seq_lens.tolist()):
        slots = req_to_token[int(rows[i]), :total].long()
        keys, values = k_cache[slots].transpose(0, 1), v_cache[slots].transpose(0, 1)
        attended = torch.nn.functional.scaled_dot_product_attention(
            query[i].unsqueeze(1).unsqueeze(0),
            keys.unsqueeze(0),
            values.unsqueeze(0),
            scale=scale,
            enable_gqa=query.shape[1] != keys.shape[0],
        )
        out.append(attended[0, :, 0])
    return torch.stack(out)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_decode_attention_matches_per_request_loop(seed, kv_heads):
    g = _gen(seed)
    batch, heads, head_dim, pool_size = 1 + seed, 4, 8, 400
    seq_lens = torch.randint(1, 60, (batch,), generator=g)
    rows = torch.randperm(batch + 2, generator=g)[:batch]
    req_to_token = torch.randint(1, pool_size, (batch + 2, 64), dtype=torch.int32, generator=g)
    k_cache = torch.randn(pool_size, kv_heads, head_dim, generator=g)
    v_cache = torch.randn(pool_size, kv_heads, head_dim, generator=g)
    query = torch.randn(batch, heads, head_dim, generator=g)
    args = (query, k_cache, v_cache, req_to_token, rows, seq_lens, 0.3)
    got = cpu_ops.decode_attention(*args)
    assert got.shape == (batch, heads, head_dim)
    torch.testing.assert_close(got, _decode_attention_loop(*args), atol=1e-5, rtol=1e-5)


def _kv_pool(g: torch.Generator, dtype: torch.dtype, pool_size: int = 400, kv_heads: int = 2):
    k_cache = torch.randn(pool_size, kv_heads, 8, generator=g).to(dtype)
    v_cache = torch.randn(pool_size, kv_heads, 8, generator=g).to(dtype)
    return k_cache, v_cache


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("seed", SEEDS)
def test_decode_attention_of_a_request_does_not_depend_on_its_batch(seed, dtype):
    """Bit-for-bit: plain greedy decoding must not change with concurrency."""
    g = _gen(seed)
    batch, heads = 4, 4
    k_cache, v_cache = _kv_pool(g, dtype)
    req_to_token = torch.randint(1, 400, (batch, 64), dtype=torch.int32, generator=g)
    rows = torch.arange(batch)
    seq_lens = torch.randint(1, 64, (batch,), generator=g)
    query = torch.randn(batch, heads, 8, generator=g).to(dtype)
    together = cpu_ops.decode_attention(query, k_cache, v_cache, req_to_token, rows, seq_lens, 0.3)
    for i in range(batch):
        one = slice(i, i + 1)
        alone = cpu_ops.decode_attention(
            query[one], k_cache, v_cache, req_to_token, rows[one], seq_lens[one], 0.3
        )
        assert torch.equal(together[i], alone[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("seed", SEEDS)
def test_each_draft_token_attends_exactly_as_plain_decoding_would(seed, dtype):
    """Bit-for-bit: a draft token's attention equals the decode step it replaces.

    Decode of draft node j, had its ancestors been accepted, sees the prefix then the path
    root..j in position order; greedy verify is lossless only if it computes the same bits.
    """
    g = _gen(seed)
    batch, n, heads = 2, 5, 4
    k_cache, v_cache = _kv_pool(g, dtype)
    prefix = torch.randint(1, 40, (batch,), generator=g)
    trees = _random_trees(g, batch, n)
    if seed % 2:
        trees[:] = torch.tril(torch.ones(n, n, dtype=torch.bool))  # a chain: sliced keys
    mask = torch.cat(
        [torch.cat([torch.ones(n, int(p), dtype=torch.bool), trees[b]], 1).reshape(-1)
         for b, p in enumerate(prefix.tolist())]
    )  # fmt: skip
    req_to_token = torch.randint(1, 400, (batch, 64), dtype=torch.int32, generator=g)
    rows = torch.arange(batch)
    q = torch.randn(batch * n, heads * 8, generator=g).to(dtype)
    verified = cpu_ops.target_verify_attention(
        q, k_cache, v_cache, req_to_token, rows, prefix + n, mask, n, heads, 8, 8, 0.3
    ).view(batch * n, heads, 8)
    for b, p in enumerate(prefix.tolist()):
        for j in range(n):
            path = [p + node for node in range(n) if trees[b, j, node]]
            decode_row = torch.cat([req_to_token[b, :p], req_to_token[b, path]])
            req_to_token_alone = decode_row[None, :]
            decoded = cpu_ops.decode_attention(
                q[b * n + j].view(1, heads, 8),
                k_cache,
                v_cache,
                req_to_token_alone,
                torch.tensor([0]),
                torch.tensor([decode_row.numel()]),
                0.3,
            )
            assert torch.equal(verified[b * n + j], decoded[0])


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 5, 8, 9, 20])
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_matches_f_linear(rows, with_bias):
    g = _gen(rows)
    x = torch.randn(rows, 24, generator=g)
    weight = torch.randn(300, 24, generator=g)
    bias = torch.randn(300, generator=g) if with_bias else None
    got = cpu_ops.linear(x, weight, bias)
    assert got.shape == (rows, 300) and got.is_contiguous()
    torch.testing.assert_close(got, torch.nn.functional.linear(x, weight, bias))


# SmolLM2's qkv, down and LM head shapes, and the tiny test model's.
@pytest.mark.parametrize("shape", [(960, 576), (576, 1536), (49152, 576), (128, 64), (400, 64)])
def test_linear_row_does_not_depend_on_the_rows_beside_it(shape):
    g = _gen(shape[0])
    weight = torch.randn(*shape, generator=g)
    x = torch.randn(cpu_ops.ROW_EXACT_ROWS, shape[1], generator=g)
    alone = torch.cat([cpu_ops.linear(row[None], weight) for row in x])
    for rows in range(2, cpu_ops.ROW_EXACT_ROWS + 1):
        assert torch.equal(cpu_ops.linear(x[:rows], weight), alone[:rows]), rows


# SmolLM2's qkv, o, gate_up, down and LM head. In bfloat16 SGLang's own F.linear (and the LM
# head's matmul) run on the decode and verify path; greedy speculative decoding is lossless
# only if a row's result does not depend on how many rows share the call (a c=1 verify is up
# to 8 rows, a c=16 decode 16, a decode batched with a prefill more).
SMOLLM2_SHAPES = [(960, 576), (576, 576), (3072, 576), (576, 1536), (49152, 576)]


def _wide_range(g: torch.Generator, *shape: int) -> torch.Tensor:
    """Values over 2^-10..2^10: any change in the order of accumulation shows in the result."""
    scale = torch.exp2(torch.randint(-10, 10, shape, generator=g).float())
    return (torch.randn(*shape, generator=g) * scale).bfloat16()


def _original_linear(self, layer, x, bias):
    return torch.nn.functional.linear(x, layer.weight, bias)


def _original_head(self, hidden, lm_head, embedding_bias=None, *, out=None):
    return torch.matmul(hidden, lm_head.weight.T)


def _hooked(shape: tuple[int, int], g: torch.Generator):
    """The CPU platform's bf16 linear (or, for the LM head's shape, its head) on one weight."""
    from types import SimpleNamespace

    from apar_sgl.runtime_patches.cpu.wrappers import compute_lm_head, unquantized_linear

    layer = SimpleNamespace(weight=_wide_range(g, *shape))
    if shape[0] == 49152:
        processor = SimpleNamespace(use_fp32_lm_head=False, rl_on_policy_target=None)
        return lambda x: compute_lm_head(_original_head, processor, x, layer)
    return lambda x: unquantized_linear(_original_linear, None, layer, x, None)


@pytest.mark.parametrize("shape", SMOLLM2_SHAPES)
def test_bf16_rows_come_out_as_decoded_alone_at_any_batch_size(shape):
    """Every row of a bf16 call of m rows equals that row decoded alone (m = 1), for every m
    up to a decode batched with a prefill: on this machine's CPU, whichever it is."""
    g = _gen(shape[1])
    product = _hooked(shape, g)
    x = _wide_range(g, 100, shape[1])
    alone = torch.cat([product(row[None]) for row in x])
    sizes = [2, 3, 5, 8, 33, 40] if shape[0] == 49152 else [*range(2, 34), 64, 100]
    for rows in sizes:
        got = torch.cat([product(part) for part in x.split(rows)])
        assert torch.equal(got, alone), rows
