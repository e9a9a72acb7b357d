"""Skeleton-then-expand for any model: a short skeleton, then every point in its own branch."""

from __future__ import annotations

from _common import budget

import apar_sgl as apar

QUESTIONS = [
    "What are the most effective ways to deal with stress?",
    "What is 17 times 23?",  # the router may send this one to plain decoding
]


if __name__ == "__main__":
    for question in QUESTIONS:
        state = apar.skeleton(
            question, max_points=4, point_tokens=budget(40), max_tokens=budget(128)
        )
        answer = state.ret
        print(f"Q: {question}\n[route: {answer.route}, points: {list(answer.points)}]")
        print(answer.text)
        stats = answer.stats
        print(
            f"tokens: {stats['total_tokens']} generated, {stats['critical_path_steps']} steps on "
            f"the critical path, cached prefix per point: {stats['cached_tokens']}\n"
        )
