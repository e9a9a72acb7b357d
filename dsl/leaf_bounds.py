"""Tighten one leaf's schema so that its value always closes, and derive its token budget.

A parallel-JSON branch is a short request under its leaf's schema. A weak model under a loose
schema (a bare ``{"type": "string"}``) can write forever or fill the value with template
markup, so :func:`tighten` bounds every leaf before it is generated:

* **strings** without ``enum``/``const``/``format``/``pattern``: 1 to ``maxLength`` characters
  (:data:`DEFAULT_MAX_STRING_LENGTH` when the schema has none; pydantic's
  ``Field(max_length=...)`` sets it per field, ``gen_json(max_string_length=...)`` for all),
  first character neither whitespace nor ASCII punctuation (a small model otherwise opens
  with ``,`` and closes at once), and none of ``" \\ < > { } [ ]`` or control characters: no
  escapes, no markup or template runs (``<br>``, ``{name}``). An explicit ``minLength: 0``
  still allows the empty string. Written as one ``pattern``, since xgrammar ignores
  ``maxLength`` beside a ``pattern`` and SGLang rejects the pair.
* **integers and numbers** without ``minimum``/``maximum`` get ``±INTEGER_LIMIT``; with both
  bounds xgrammar also caps a number's fraction at 6 digits.
* **arrays** without ``maxItems`` get ``max(minItems, DEFAULT_MAX_ITEMS)``.
* enums, consts, booleans, null, objects with fixed properties and string formats with a fixed
  length (date, uuid) are bounded as they are.

The budget is the longest JSON text the tightened schema admits, in UTF-8 bytes (every token
covers at least one byte), plus one token for the end of sequence. A leaf nothing bounds
(a user ``pattern``, ``format: email``, recursive ``$ref``, ``{}``) gets
:data:`FALLBACK_TOKENS`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MAX_STRING_LENGTH = 40
DEFAULT_MAX_ITEMS = 8
INTEGER_LIMIT = 10**15 - 1
FALLBACK_TOKENS = 256
FRACTION_DIGITS = 6  # xgrammar's cap on a bounded number's fraction
EXCLUDED_CHARS = '"\\<>{}[]'
_CLASS = r'"\\<>{}\[\]\x00-\x1f\x7f'  # EXCLUDED_CHARS and control characters, as a regex class
_FORMAT_CHARS = {"date": 10, "uuid": 36, "ipv4": 15}
_BYTES_PER_CHAR = 4  # UTF-8 worst case


@dataclass(frozen=True, slots=True)
class LeafBound:
    """A tightened leaf schema, the longest JSON text it admits, and what bounds it."""

    schema: dict[str, Any]
    max_bytes: int | None  # None: nothing bounds the value's length
    description: str

    @property
    def max_tokens(self) -> int:
        return FALLBACK_TOKENS if self.max_bytes is None else self.max_bytes + 1


def tighten(
    schema: dict[str, Any], max_string_length: int = DEFAULT_MAX_STRING_LENGTH
) -> LeafBound:
    """Return the bounded copy of a self-contained leaf schema (``$defs`` bundled)."""
    if max_string_length < 1:
        raise ValueError(f"max_string_length must be >= 1, got {max_string_length}")
    walker = _Tightener(schema.get("$defs", {}), max_string_length)
    tightened, max_bytes = walker.node(schema)
    if "$defs" in schema:
        tightened["$defs"] = {name: walker.node(sub)[0] for name, sub in schema["$defs"].items()}
    return LeafBound(tightened, max_bytes, _describe(schema, max_bytes, max_string_length))


def string_pattern(min_length: int, max_length: int) -> str:
    """The tightened string language: no leading whitespace, no markup or control characters."""
    first, rest = f"[^\\s!-/:-@^_`|~{_CLASS}]", f"[^{_CLASS}]"
    body = f"{first}{rest}{{{max(min_length, 1) - 1},{max_length - 1}}}"
    return f"^{body}$" if min_length > 0 else f"^(?:{body})?$"


class _Tightener:
    def __init__(self, defs: dict[str, Any], max_string_length: int) -> None:
        self.defs = defs
        self.max_string_length = max_string_length
        self.resolving: set[str] = set()

    def node(self, schema: Any) -> tuple[Any, int | None]:
        if not isinstance(schema, dict):
            return schema, None  # true/false: anything or nothing
        out = {k: v for k, v in schema.items() if k != "$defs"}
        if "const" in schema:
            return out, _json_bytes(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return out, max(_json_bytes(v) for v in schema["enum"])
        bounds = []
        if "$ref" in schema:
            bounds.append(self._ref(schema["$ref"]))
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                parts = [self.node(sub) for sub in schema[key]]
                out[key] = [p[0] for p in parts]
                bounds.append(_largest(p[1] for p in parts))
        if isinstance(schema.get("allOf"), list):
            parts = [self.node(sub) for sub in schema["allOf"]]
            out["allOf"] = [p[0] for p in parts]
            bounds.extend(p[1] for p in parts)
        types = schema.get("type")
        if isinstance(types, str):
            types = [types]
        if isinstance(types, list):
            bounds.append(_largest(self._typed(out, schema, t) for t in types))
        known = [b for b in bounds if b is not None]
        return out, min(known) if known else None

    def _typed(self, out: dict, schema: dict, kind: str) -> int | None:
        if kind == "string":
            return self._string(out, schema)
        if kind in ("integer", "number"):
            return _number(out, schema, kind)
        if kind == "array":
            return self._array(out, schema)
        if kind == "object":
            return self._object(out, schema)
        return {"boolean": 5, "null": 4}.get(kind)

    def _string(self, out: dict, schema: dict) -> int | None:
        if "pattern" in schema:
            return None
        if "format" in schema:
            chars = _FORMAT_CHARS.get(schema["format"])
            return None if chars is None else chars + 2
        low, high = schema.get("minLength", 1), schema.get("maxLength", self.max_string_length)
        if not (isinstance(low, int) and isinstance(high, int)) or high < max(low, 1):
            return None  # leave a malformed or contradictory schema to the validator
        out.pop("minLength", None)
        out.pop("maxLength", None)
        out["pattern"] = string_pattern(low, high)
        return 2 + _BYTES_PER_CHAR * high

    def _array(self, out: dict, schema: dict) -> int | None:
        prefix = schema.get("prefixItems", [])
        parts = [self.node(sub) for sub in prefix] if isinstance(prefix, list) else []
        if parts:
            out["prefixItems"] = [p[0] for p in parts]
        items = schema.get("items", True)
        low = schema.get("minItems", 0)
        high = schema.get("maxItems")
        if items is False:
            high = len(parts) if high is None else min(high, len(parts))
        if high is None and isinstance(low, int):
            high = out["maxItems"] = max(low, DEFAULT_MAX_ITEMS)
        if not isinstance(high, int):
            return None
        item_bound = None
        if items is not False and high > len(parts):
            out["items"], item_bound = self.node(items)
            if item_bound is None:
                return None
        sizes = [p[1] for p in parts[:high]] + [item_bound] * (high - len(parts))
        if any(s is None for s in sizes):
            return None
        return 2 + sum(sizes) + max(len(sizes) - 1, 0)

    def _object(self, out: dict, schema: dict) -> int | None:
        extra = schema.get("additionalProperties")
        unbounded = extra is True or isinstance(extra, dict) or "patternProperties" in schema
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            return None
        parts = {name: self.node(sub) for name, sub in properties.items()}
        out["properties"] = {name: p[0] for name, p in parts.items()}
        if unbounded or any(p[1] is None for p in parts.values()):
            return None
        members = [_json_bytes(name) + 1 + p[1] for name, p in parts.items()]
        return 2 + sum(members) + max(len(members) - 1, 0)

    def _ref(self, ref: Any) -> int | None:
        prefix = "#/$defs/"
        if not isinstance(ref, str) or not ref.startswith(prefix) or ref in self.resolving:
            return None  # not bundled, or recursive: no finite bound
        target = self.defs.get(ref[len(prefix) :])
        if target is None:
            return None
        self.resolving.add(ref)
        try:
            return self.node(target)[1]
        finally:
            self.resolving.discard(ref)


def _number(out: dict, schema: dict, kind: str) -> int:
    limits = []
    for inclusive, exclusive, default in (
        ("minimum", "exclusiveMinimum", -INTEGER_LIMIT),
        ("maximum", "exclusiveMaximum", INTEGER_LIMIT),
    ):
        value = schema.get(inclusive, schema.get(exclusive))
        if not isinstance(value, int | float) or isinstance(value, bool):
            out[inclusive] = value = default
        limits.append(value)
    digits = max(len(str(int(abs(v)))) for v in limits) + (1 if min(limits) < 0 else 0)
    return digits if kind == "integer" else digits + 1 + FRACTION_DIGITS


def _largest(bounds) -> int | None:
    values = list(bounds)
    return None if not values or any(v is None for v in values) else max(values)


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _describe(schema: dict, max_bytes: int | None, max_string_length: int) -> str:
    """A short phrase for errors: what bounds this leaf."""
    if schema.get("type") == "string" and "maxLength" not in schema:
        if "pattern" in schema or "format" in schema:
            return "a string that only its own pattern or format bounds"
        return f"a string of at most {max_string_length} characters (default bound)"
    if schema.get("type") == "string":
        return f"a string of at most {schema['maxLength']} characters"
    if max_bytes is None:
        return "a value no bound limits"
    return f"a value of at most {max_bytes} bytes of JSON"
