"""Choosing and batching fine-tuning sequences: answer trimming, the structured/plain mix, and
length-bucketed batches. Pure Python.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import NamedTuple

from apar_sgl.train.convert import ConvertedExample, TrainingSequence

logger = logging.getLogger(__name__)


class Sample(NamedTuple):
    """One training sequence with the prompt it answers and the kind of its answer."""

    prompt: str
    sequence: TrainingSequence
    kind: str
    role: str  # "parent" (the answer's own stream) or "child"


class MixStats(NamedTuple):
    structured_answers: int
    plain_answers: int  # after up- or down-sampling to the requested share
    parent_sequences: int
    child_sequences: int


def trim_truncated(answer: str, min_keep: float = 0.5) -> str | None:
    """Cut an answer that hit the token cap back to its last complete paragraph or line.

    None when no boundary keeps at least ``min_keep`` of the text: the answer is then unfit
    to teach where an answer ends.
    """
    body = answer.rstrip()
    for boundary in ("\n\n", "\n"):
        cut = body.rfind(boundary)
        if cut >= min_keep * len(body):
            return body[:cut].rstrip()
    return None


def mix(
    examples: Sequence[ConvertedExample],
    plain_share: float = 0.5,
    children_per_answer: int | None = None,
    seed: int = 0,
) -> tuple[list[Sample], MixStats]:
    """Structured answers (all their sequences) plus plain answers re-sampled to ``plain_share``.

    Plain answers are repeated or dropped so they make ``plain_share`` of the answers; at most
    ``children_per_answer`` child sequences (a seeded choice) are kept per structured answer.
    """
    if not 0.0 <= plain_share < 1.0:
        raise ValueError(f"plain_share must lie in [0, 1), got {plain_share}")
    if children_per_answer is not None and children_per_answer < 1:
        raise ValueError(f"children_per_answer must be >= 1, got {children_per_answer}")
    rng = random.Random(seed)
    structured = [e for e in examples if e.conversion.forks > 0]
    plain = [e for e in examples if e.conversion.forks == 0]
    wanted = round(len(structured) * plain_share / (1.0 - plain_share)) if plain else 0
    if not structured:
        wanted = len(plain)
    shuffled = rng.sample(plain, len(plain))
    chosen_plain = [shuffled[i % len(shuffled)] for i in range(wanted)] if shuffled else []
    samples: list[Sample] = []
    children = 0
    for example in structured:
        parent, *kids = example.conversion.sequences
        if children_per_answer is not None and len(kids) > children_per_answer:
            keep = sorted(rng.sample(range(len(kids)), children_per_answer))
            kids = [kids[i] for i in keep]
        kind = example.conversion.kind
        samples.append(Sample(example.prompt, parent, kind, "parent"))
        samples.extend(Sample(example.prompt, kid, kind, "child") for kid in kids)
        children += len(kids)
    for example in chosen_plain:
        samples.append(Sample(example.prompt, example.conversion.sequences[0], "plain", "parent"))
    stats = MixStats(len(structured), len(chosen_plain), len(samples) - children, children)
    logger.info("training mix: %s", stats)
    return samples, stats


def length_batches(lengths: Sequence[int], max_tokens: int, seed: int = 0) -> list[list[int]]:
    """Indices grouped into batches of similar length, each at most ``max_tokens`` padded.

    A sequence longer than ``max_tokens`` gets a batch of its own. Batch order is shuffled.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = max(lengths[index], max((lengths[i] for i in current), default=0))
        if current and longest * (len(current) + 1) > max_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    random.Random(seed).shuffle(batches)
    return batches
