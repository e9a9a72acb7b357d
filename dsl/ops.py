"""Program expressions: text, role markers, `gen`, `gen_json`, nested forks, and sequences.

A state executes them with ``state += expr``; ``"prefix " + gen("x")`` builds a sequence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from apar_sgl.dsl.leaf_bounds import DEFAULT_MAX_STRING_LENGTH

if TYPE_CHECKING:
    from apar_sgl.dsl.state import Fork

ROLES = ("system", "user", "assistant")
Role = Literal["system", "user", "assistant"]


class DslError(ValueError):
    """A program used the DSL wrongly (bad argument, misplaced expression)."""


class Expr:
    """Base of every program expression; ``+`` concatenates into a :class:`Seq`."""

    __slots__ = ()

    def __add__(self, other: Expr | str) -> Seq:
        return Seq(_items(self) + _items(as_expr(other)))

    def __radd__(self, other: Expr | str) -> Seq:
        return Seq(_items(as_expr(other)) + _items(self))


@dataclass(frozen=True, slots=True)
class Text(Expr):
    text: str


@dataclass(frozen=True, slots=True)
class RoleBegin(Expr):
    role: Role


@dataclass(frozen=True, slots=True)
class RoleEnd(Expr):
    role: Role


@dataclass(frozen=True, slots=True)
class Seq(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Gen(Expr):
    """Generate text into capture ``name`` under ``params`` (SGLang sampling params)."""

    name: str | None
    params: Mapping[str, Any] = field(hash=False)
    choices: tuple[str, ...] | None = None
    model: type | None = None


@dataclass(frozen=True, slots=True)
class GenJson(Expr):
    """Generate one JSON object, its leaves in parallel branches (see :mod:`.json_gen`)."""

    name: str
    target: Any = field(hash=False)  # pydantic model class or schema dict
    max_tokens: int | None  # per leaf; None: each leaf's budget follows from its bound
    temperature: float
    sequential: tuple[str, ...]
    parallel: bool
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH


def as_expr(value: Expr | str) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, str):
        return Text(value)
    raise DslError(f"cannot add {type(value).__name__} to a program state: {value!r}")


def _items(expr: Expr) -> tuple[Expr, ...]:
    return expr.items if isinstance(expr, Seq) else (expr,)


def flatten(expr: Expr) -> Iterable[Expr]:
    if isinstance(expr, Seq):
        for item in expr.items:
            yield from flatten(item)
    else:
        yield expr


def gen(
    name: str | None = None,
    *,
    max_tokens: int = 128,
    stop: str | Sequence[str] | None = None,
    temperature: float = 0.0,
    top_p: float | None = None,
    regex: str | None = None,
    choices: Sequence[str] | None = None,
    json_schema: Mapping[str, Any] | type | None = None,
    parallel: bool | Literal["auto"] = False,
) -> Gen:
    """Generate text; constrain it with one of ``regex``, ``choices`` or ``json_schema``.

    ``json_schema`` may be a schema dict or a pydantic model class (the capture is then a model
    instance). ``parallel="auto"`` asks an APAR model to fork by itself (per-request flag).
    """
    if max_tokens < 1:
        raise DslError(f"gen({name!r}): max_tokens must be >= 1, got {max_tokens}")
    if temperature < 0:
        raise DslError(f"gen({name!r}): temperature must be >= 0, got {temperature}")
    given = (("regex", regex), ("choices", choices), ("json_schema", json_schema))
    constraints = [k for k, v in given if v is not None]
    if len(constraints) > 1:
        raise DslError(f"gen({name!r}): use only one of {', '.join(constraints)}")
    if parallel not in (False, True, "auto"):
        raise DslError(f"gen({name!r}): parallel must be False, True or 'auto', got {parallel!r}")
    params: dict[str, Any] = {"max_new_tokens": max_tokens, "temperature": temperature}
    if top_p is not None:
        params["top_p"] = top_p
    if stop is not None:
        params["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise DslError(f"gen({name!r}): invalid regex {regex!r}: {exc}") from None
        params["regex"] = regex
    model = None
    if choices is not None:
        choices = tuple(choices)
        if not choices or not all(isinstance(c, str) and c for c in choices):
            raise DslError(f"gen({name!r}): choices must be non-empty strings, got {choices!r}")
        params["regex"] = "(" + "|".join(re.escape(c) for c in choices) + ")"
    if json_schema is not None:
        schema, model = schema_of(json_schema)
        params["json_schema"] = json.dumps(schema)
    params["custom_params"] = {"apar": bool(parallel)}
    return Gen(name, params, choices, model)


def select(name: str | None, choices: Sequence[str], *, temperature: float = 0.0) -> Gen:
    """Pick one of ``choices`` (grammar-constrained generation, not logprob ranking)."""
    longest = max((len(c) for c in choices), default=1)
    return gen(name, choices=choices, temperature=temperature, max_tokens=longest + 8)


def gen_json(
    name: str,
    model_or_schema: type | Mapping[str, Any],
    *,
    max_tokens: int | None = None,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    temperature: float = 0.0,
    sequential: Iterable[str] = (),
    parallel: bool = True,
) -> GenJson:
    """Generate an object of ``model_or_schema``, every leaf bounded so that it closes.

    Every leaf is its own branch, all parallel unless marked sequential (schema key
    ``apar_sequential`` or a dotted path in ``sequential``). ``parallel=False`` runs the
    same branches one after another (the reference for tests and benchmarks). Strings without
    their own ``maxLength`` get ``max_string_length`` (see :mod:`.leaf_bounds`); each leaf's
    token budget follows from its bound unless ``max_tokens`` caps every leaf.
    """
    from apar_sgl.dsl.schema_split import split_schema

    if max_tokens is not None and max_tokens < 1:
        raise DslError(f"gen_json({name!r}): max_tokens must be >= 1, got {max_tokens}")
    if max_string_length < 1:
        raise DslError(
            f"gen_json({name!r}): max_string_length must be >= 1, got {max_string_length}"
        )
    if isinstance(sequential, str):
        raise DslError(f"gen_json({name!r}): sequential must be a list of paths, not a string")
    split_schema(model_or_schema, sequential=tuple(sequential))  # fail before any generation
    return GenJson(
        name,
        model_or_schema,
        max_tokens,
        temperature,
        tuple(sequential),
        parallel,
        max_string_length,
    )


def schema_of(model_or_schema: Mapping[str, Any] | type) -> tuple[dict[str, Any], type | None]:
    if isinstance(model_or_schema, type) and hasattr(model_or_schema, "model_json_schema"):
        return model_or_schema.model_json_schema(), model_or_schema
    if isinstance(model_or_schema, Mapping):
        return dict(model_or_schema), None
    raise DslError(f"expected a JSON schema dict or pydantic model class, got {model_or_schema!r}")


def system(content: Expr | str) -> Seq:
    return _role("system", content)


def user(content: Expr | str) -> Seq:
    return _role("user", content)


def assistant(content: Expr | str) -> Seq:
    """An assistant turn; ``content`` may hold ``gen`` expressions."""
    return _role("assistant", content)


def assistant_begin() -> RoleBegin:
    return RoleBegin("assistant")


def assistant_end() -> RoleEnd:
    return RoleEnd("assistant")


def _role(role: Role, content: Expr | str) -> Seq:
    return Seq((RoleBegin(role), *_items(as_expr(content)), RoleEnd(role)))


class ForkExpr(Expr):
    """A nested fork recorded inside a branch (its `Fork` runs when the branch runs)."""

    __slots__ = ("fork",)

    def __init__(self, fork: Fork) -> None:
        self.fork = fork
