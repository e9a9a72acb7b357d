"""ANPD n-gram drafter: lossless speculative drafts from the request's own tokens, no draft model.

Ou, Chen, Tian, "Lossless Acceleration of Large Language Model via Adaptive N-gram Parallel
Decoding" (ANPD, NAACL 2024 industry track, arXiv:2404.08698). Levels n = 2..N map the last n-1
tokens to next-token counts; the table is seeded from the prompt and updated with each accepted
token (O(1) per level). A draft chains lookups, longest context first, falling back a level at a
time; no match means no draft. The target model verifies drafts elsewhere, so output is unchanged.
"""

from __future__ import annotations

from apar_sgl.ngram.control import (
    DraftLengthController,
    LevelConfidence,
    StepCost,
    best_width,
    draft_budget,
)
from apar_sgl.ngram.table import NgramTable
from apar_sgl.ngram.tree import DraftTree

__all__ = [
    "DraftLengthController",
    "DraftTree",
    "LevelConfidence",
    "NgramTable",
    "StepCost",
    "best_width",
    "draft_budget",
]
