"""Bfloat16 products whose every row comes out as if it had been computed alone.

A CPU GEMM picks its kernel and blocking by the number of rows, so one row of a bfloat16 product
can come out different when other rows share the call (a decode row batched with another
request's prefill, an 8-token verify). Greedy speculative decoding is lossless only if a verify
row equals the decode row. Measured with inputs of wide dynamic range, which make any change in
the order of accumulation visible (tests/unit/test_cpu_ops.py):

- AMD EPYC (this project's usual CPU): a 1-row call takes a GEMV path that accumulates the
  K = 1536 down projection in another order than calls of 2 rows or more; every call of a
  multiple of 4 rows, up to 64, gives each row the same result.
- Intel Xeon: calls of up to 32 rows agree; from 33 rows on the last bit can differ.

So bfloat16 rows go in blocks of at most `BLOCK_ROWS`, each zero-padded to a multiple of
`PAD_ROWS` (padding a 1-row decode to 4 rows cost nothing measurable on SmolLM2: decoding is
bound by reading the weights, not by the rows).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

BLOCK_ROWS = 32
PAD_ROWS = 4


def rows_alone(x: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`run(x)` for a 2-D `x`, computed so that no output row depends on the other rows."""
    if x.shape[0] <= BLOCK_ROWS:
        return _padded(x, run) if x.shape[0] else run(x)
    return torch.cat([_padded(block, run) for block in x.split(BLOCK_ROWS)])


def _padded(block: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    rows = block.shape[0]
    if rows % PAD_ROWS:
        block = torch.cat([block, block.new_zeros(-rows % PAD_ROWS, block.shape[1])])
    return run(block)[:rows]
