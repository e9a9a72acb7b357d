"""``gen_json``: one JSON object, each leaf generated in its own schema-constrained branch.

The plan comes from :func:`apar_sgl.dsl.schema_split.split_schema`. A branch's prompt is the
state's text followed by its field asked in words ("The person's name: "); a sequential branch
also sees the values of every branch before it (the planner's rule). Each branch runs under its
leaf schema tightened by :func:`apar_sgl.dsl.leaf_bounds.tighten`, with the token budget that
bound implies, so its value closes. All branches of a stage go out as one batch on the
shared, already committed prefix. Nothing is captured unless every branch finished, parsed,
and the assembled object validated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from apar_sgl.dsl.backend import Completion, Request
from apar_sgl.dsl.leaf_bounds import FRACTION_DIGITS, INTEGER_LIMIT, LeafBound, tighten
from apar_sgl.dsl.ops import GenJson
from apar_sgl.dsl.run import GenerationError, Step, commit_request, finish_type
from apar_sgl.dsl.schema_split import (
    FieldBranch,
    Path,
    SchemaPlan,
    SchemaValidationError,
    assemble,
    split_schema,
    validate,
)

if TYPE_CHECKING:
    from apar_sgl.dsl.state import State

logger = logging.getLogger(__name__)


class BranchError(GenerationError):
    """One property's branch failed; ``path`` is its property path."""

    def __init__(self, branch: FieldBranch, message: str) -> None:
        self.path = branch.path
        super().__init__(f"{display(branch.path)} ({branch.pointer or '/'}): {message}")


class JsonResult(NamedTuple):
    obj: dict[str, Any]  # as generated, in schema order
    value: Any  # validated: a model instance (model given) or ``obj``
    metas: dict[str, dict[str, Any]]  # each branch's meta_info by its pointer


def run_gen_json(state: State, expr: GenJson) -> Step:
    plan = split_schema(expr.target, sequential=expr.sequential)
    label = f"{state.label}.{expr.name}" if state.label else expr.name
    committed = state._committed >= len(state._text)
    result = yield from generate_json(plan, expr, state._text, label, committed=committed)
    state._append(json.dumps(result.obj))
    state._capture(expr.name, result.value, result.metas)
    state._committed = len(state._text)


def generate_json(
    plan: SchemaPlan, expr: GenJson, prefix: str, label: str, *, committed: bool = False
) -> Generator[list[Request], list[Completion], JsonResult]:
    """Yield the branch batches of ``plan`` after ``prefix`` stage by stage; return the object.

    Backend-agnostic: whoever drives the step sends each batch together (the DSL's executor,
    or the server's parallel-JSON route on the tokenizer manager). ``committed`` says that
    ``prefix`` is already in the radix cache.
    """
    levels = {b.path: level for level, stage in enumerate(plan.stages) for b in stage}
    stages = plan.stages if expr.parallel else tuple((b,) for st in plan.stages for b in st)
    if expr.parallel and plan.stages and len(plan.stages[0]) > 1 and not committed:
        yield [commit_request(prefix, f"{label}:prefix")]
    bounds = {b.path: tighten(b.schema, expr.max_string_length) for b in plan.branches}
    regexes = {b.path: open_number_regex(b) for b in plan.branches}
    values: dict[Path, Any] = {}
    metas: dict[str, dict[str, Any]] = {}
    for stage in stages:
        requests = []
        for b in stage:
            seen = [(p, values[p.path]) for p in plan.branches if levels[p.path] < levels[b.path]]
            params = leaf_params(bounds[b.path], expr, regexes[b.path])
            requests.append(Request(branch_prompt(prefix, b, seen), params, label + b.pointer))
        completions = yield requests
        for b, request, completion in zip(stage, requests, completions, strict=True):
            budget = request.params["max_new_tokens"]
            terminated = regexes[b.path] is not None
            values[b.path] = parse_leaf(b, completion, budget, bounds[b.path], terminated)
            metas[b.pointer] = completion.meta
    obj = assemble(plan, values)
    return JsonResult(obj, validate_result(plan, obj), metas)


def branch_prompt(prefix: str, branch: FieldBranch, seen: list[tuple[FieldBranch, Any]]) -> str:
    """``prefix``, the values this branch may see, its field in words, then a JSON opening.

    The opening (``{"city": ``) puts a small model in the JSON it writes best; the words
    above it say what the value means.
    """
    lines = [f"{p.question}: {json.dumps(v)}\n" for p, v in seen]
    separator = "" if not prefix or prefix[-1].isspace() else "\n"
    keys = [p for p in branch.path if isinstance(p, str)]
    opening = f"{{{json.dumps(keys[-1])}: " + ("[" if isinstance(branch.path[-1], int) else "")
    return f"{prefix}{separator}{''.join(lines)}{branch.question}:\n{opening}"


def open_number_regex(branch: FieldBranch) -> str | None:
    """A regex for a number leaf with no upper bound of its own (and none or 0 below), or None.

    After a number's digits a model writes the ``,`` or ``}`` that follows a JSON value, never
    the end of the text; under the number's schema alone neither is allowed, so it writes
    digits up to the 15-digit default bound (``"age": 452123212312321``). Generated as the
    digits then that delimiter, it ends where the model ends it; the delimiter is cut off.
    """
    schema = branch.schema
    kind = schema.get("type")
    if kind not in ("integer", "number") or isinstance(branch.path[-1], int):
        return None
    if any(key in schema for key in ("enum", "const", "maximum", "exclusiveMaximum")):
        return None
    if schema.get("minimum", 0) != 0 or "exclusiveMinimum" in schema:
        return None
    digits = len(str(INTEGER_LIMIT))
    sign = "" if "minimum" in schema else "-?"
    fraction = rf"(\.[0-9]{{1,{FRACTION_DIGITS}}})?" if kind == "number" else ""
    return rf"{sign}(0|[1-9][0-9]{{0,{digits - 1}}}){fraction}[,}}]"


def leaf_params(bound: LeafBound, expr: GenJson, regex: str | None = None) -> dict[str, Any]:
    """Sampling parameters of one leaf: its tightened schema, or `regex` (one more token)."""
    params = {
        "max_new_tokens": expr.max_tokens or bound.max_tokens + (regex is not None),
        "temperature": expr.temperature,
        "custom_params": {"apar": False},
    }
    if regex is None:
        return params | {"json_schema": json.dumps(bound.schema)}
    return params | {"regex": regex}


def parse_leaf(
    branch: FieldBranch,
    completion: Completion,
    budget: int,
    bound: LeafBound,
    terminated: bool = False,
) -> Any:
    """The leaf's value; `terminated`: its text ends with a delimiter to cut off."""
    if finish_type(completion.meta) == "abort":
        reason = completion.meta.get("finish_reason")
        message = reason.get("message") if isinstance(reason, dict) else None
        raise BranchError(branch, f"aborted: {message or 'no reason given'}")
    if finish_type(completion.meta) == "length":
        raise BranchError(
            branch,
            f"value did not finish within max_tokens={budget} (bound: {bound.description}); "
            f"generated {completion.text[:80]!r}",
        )
    text = completion.text[:-1] if terminated else completion.text
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise BranchError(branch, f"output is not JSON ({exc}): {completion.text[:80]!r}") from None


def validate_result(plan: SchemaPlan, obj: Mapping[str, Any]) -> Any:
    try:
        return validate(plan, obj)
    except SchemaValidationError as exc:
        raise GenerationError(f"assembled object is invalid: {exc}") from exc


def display(path: Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
