"""Prompts for the APAR corpus: hand-written templates x topic lists, in a fixed order.

Each template has a question type (advice, how-to, comparison, ...) and an answer style the
teacher is asked for: ``points`` ("head: details" list items), ``paragraphs`` (each opening
with a topic sentence) or ``short`` (a plain sentence or two). The style only chooses the
teacher's system prompt (`SYSTEM_PROMPTS`); the training pair keeps the bare user prompt.
None is a benchmark question: a unit test checks every prompt against the Vicuna file.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Literal, NamedTuple

from apar_sgl.train import prompt_topics as topics

logger = logging.getLogger(__name__)

Style = Literal["points", "paragraphs", "short"]

SYSTEM_PROMPTS: dict[str, str] = {
    "points": (
        "You are a helpful assistant. Answer with one short opening sentence, then a numbered "
        "list of 4 or 5 points, then stop. Write every point as a short heading, a colon and "
        "one or two sentences that explain it, for example:\n"
        "1. Plan ahead: Decide what you need before you begin, so nothing is missing later.\n"
        "2. Start small: Begin with one easy step and build on it once it feels natural."
    ),
    "paragraphs": (
        "You are a helpful assistant. Answer in 3 or 4 short paragraphs separated by blank "
        "lines. Each paragraph begins with a topic sentence that states its main idea, "
        "followed by two or three sentences that explain it. Do not use lists."
    ),
    "short": "You are a helpful assistant. Answer in one or two short sentences.",
}


class Prompt(NamedTuple):
    text: str
    structured: bool  # invites a list- or paragraph-shaped answer
    kind: str = "other"  # question type: advice, howto, comparison, ...
    style: Style = "points"  # what the teacher's system prompt asks for


class Template(NamedTuple):
    text: str  # "{}" per topic slot
    kind: str
    style: Style


def _templates(kind: str, *pairs: tuple[str, Style]) -> tuple[Template, ...]:
    return tuple(Template(text, kind, style) for text, style in pairs)


_ACTIVITY_TEMPLATES = _templates(
    "advice",
    ("What are some practical tips for {}?", "points"),
    ("What mistakes do beginners often make when {}, and how can they avoid them?", "points"),
    ("What should I know before {}?", "points"),
    ("How can I get better at {}?", "points"),
    ("What advice would you give a friend who is {}?", "paragraphs"),
    ("In one sentence, what is the most important tip for {}?", "short"),
) + _templates(
    "howto",
    ("List the key steps for {}.", "points"),
    ("Walk me through {} step by step.", "points"),
    ("What do I need to get started with {}?", "points"),
)
_PAIR_TEMPLATES = _templates(
    "comparison",
    ("Compare {} and {}. How do they differ?", "points"),
    ("How do {} and {} differ in cost, convenience and quality?", "points"),
    ("Which is better, {} or {}? Weigh both sides.", "paragraphs"),
    ("In what ways are {} and {} alike, and how are they different?", "paragraphs"),
    ("In one sentence, would you choose {} or {}, and why?", "short"),
)
_PROCESS_TEMPLATES = _templates(
    "explanation",
    ("Explain {} step by step.", "points"),
    ("Describe the main stages of {}.", "points"),
    ("What factors affect {}?", "points"),
    ("Explain {} to a curious ten-year-old.", "paragraphs"),
    ("Write a short explanation of {} in a few paragraphs.", "paragraphs"),
    ("Summarize {} in one sentence.", "short"),
)
_OCCASION_TEMPLATES = _templates(
    "planning",
    ("Suggest some creative ideas for {}.", "points"),
    ("Give me a list of ideas for {}, with a sentence on each.", "points"),
    ("Help me plan {}.", "points"),
    ("Make a checklist for {}.", "points"),
    ("What should I prepare for {}?", "points"),
)
_POSITION_TEMPLATES = _templates(
    "persuasion",
    ("Write a short persuasive argument for {}.", "paragraphs"),
    ("Convince a skeptical friend to consider {}.", "paragraphs"),
    ("What are the pros and cons of {}?", "points"),
    ("I am thinking about {}. Walk me through the main arguments for and against it.", "points"),
    ("What are the strongest reasons for {}?", "points"),
)
_HABIT_TEMPLATES = _templates(
    "benefits",
    ("What are the benefits of {}?", "points"),
    ("Give me some good reasons to try {}.", "points"),
    ("How does {} improve everyday life?", "paragraphs"),
    ("In one sentence, why is {} good for you?", "short"),
)
_SUBJECT_TEMPLATES = _templates(
    "writing",
    ("Write a short blog post about {}.", "paragraphs"),
    ("Write an outline for an essay on {}.", "points"),
    ("Write a few paragraphs about {}.", "paragraphs"),
    ("Write a short speech about {}.", "paragraphs"),
)
_TERM_TEMPLATES = _templates(
    "definition",
    ("What is {}? Answer in one or two sentences.", "short"),
    ("Define {} briefly.", "short"),
    ("In one short paragraph, explain what {} is.", "short"),
    ("Give a one-sentence definition of {}.", "short"),
)
_OBJECT_TEMPLATES = _templates(
    "fact",
    ("What is {} used for? Answer in one sentence.", "short"),
    ("What does {} do?", "short"),
)

_GROUPS: tuple[tuple[tuple[Template, ...], Sequence[str] | Sequence[tuple[str, str]]], ...] = (
    (_ACTIVITY_TEMPLATES, topics.ACTIVITIES),
    (_PAIR_TEMPLATES, topics.PAIRS),
    (_PROCESS_TEMPLATES, topics.PROCESSES),
    (_OCCASION_TEMPLATES, topics.OCCASIONS),
    (_POSITION_TEMPLATES, topics.POSITIONS),
    (_HABIT_TEMPLATES, topics.HABITS),
    (_SUBJECT_TEMPLATES, topics.SUBJECTS),
    (_TERM_TEMPLATES, topics.TERMS),
    (_OBJECT_TEMPLATES, topics.OBJECTS),
)


def build_prompts() -> tuple[Prompt, ...]:
    """Every template of a group filled with every topic of it, template-major, plus facts."""
    prompts = [
        _prompt(template, topic if isinstance(topic, tuple) else (topic,))
        for templates, group_topics in _GROUPS
        for template in templates
        for topic in group_topics
    ]
    prompts += [Prompt(fact, False, "fact", "short") for fact in topics.FACTS]
    return tuple(prompts)


def generation_order(prompts: Sequence[Prompt], seed: int = 0) -> list[Prompt]:
    """A seeded shuffle: any prefix of a run mixes topics, question types and styles."""
    return random.Random(seed).sample(list(prompts), len(prompts))


def system_prompt(prompt: Prompt) -> str:
    """The teacher's instruction for this prompt's answer style (never trained on)."""
    return SYSTEM_PROMPTS[prompt.style]


def _prompt(template: Template, slots: tuple[str, ...]) -> Prompt:
    text = template.text.format(*slots)
    return Prompt(
        text[:1].upper() + text[1:], template.style != "short", template.kind, template.style
    )


PROMPTS: tuple[Prompt, ...] = build_prompts()
