"""A tiny model trained on synthetic APAR data, so that it forks deterministically under greedy.

Each answer is trained as its root sequence plus one sequence per child (the root's tokens up
to the fork, then the child token and the child's text), as in the APAR paper's data. The
serial answer of the flat list is trained too: with its fork token masked, the model falls back
to it, which the limit tests rely on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from apar_sgl.tree import CHILD_TOKEN as C
from apar_sgl.tree import FORK_TOKEN as F
from tests.support.tiny_model import build_tiny_model

EOS = "</s>"
LIST_PROMPT = "Q: colors\nA:"
LIST_ANSWER = " list: 1. red is warm 2. blue is cool 3. green is fresh end"
PLAN_PROMPT = "Q: plan\nA:"
PLAN_ANSWER = " day: 1. morning walk in the city read 2. evening sleep done"

_LIST = [
    f" list: 1. red{F} 2. blue{F} 3. green{F} end",
    f" list: 1. red{F}{C} is warm",
    f" list: 1. red{F} 2. blue{F}{C} is cool",
    f" list: 1. red{F} 2. blue{F} 3. green{F}{C} is fresh",
    LIST_ANSWER,
]
_PLAN = [  # depth 2: the first child forks again
    f" day: 1. morning{F} 2. evening{F} done",
    f" day: 1. morning{F}{C} walk{F} read",
    f" day: 1. morning{F}{C} walk{F}{C} in the city",
    f" day: 1. morning{F} 2. evening{F}{C} sleep",
]
# A sequence whose fork is followed by its own continuation is repeated, so that after the
# fork token greedy prefers it over the child token its children were trained with.
_REPEATS = {_LIST[0]: 2, _PLAN[0]: 3, _PLAN[1]: 2}
TEXTS = tuple(
    prompt + t + EOS
    for prompt, texts in ((LIST_PROMPT, _LIST), (PLAN_PROMPT, _PLAN))
    for t in texts
    for _ in range(_REPEATS.get(t, 1))
)
TRAIN_STEPS = 250


def build_apar_model(cache_root: Path) -> Path:
    """Build (once per content, cached under ``cache_root``) the APAR fixture model."""
    key = hashlib.sha256(repr((TEXTS, TRAIN_STEPS)).encode()).hexdigest()[:12]
    out_dir = cache_root / f"apar-tiny-{key}"
    if not (out_dir / "tokenizer.json").exists():
        build_tiny_model(out_dir, texts=TEXTS, train_steps=TRAIN_STEPS)
    return out_dir
