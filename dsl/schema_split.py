"""Split an object JSON schema into concurrently generated branches and assemble the results.

:func:`split_schema` turns a pydantic model class or a JSON schema dict into a :class:`SchemaPlan`:
one :class:`FieldBranch` per leaf, in schema order. Every property of an object is split
(recursively), and so is every item of a fixed-length array (``minItems == maxItems``, e.g. a
pydantic tuple). Anything else is a leaf generated whole under its self-contained sub-schema:
strings, numbers, enums, bools, variable-length arrays, dict-like objects (``additionalProperties``
schema), unions (``anyOf``/``oneOf``), recursive types. :func:`assemble` rebuilds the object from
the per-branch values and :func:`validate` checks it against the model or schema.

Scheduling contract, implemented by the runner:

* All properties are parallel unless marked sequential; a parallel branch sees only the prompt.
* A property is sequential when its schema has ``"apar_sequential": true`` (pydantic:
  ``Field(json_schema_extra={"apar_sequential": True})``) or its path is in ``sequential=``.
  Marking an object or fixed array marks every branch inside it.
* A sequential branch starts once every branch before it in plan order has finished and its prompt
  includes their values. :attr:`SchemaPlan.stages` groups branches by earliest start.
* Every property in ``properties`` is generated, optional ones included, unless ``fields=``
  selects a subset; the subset must keep every required property of the objects it enters.

Paths are tuples of property names and array indices; in ``sequential=``/``fields=`` they may
also be dotted strings (``"home.zip_code"``, ``"point.0"``).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from apar_sgl.dsl.schema_walk import SchemaSplitError, check_limits, escape_pointer

logger = logging.getLogger(__name__)

SEQUENTIAL_KEY = "apar_sequential"

Path = tuple[str | int, ...]

_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", SEQUENTIAL_KEY}
)
_COMMON_BLOCKERS = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "enum", "const")
_OBJECT_BLOCKERS = _COMMON_BLOCKERS + (
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "minProperties",
    "maxProperties",
    "unevaluatedProperties",
)
_ARRAY_BLOCKERS = _COMMON_BLOCKERS + (
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedItems",
)
_SUBSCHEMA_KEYS = frozenset(
    {"additionalProperties", "contains", "not", "if", "then", "else", "propertyNames"}
    | {"unevaluatedProperties", "unevaluatedItems", "additionalItems", "items"}
)
_SUBSCHEMA_MAP_KEYS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SUBSCHEMA_LIST_KEYS = frozenset({"prefixItems", "allOf", "anyOf", "oneOf"})


class AssembleError(ValueError):
    """Branch values do not match the plan's branches."""


class SchemaValidationError(ValueError):
    """An assembled object failed validation; ``errors`` holds (instance pointer, message)."""

    def __init__(self, errors: tuple[tuple[str, str], ...]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{pointer or '/'}: {message}" for pointer, message in errors))


@dataclass(frozen=True, slots=True)
class FieldBranch:
    """One independently generated value.

    ``pointer`` locates the value in the output object (RFC 6901), ``schema_pointer`` locates its
    schema in the source schema, following ``$ref`` logically. ``schema`` is self-contained: the
    ``$defs`` it needs are bundled in it. Do not mutate it. ``question`` names the field in
    words (owner's title, property names, description) for the branch's prompt.
    """

    path: Path
    pointer: str
    schema: dict[str, Any] = field(repr=False, hash=False)
    question: str  # the field in words, e.g. "The person's home city (where they live)"
    sequential: bool
    schema_pointer: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Obj:
    keys: tuple[str, ...]
    children: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Arr:
    children: tuple[_Node, ...]


_Node = _Obj | _Arr | tuple  # a bare tuple is a leaf: the branch path


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SchemaPlan:
    """Immutable split of one object schema; ``schema`` and ``model`` are what validation uses."""

    branches: tuple[FieldBranch, ...]
    schema: dict[str, Any]
    model: type | None
    _layout: _Obj

    @property
    def stages(self) -> tuple[tuple[FieldBranch, ...], ...]:
        """Branches grouped by earliest start: a sequential branch waits for all earlier ones."""
        levels: list[int] = []
        for branch in self.branches:
            levels.append(max(levels, default=-1) + 1 if branch.sequential and levels else 0)
        return tuple(
            tuple(b for b, lv in zip(self.branches, levels, strict=True) if lv == level)
            for level in range(max(levels, default=-1) + 1)
        )

    def branch(self, path: Path) -> FieldBranch:
        for candidate in self.branches:
            if candidate.path == path:
                return candidate
        raise KeyError(f"no branch at path {path!r}")

    def __repr__(self) -> str:
        name = self.model.__name__ if self.model else self.schema.get("title", "schema")
        labels = [_display(b.path) + ("*" if b.sequential else "") for b in self.branches]
        return f"SchemaPlan({name}, {len(self.branches)} branches: {', '.join(labels)})"


def split_schema(
    model_or_schema: type | Mapping[str, Any],
    *,
    sequential: Iterable[str | Path] = (),
    fields: Iterable[str | Path] | None = None,
) -> SchemaPlan:
    """Plan one branch per leaf of an object schema; raise SchemaSplitError before generating."""
    if _is_model(model_or_schema):
        model, schema = model_or_schema, model_or_schema.model_json_schema()
    elif isinstance(model_or_schema, Mapping):
        check_limits(model_or_schema, max_nodes=None)  # the copy and the walks below recurse
        model, schema = None, copy.deepcopy(dict(model_or_schema))
    else:
        raise TypeError(
            f"expected a pydantic model class or a schema dict, got {model_or_schema!r}"
        )
    splitter = _Splitter(
        schema, _selectors(sequential), None if fields is None else _selectors(fields)
    )
    layout = splitter.split_root()
    plan = SchemaPlan(tuple(splitter.branches), schema, model, layout)
    logger.debug("split schema: %r", plan)
    return plan


def assemble(plan: SchemaPlan, values: Mapping[Path, Any]) -> dict[str, Any]:
    """Build the object in schema order from ``{branch.path: parsed value}``."""
    known = {b.path for b in plan.branches}
    unknown = [p for p in values if p not in known]
    if unknown:
        raise AssembleError(f"values for paths that are not branches: {unknown!r}")
    for branch in plan.branches:
        if branch.path not in values:
            raise AssembleError(
                f"missing value for branch {_display(branch.path)} ({branch.pointer})"
            )
    return _build(plan._layout, values)


def validate(plan_or_model: SchemaPlan | type | Mapping[str, Any], obj: Any) -> Any:
    """Return a model instance (model given) or ``obj`` (dict schema given) if ``obj`` is valid."""
    target = plan_or_model
    if isinstance(target, SchemaPlan):
        target = target.model or target.schema
    if _is_model(target):
        from pydantic import ValidationError

        try:
            return target.model_validate(obj)
        except ValidationError as exc:
            errors = tuple((_pointer(e["loc"]), e["msg"]) for e in exc.errors())
            raise SchemaValidationError(errors) from exc
    if isinstance(target, Mapping):
        import jsonschema

        validator = jsonschema.validators.validator_for(target)(target)
        found = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
        if found:
            raise SchemaValidationError(
                tuple((_pointer(e.absolute_path), e.message) for e in found)
            )
        return obj
    raise TypeError(f"expected a SchemaPlan, pydantic model class or schema dict, got {target!r}")


class _Splitter:
    """Walks the schema once, following $ref logically, and collects branches."""

    def __init__(self, root: dict, sequential: set[tuple[str, ...]], fields: set | None) -> None:
        self.root = root
        self.sequential = sequential
        self.fields = fields
        self.matched_sequential: set[tuple[str, ...]] = set()
        self.matched_fields: set[tuple[str, ...]] = set()
        self.branches: list[FieldBranch] = []

    def split_root(self) -> _Obj:
        schema, targets = self._resolve(self.root, "")
        if _split_kind(schema) != "object":
            raise _fail(
                "", f"top-level schema must be an object with 'properties', got {_summary(schema)}"
            )
        ancestors = frozenset({id(self.root)} | {id(t) for _, t in targets})
        layout = self._split_object(schema, (), "", ancestors, self._is_sequential(schema, (), ""))
        checks = (
            ("sequential", self.sequential - self.matched_sequential),
            ("fields", (self.fields or set()) - self.matched_fields),
        )
        for label, unmatched_set in checks:
            unmatched = sorted(unmatched_set)
            if unmatched:
                raise SchemaSplitError(
                    f"{label} path {'.'.join(unmatched[0])!r} matches no property"
                )
        return layout

    def _walk(self, raw: Any, path: Path, where: str, ancestors: frozenset, seq: bool, hint: str):
        schema, targets = self._resolve(raw, where)
        kind = _split_kind(schema)
        seq = seq or self._is_sequential(schema, path, where)
        if kind is None:
            return self._leaf(schema, path, where, seq, hint)
        for ref, target in targets:
            if id(target) in ancestors:
                raise _fail(where, f"recursive $ref {ref!r} would need infinite splitting")
        ancestors = ancestors | {id(t) for _, t in targets}
        if kind == "object":
            return self._split_object(schema, path, where, ancestors, seq)
        return self._split_array(schema, path, where, ancestors, seq)

    def _split_object(self, schema: dict, path: Path, where: str, ancestors, seq: bool) -> _Obj:
        _reject_blockers(schema, _OBJECT_BLOCKERS, where)
        properties, required = schema["properties"], schema.get("required", [])
        if not isinstance(properties, dict):
            raise _fail(where, "'properties' must be an object")
        for name in required:
            if name not in properties:
                raise _fail(where, f"required property {name!r} not in properties")
        keys, children = [], []
        for name, sub in properties.items():
            child_path, child_where = path + (name,), f"{where}/properties/{escape_pointer(name)}"
            if not self._selected(child_path):
                if name in required:
                    raise _fail(child_where, "required property excluded by fields")
                continue
            keys.append(name)
            children.append(self._walk(sub, child_path, child_where, ancestors, seq, ""))
        return _Obj(tuple(keys), tuple(children))

    def _split_array(self, schema: dict, path: Path, where: str, ancestors, seq: bool) -> _Arr:
        _reject_blockers(schema, _ARRAY_BLOCKERS, where)
        if self.fields is not None and not any(_key(path)[: len(s)] == s for s in self.fields):
            raise _fail(where, "fields may not select part of a fixed array")
        prefix, items = schema.get("prefixItems", []), schema.get("items", True)
        children = []
        for i in range(schema.get("minItems", 0)):
            if i < len(prefix):
                sub, sub_where = prefix[i], f"{where}/prefixItems/{i}"
            elif items is False:
                raise _fail(where, f"item {i} is required but 'items' is false")
            else:
                sub, sub_where = items, f"{where}/items"
            hint = schema.get("description", "")
            children.append(self._walk(sub, path + (i,), sub_where, ancestors, seq, hint))
        return _Arr(tuple(children))

    def _leaf(self, schema: dict, path: Path, where: str, seq: bool, hint: str) -> Path:
        self.branches.append(
            FieldBranch(
                path=path,
                pointer=_pointer(path),
                schema=self._bundle(schema, where),
                question=self._question(schema, path, hint),
                sequential=seq,
                schema_pointer=where,
            )
        )
        return path

    def _question(self, schema: dict, path: Path, hint: str) -> str:
        """``The person's home city (where they live)``: the field in words, not as a key."""
        words = " ".join(f"#{p + 1}" if isinstance(p, int) else _words(p) for p in path)
        owner = self.root.get("title")
        subject = f"The {_words(owner)}'s {words}" if isinstance(owner, str) else f"The {words}"
        text = schema.get("description") or hint
        title = schema.get("title")
        if not text and isinstance(title, str) and _norm(title) != _norm(str(path[-1])):
            text = title
        return f"{subject} ({text})" if isinstance(text, str) and text else subject

    def _resolve(self, schema: Any, where: str) -> tuple[dict, list[tuple[str, Any]]]:
        """Follow $ref chains and one-item allOf, merging sibling keywords into the target."""
        schema, targets = _as_dict(schema, where), []
        while "$ref" in schema or len(schema.get("allOf", ())) == 1:
            if "$ref" in schema:
                ref = schema["$ref"]
                target = self._lookup(ref, where)
                if any(t is target for _, t in targets):
                    raise _fail(where, f"circular $ref {ref!r}")
                targets.append((ref, target))
                siblings = {k: v for k, v in schema.items() if k != "$ref"}
            else:
                target = schema["allOf"][0]
                siblings = {k: v for k, v in schema.items() if k != "allOf"}
            merged = dict(_as_dict(target, where))
            for key, value in siblings.items():
                if key in merged and merged[key] != value and key not in _ANNOTATIONS:
                    raise _fail(where, f"keyword {key!r} conflicts with its $ref target")
                merged[key] = value
            schema = merged
        return schema, targets

    def _lookup(self, ref: Any, where: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _fail(where, f"non-local $ref {ref!r} is not supported")
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            raise _fail(where, f"$ref {ref!r} is not a JSON pointer")
        node = self.root
        for token in fragment.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(token)] if isinstance(node, list) else node[token]
            except (KeyError, IndexError, ValueError, TypeError):
                raise _fail(where, f"unresolvable $ref {ref!r}") from None
        return node

    def _bundle(self, schema: dict, where: str) -> dict:
        """Copy a leaf schema, rewriting local refs to ``#/$defs/<name>`` and bundling targets."""
        names: dict[int, str] = {}
        defs: dict[str, Any] = {}
        pending: list[tuple[str, Any, str]] = []

        def rename(ref: Any, at: str) -> str:
            target = self._lookup(ref, at)
            if id(target) not in names:
                base = (
                    re.sub(r"[^A-Za-z0-9_.-]", "_", unquote(ref[1:]).rsplit("/", 1)[-1]) or "root"
                )
                name, n = base, 2
                while name in defs:
                    name, n = f"{base}_{n}", n + 1
                names[id(target)], defs[name] = name, None
                pending.append((name, target, unquote(ref[1:])))
            return f"#/$defs/{names[id(target)]}"

        def rewrite(node: Any, at: str) -> Any:
            if not isinstance(node, dict):
                return node
            for key in ("$dynamicRef", "$recursiveRef"):
                if key in node:
                    raise _fail(at, f"unsupported keyword {key!r}")
            out: dict[str, Any] = {}
            for key, value in node.items():
                sub = f"{at}/{escape_pointer(key)}"
                if key in (SEQUENTIAL_KEY, "$defs", "definitions"):
                    continue
                if key == "$ref":
                    out[key] = rename(value, at)
                elif key in _SUBSCHEMA_MAP_KEYS and isinstance(value, dict):
                    out[key] = {
                        k: rewrite(v, f"{sub}/{escape_pointer(k)}") for k, v in value.items()
                    }
                elif key in _SUBSCHEMA_LIST_KEYS | {"items"} and isinstance(value, list):
                    out[key] = [rewrite(v, f"{sub}/{i}") for i, v in enumerate(value)]
                elif key in _SUBSCHEMA_KEYS:
                    out[key] = rewrite(value, sub)
                else:
                    out[key] = copy.deepcopy(value)
            return out

        bundled = rewrite(schema, where)
        while pending:
            name, target, at = pending.pop()
            defs[name] = rewrite(target, at)
        if defs:
            bundled["$defs"] = defs
        return bundled

    def _is_sequential(self, schema: dict, path: Path, where: str) -> bool:
        flag = schema.get(SEQUENTIAL_KEY, False)
        if not isinstance(flag, bool):
            raise _fail(where, f"{SEQUENTIAL_KEY!r} must be a boolean")
        if _key(path) in self.sequential:
            self.matched_sequential.add(_key(path))
            return True
        return flag

    def _selected(self, path: Path) -> bool:
        if self.fields is None:
            return True
        key = _key(path)
        if key in self.fields:
            self.matched_fields.add(key)
        return any(key[: len(s)] == s or s[: len(key)] == key for s in self.fields)


def _split_kind(schema: dict) -> str | None:
    kind = schema.get("type")
    if "properties" in schema and kind in (None, "object"):
        return None if isinstance(schema.get("additionalProperties"), dict) else "object"
    if kind == "array":
        prefix, items = schema.get("prefixItems", []), schema.get("items", True)
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", len(prefix) if items is False else None)
        if isinstance(low, int) and low == high:
            return "array"
    return None


def _reject_blockers(schema: dict, keywords: tuple[str, ...], where: str) -> None:
    """Keywords that constrain several properties/items at once cannot be split."""
    for key in keywords:
        if key in schema and not (key == "uniqueItems" and schema[key] is False):
            raise _fail(where, f"unsupported keyword {key!r}")


def _fail(where: str, message: str) -> SchemaSplitError:
    return SchemaSplitError(f"{where or '/'}: {message}")


def _as_dict(schema: Any, where: str) -> dict:
    if schema is True:
        return {}
    if schema is False:
        raise _fail(where, "schema is false, no value is valid")
    if not isinstance(schema, dict):
        raise _fail(where, f"schema must be an object, got {schema!r}")
    return schema


def _build(node: _Node, values: Mapping[Path, Any]) -> Any:
    if isinstance(node, _Obj):
        return {k: _build(child, values) for k, child in zip(node.keys, node.children, strict=True)}
    if isinstance(node, _Arr):
        return [_build(child, values) for child in node.children]
    return values[node]


def _selectors(paths: Iterable[str | Path]) -> set[tuple[str, ...]]:
    if isinstance(paths, str):
        raise TypeError(f"expected an iterable of paths, got the string {paths!r}")
    out = set()
    for path in paths:
        key = tuple(path.split(".")) if isinstance(path, str) else _key(path)
        if not key or "" in key:
            raise SchemaSplitError(f"invalid path {path!r}")
        out.add(key)
    return out


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "model_json_schema", None))


def _key(path: Iterable[str | int]) -> tuple[str, ...]:
    return tuple(str(p) for p in path)


def _pointer(path: Iterable[Any]) -> str:
    return "".join(f"/{escape_pointer(p)}" for p in path)


def _display(path: Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _words(name: str) -> str:
    """``zipCode``/``zip_code`` -> ``zip code``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").strip().lower()


def _norm(text: str) -> str:
    return re.sub(r"[\s_-]", "", text).lower()


def _summary(schema: dict) -> str:
    return f"type {schema['type']!r}" if "type" in schema else f"keywords {sorted(schema)!r}"
