"""A handful of chat prompts for SmolLM2 identity tests (greedy, plain vs speculative)."""

from __future__ import annotations

SMOLLM2_GREEDY = {"temperature": 0, "max_new_tokens": 48}
SMOLLM2_QUESTIONS = (0, 3, 6)  # Vicuna question indices: chat, with numbers and lists


def smollm2_jobs() -> tuple[str, list]:
    """SmolLM2's path and jobs for `generate_isolated`: the prompts batched, then one by one."""
    from apar_sgl.bench.workload import chat_prompts, vicuna_questions
    from apar_sgl.models import resolve_model

    path = resolve_model(None)
    questions = vicuna_questions()
    prompts = chat_prompts(path, [questions[i] for i in SMOLLM2_QUESTIONS])
    return path, [(prompts, SMOLLM2_GREEDY), *((p, SMOLLM2_GREEDY) for p in prompts)]
