"""Leaf tightening: bounded schemas keep every value the original allowed up to the bound."""

from __future__ import annotations

import json
import re
import string
from typing import Any

import jsonschema
import pytest
from apar_sgl.dsl.leaf_bounds import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_STRING_LENGTH,
    EXCLUDED_CHARS,
    FALLBACK_TOKENS,
    INTEGER_LIMIT,
    string_pattern,
    tighten,
)
from apar_sgl.dsl.schema_split import assemble, split_schema, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
# Characters a tightened string may hold: printable, none of the excluded markup characters.
_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters=EXCLUDED_CHARS
)


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


@st.composite
def _string(draw) -> tuple[dict, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if draw(st.booleans()):
        schema["maxLength"] = draw(st.integers(1, 60))
    if draw(st.booleans()):
        schema["minLength"] = draw(st.integers(0, min(3, schema.get("maxLength", 3))))
    high = schema.get("maxLength", DEFAULT_MAX_STRING_LENGTH)
    low = schema.get("minLength", 1)
    size = draw(st.integers(low, high))
    text = draw(st.text(_CHARS, min_size=size, max_size=size))
    if text and (text[0].isspace() or text[0] in string.punctuation):
        text = "x" + text[1:]
    return schema, text


@st.composite
def _number(draw) -> tuple[dict, Any]:
    kind = draw(st.sampled_from(["integer", "number"]))
    schema: dict[str, Any] = {"type": kind}
    low, high = -INTEGER_LIMIT, INTEGER_LIMIT
    if draw(st.booleans()):
        low = schema["minimum"] = draw(st.integers(-1000, 1000))
    if draw(st.booleans()):
        high = schema["maximum"] = draw(st.integers(max(low, -1000), max(low, 1000) + 5000))
    if kind == "integer":
        return schema, draw(st.integers(low, high))
    value = draw(st.decimals(low, high, places=2, allow_nan=False, allow_infinity=False))
    return schema, float(value)


_SCALAR = st.one_of(
    _string(),
    _number(),
    st.booleans().map(lambda v: ({"type": "boolean"}, v)),
    st.just(({"type": "null"}, None)),
    st.lists(st.text(max_size=8) | st.integers(), min_size=1, max_size=5, unique=True).flatmap(
        lambda values: st.sampled_from(values).map(lambda v: ({"enum": values}, v))
    ),
    st.dates().map(lambda d: ({"type": "string", "format": "date"}, d.isoformat())),
)


@st.composite
def _leaf(draw, depth: int = 2) -> tuple[dict, Any]:
    """A pydantic-style leaf schema and one value it accepts, within the default bounds."""
    choice = draw(st.integers(0, 3 if depth else 0))
    if choice == 0:
        return draw(_SCALAR)
    if choice == 1:  # Optional[...]
        schema, value = draw(_leaf(depth - 1))
        return {"anyOf": [schema, {"type": "null"}], "default": None}, draw(
            st.sampled_from([value, None])
        )
    if choice == 2:  # list[...]
        item, value = draw(_leaf(depth - 1))
        schema = {"type": "array", "items": item}
        if draw(st.booleans()):
            schema["maxItems"] = draw(st.integers(0, 4))
        return schema, [value] * draw(st.integers(0, schema.get("maxItems", DEFAULT_MAX_ITEMS)))
    parts = draw(st.dictionaries(st.sampled_from("abcd"), _leaf(depth - 1), max_size=3))
    schema = {
        "type": "object",
        "properties": {k: s for k, (s, _) in parts.items()},
        "required": sorted(parts),
    }
    return schema, {k: v for k, (_, v) in parts.items()}


@SETTINGS
@given(_leaf())
def test_tightened_leaf_accepts_every_original_value_within_the_bound(leaf):
    schema, value = leaf
    jsonschema.validate(value, schema)  # the drawn value is valid under the original
    bound = tighten(schema)
    jsonschema.validate(value, bound.schema)
    assert bound.max_bytes is not None and _json_bytes(value) <= bound.max_bytes
    assert bound.max_tokens == bound.max_bytes + 1


@SETTINGS
@given(_string(), st.data())
def test_tightened_strings_are_a_subset_of_the_original(leaf, data):
    schema, _ = leaf
    pattern = tighten(schema).schema["pattern"]
    text = data.draw(st.from_regex(re.compile(pattern.removesuffix("$") + r"\Z"), fullmatch=True))
    jsonschema.validate(text, schema)
    assert not set(text) & set(EXCLUDED_CHARS)
    assert not text or (not text[0].isspace() and text[0] not in string.punctuation)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["name", "age", "tags", "home"]), _leaf(), min_size=1))
def test_assembled_object_of_tightened_leaves_validates(fields):
    schema = {
        "type": "object",
        "title": "Thing",
        "properties": {k: s for k, (s, _) in fields.items()},
        "required": sorted(fields),
    }
    plan = split_schema(schema)
    values = {}
    for branch in plan.branches:
        value: Any = {k: v for k, (_, v) in fields.items()}
        for step in branch.path:
            value = value[step]
        jsonschema.validate(value, tighten(branch.schema).schema)
        values[branch.path] = value
    obj = assemble(plan, values)
    assert validate(plan, obj) == {k: v for k, (_, v) in fields.items()}


def test_strings_get_the_default_bound_and_a_markup_free_pattern():
    bound = tighten({"type": "string", "title": "Name"})
    assert "maxLength" not in bound.schema  # SGLang rejects maxLength beside a pattern
    pattern = bound.schema["pattern"]
    assert pattern == string_pattern(1, DEFAULT_MAX_STRING_LENGTH)
    too_long = "x" * (DEFAULT_MAX_STRING_LENGTH + 1)
    for bad in ("", " Ann", ", ", "'<NAME>'", "{name}", "a\nb", too_long):
        assert not re.search(pattern, bad), bad
    assert re.search(pattern, "Dana Kim, O'Neil & Co. 12")
    assert "at most 40 characters (default bound)" in bound.description


def test_pydantic_max_length_and_the_option_override_the_default():
    class Person(BaseModel):
        name: str = Field(max_length=12)
        city: str
        note: str = Field(min_length=0, max_length=5)

    plan = split_schema(Person)
    name, city, note = (tighten(b.schema, max_string_length=7) for b in plan.branches)
    assert name.schema["pattern"] == string_pattern(1, 12)
    assert city.schema["pattern"] == string_pattern(1, 7)
    assert re.search(note.schema["pattern"], "")  # minLength 0 keeps the empty string
    assert name.max_bytes == 2 + 4 * 12


def test_numbers_enums_and_arrays_are_bounded_by_the_grammar():
    assert tighten({"type": "integer"}).schema == {
        "type": "integer",
        "minimum": -INTEGER_LIMIT,
        "maximum": INTEGER_LIMIT,
    }
    assert tighten({"type": "integer", "minimum": 0, "maximum": 120}).max_bytes == 3
    assert tighten({"enum": ["EUR", "USD"]}).max_bytes == 5
    listed = tighten({"type": "array", "items": {"type": "boolean"}})
    assert listed.schema["maxItems"] == DEFAULT_MAX_ITEMS
    assert listed.max_bytes == 2 + DEFAULT_MAX_ITEMS * 5 + DEFAULT_MAX_ITEMS - 1


def test_unbounded_leaves_fall_back_to_a_fixed_budget():
    node = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"kids": {"$ref": "#/$defs/Node"}}}},
    }
    for schema in ({}, {"type": "string", "pattern": "^a+$"}, node):
        bound = tighten(schema)
        assert bound.max_bytes is None and bound.max_tokens == FALLBACK_TOKENS


def test_bad_option_is_rejected():
    with pytest.raises(ValueError, match="max_string_length"):
        tighten({"type": "string"}, max_string_length=0)
