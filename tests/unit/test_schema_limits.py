"""Caps on untrusted schemas, and random schemas through the splitter: a plan or a clear error."""

from __future__ import annotations

import json
import re

import pytest
from apar_sgl.dsl.leaf_bounds import tighten
from apar_sgl.dsl.schema_limits import plan_untrusted
from apar_sgl.dsl.schema_split import SchemaSplitError, split_schema
from apar_sgl.dsl.schema_walk import MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES, check_limits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _nested(depth: int) -> dict:
    schema: dict = {"type": "boolean"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def test_deep_nesting_is_refused_before_any_recursion():
    with pytest.raises(SchemaSplitError, match=r"^(/properties/x)+.*nested more than 64"):
        plan_untrusted(_nested(200), max_branches=64)
    with pytest.raises(SchemaSplitError, match="nested more than"):
        split_schema(_nested(5000))  # the DSL too: no RecursionError
    assert len(plan_untrusted(_nested(MAX_SCHEMA_DEPTH // 2 - 1), max_branches=1).branches) == 1


def test_huge_enum_and_long_pattern_are_refused_naming_where():
    enum = {"type": "object", "properties": {"c": {"enum": list(range(100_000))}}}
    with pytest.raises(SchemaSplitError, match=rf"^/properties/c/enum/\d+: .*{MAX_SCHEMA_NODES}"):
        check_limits(enum)
    long = {"type": "object", "properties": {"s": {"type": "string", "pattern": "a" * 1001}}}
    with pytest.raises(SchemaSplitError, match="^/properties/s/pattern: pattern is longer"):
        plan_untrusted(long, max_branches=8)


def test_branch_cap_names_the_first_leaf_past_it():
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(300)}}
    with pytest.raises(SchemaSplitError, match="^/properties/p64: the schema has 300 leaves"):
        plan_untrusted(wide, max_branches=64)
    assert len(plan_untrusted(wide, max_branches=300).branches) == 300


def test_empty_object_is_a_plan_with_no_branches():
    assert plan_untrusted({"type": "object", "properties": {}}, max_branches=1).branches == ()


def test_metaschema_errors_name_their_pointer():
    bad = {"type": "object", "properties": {"s": {"type": "string", "pattern": "(a"}}}
    with pytest.raises(SchemaSplitError, match="^/properties/s/pattern: "):
        plan_untrusted(bad, max_branches=8)


_KEYS = st.sampled_from(
    [
        "type", "properties", "items", "prefixItems", "required", "enum", "const", "$ref",
        "anyOf", "allOf", "oneOf", "minItems", "maxItems", "minLength", "maxLength", "pattern",
        "format", "additionalProperties", "$defs", "minimum", "maximum", "apar_sequential",
    ]
)  # fmt: skip
_ATOMS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["object", "array", "string", "integer", "number", "null", "boolean"]),
    st.sampled_from(["#", "#/$defs/a", "#/$defs/b", "#/properties/x", "#/nope", "(a", "^a+$"]),
    st.text(max_size=3),
)
_JSON = st.recursive(
    _ATOMS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_KEYS | st.sampled_from(["a", "b", "x"]), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(_JSON, st.booleans())
def test_random_schemas_give_a_plan_or_a_clear_error(body, as_object):
    schema = {"type": "object", "properties": {"x": body}} if as_object else body
    try:
        plan = plan_untrusted(schema, max_branches=16)
    except SchemaSplitError as exc:
        assert re.match(r"^/\S*: \S", str(exc)), str(exc)
        return
    assert len({b.pointer for b in plan.branches}) == len(plan.branches) <= 16
    for branch in plan.branches:
        bound = tighten(branch.schema)
        json.dumps(bound.schema)  # what goes to the engine serializes
        assert bound.max_tokens >= 1
