"""Run one program over many inputs; concurrent programs share engine batches."""

from __future__ import annotations

from _common import budget

import apar_sgl as apar


@apar.function
def classify(s, review: str):
    s += apar.user(f"Review: {review}\nIs this review positive or negative?")
    s += apar.assistant_begin()
    s += apar.select("label", ["positive", "negative"])
    s += ". Reason: " + apar.gen("reason", max_tokens=budget(24), stop="\n")
    s += apar.assistant_end()


REVIEWS = [
    "Great coffee and friendly staff.",
    "The room was dirty and noisy.",
    "Fast delivery, works perfectly.",
    "Broke after two days.",
    "I would come back any time.",
    "Too expensive for what it is.",
]

if __name__ == "__main__":
    states = classify.run_batch([{"review": r} for r in REVIEWS], progress_bar=True)
    for review, state in zip(REVIEWS, states, strict=True):
        print(f"{state['label']:>8}  {review}  -- {state['reason']!r}")
