"""Skeleton-of-Thought (arXiv 2307.15337) for any model, written with the DSL's own ``fork``.

Stage 1 (:data:`outline`) asks for a skeleton under a regex, so that it always parses into at
most ``max_points`` numbered points of at most ``point_chars`` characters, or into the literal
:data:`NO_SKELETON`. That regex is the router: a question the model answers with
:data:`NO_SKELETON` or a single point goes to plain decoding. Stage 2 (:data:`expand`) forks one
branch per point; every branch sees the prompt and the whole skeleton (one shared, committed
prefix in the radix cache) and its assistant turn already begins with its point's head, so
the model writes on from there (small models follow a continuation better than an
instruction). The expansions join in point order.

:data:`skeleton` is both stages plus the fallback; the server's ``apar_mode: "skeleton"``
runs :data:`outline` and :data:`expand` and, on the plain route, SGLang's own chat handler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from apar_sgl.dsl.ops import DslError, assistant_begin, assistant_end, gen, system, user
from apar_sgl.dsl.program import function
from apar_sgl.dsl.run import finish_type
from apar_sgl.dsl.state import State

logger = logging.getLogger(__name__)

NO_SKELETON = "No list."
SKELETON_INSTRUCTION = (
    "You're an organizer responsible for only giving the skeleton (not the full content) for "
    "answering the question. Provide the skeleton in a list of points (numbered 1., 2., 3., "
    "etc.) to answer the question. Instead of writing a full sentence, each skeleton point "
    "should be very short with only 3~5 words. If the question asks for math, code, a short "
    f"fact or role play, answer only: {NO_SKELETON}\n\nQuestion: {{question}}"
)
EXPAND_INSTRUCTION = "Now write the full answer: expand every point in one or two sentences."
# An expansion stays on its point's line and says something: small models otherwise answer
# a head ending in ":" with a newline and sub-points, and the stop at "\n" leaves it empty.
POINT_REGEX = r"[^\n]*[A-Za-z0-9][^\n]*\n"
_LINE = re.compile(r"(\d+)\. ([^\n]*)")


@dataclass(frozen=True, slots=True)
class SkeletonOptions:
    """Bounds of one skeleton answer; invalid values raise :class:`DslError` (a ValueError)."""

    max_points: int = 6
    point_tokens: int = 64  # per point's expansion
    point_chars: int = 60  # per point's head in the skeleton
    max_tokens: int = 256  # the plain route's budget
    temperature: float = 0.0  # of the expansions and the plain route; the skeleton is greedy

    def __post_init__(self) -> None:
        for name in ("max_points", "point_tokens", "point_chars", "max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DslError(f"skeleton: {name} must be an integer >= 1, got {value!r}")
        if self.temperature < 0:
            raise DslError(f"skeleton: temperature must be >= 0, got {self.temperature!r}")

    @property
    def skeleton_tokens(self) -> int:
        """Enough for every point at one token per character (the regex ends it sooner)."""
        return self.max_points * (self.point_chars + 4)


class Outline(NamedTuple):
    """Stage 1's result: ``prefix`` is the text every expansion branch starts from."""

    route: str  # "skeleton" or "plain"
    points: tuple[str, ...]
    prefix: str
    meta: dict[str, Any]  # the skeleton generation's meta_info


class SkeletonAnswer(NamedTuple):
    route: str
    text: str  # the answer: the joined expansions, or the plain decoding
    points: tuple[str, ...]
    stats: dict[str, Any]


def skeleton_regex(max_points: int, point_chars: int) -> str:
    """``No list.`` or ``1. head\\n`` ... up to ``max_points`` lines, numbered in order."""
    head = rf"[^ \n][^\n]{{0,{point_chars - 1}}}"
    body = ""
    for n in range(max_points, 0, -1):
        body = rf"{n}\. {head}\n" + (f"({body})?" if body else "")
    return f"({re.escape(NO_SKELETON)}|{body})"


def parse_skeleton(text: str) -> tuple[str, ...]:
    """The heads of a skeleton's complete ``n. head`` lines, in order (a cut line is dropped)."""
    heads: list[str] = []
    complete = text[: text.rfind("\n") + 1]  # a last line without its newline was cut
    for line in complete.split("\n"):
        match = _LINE.fullmatch(line)
        if match and int(match.group(1)) == len(heads) + 1:
            heads.append(match.group(2).strip())
    return tuple(heads)


def route_of(points: Sequence[str]) -> str:
    return "skeleton" if len(points) >= 2 else "plain"


def plain_prompt(s: State, question: str, system_prompt: str | None) -> None:
    if system_prompt:
        s += system(system_prompt)
    s += user(question) + assistant_begin()


@function
def outline(s, question: str, *, system_prompt: str | None, options: SkeletonOptions) -> Outline:
    """Stage 1: the skeleton under its regex, and the route it implies."""
    if system_prompt:
        s += system(system_prompt)
    s += user(SKELETON_INSTRUCTION.format(question=question)) + assistant_begin()
    regex = skeleton_regex(options.max_points, options.point_chars)
    s += gen("skeleton", max_tokens=options.skeleton_tokens, regex=regex)
    points = parse_skeleton(s["skeleton"])
    s += assistant_end() + user(EXPAND_INSTRUCTION) + assistant_begin()
    return Outline(route_of(points), points, s.text, s.meta("skeleton"))


@function
def expand(s, plan: Outline, *, options: SkeletonOptions) -> SkeletonAnswer:
    """Stage 2: one branch per point on the shared prefix; the expansions join in order."""
    s += plan.prefix
    start = len(s.text)
    with s.fork(plan.points) as branches:
        for b in branches:
            b += f"{b.index + 1}. {b.item.rstrip('.:;, ')}:" + gen(
                "point",
                max_tokens=options.point_tokens,
                regex=POINT_REGEX,
                stop="\n",
                temperature=options.temperature,
            )
    metas = [b.meta("point") for b in s.branches]
    return SkeletonAnswer("skeleton", s.text[start:], plan.points, stats(plan, metas))


@function
def skeleton(
    s,
    question: str,
    *,
    system_prompt: str | None = None,
    max_points: int = 6,
    point_tokens: int = 64,
    point_chars: int = 60,
    max_tokens: int = 256,
    temperature: float = 0.0,
) -> SkeletonAnswer:
    """Answer ``question`` skeleton-then-expand, or by plain decoding where the router says.

    The result is ``state.ret``; on the plain route ``state["answer"]`` is exactly what
    ``system_prompt`` + ``question`` + ``gen(max_tokens=max_tokens)`` decodes.
    """
    options = SkeletonOptions(max_points, point_tokens, point_chars, max_tokens, temperature)
    if not isinstance(question, str) or not question.strip():
        raise DslError(f"skeleton: question must be a non-empty string, got {question!r}")
    backend = s._run.backend
    plan = outline.run(question, system_prompt=system_prompt, options=options, backend=backend)
    plan = plan.ret
    if plan.route == "plain":
        plain_prompt(s, question, system_prompt)
        s += gen("answer", max_tokens=max_tokens, temperature=temperature)
        return SkeletonAnswer("plain", s["answer"], plan.points, stats(plan, [s.meta("answer")]))
    return expand.fn(s, plan, options=options)  # on this state: its text is the answer's


def stats(plan: Outline, metas: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The answer's ``apar`` statistics; ``critical_path_steps`` counts decode steps."""
    skeleton_tokens = plan.meta["completion_tokens"]
    tokens = [m["completion_tokens"] for m in metas]
    return {
        "mode": "skeleton",
        "route": plan.route,
        "points": len(plan.points) if plan.route == "skeleton" else 0,
        "skeleton_tokens": skeleton_tokens,
        "answer_tokens": sum(tokens),
        "total_tokens": skeleton_tokens + sum(tokens),
        "critical_path_steps": skeleton_tokens + max(tokens, default=0),
        "cached_tokens": [m.get("cached_tokens", 0) for m in metas],
        "finish_reasons": [finish_type(m) for m in metas],
    }
