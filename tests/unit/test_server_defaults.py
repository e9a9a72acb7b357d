"""The CPU platform's split of cores over data-parallel ranks (SGLANG_CPU_OMP_THREADS_BIND)."""

from __future__ import annotations

import pytest
from apar_sgl.runtime_patches.cpu.server_defaults import split_cores


@pytest.mark.parametrize(
    ("cores", "ranks", "binding"),
    [
        ([0, 1], 2, "0|1"),
        ([1, 0], 1, "0,1"),
        ([0, 1, 2, 3, 4], 2, "0,1,2|3,4"),
        ([4, 5, 6, 7], 4, "4|5|6|7"),
    ],
)
def test_each_rank_gets_an_equal_share_of_the_cores(cores, ranks, binding):
    assert split_cores(cores, ranks) == binding


def test_more_ranks_than_cores_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="cannot split 2 cores over 3 ranks"):
        split_cores([0, 1], 3)
