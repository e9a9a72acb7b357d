from __future__ import annotations

import re
from enum import Enum
from typing import Any

import jsonschema
import pytest
from apar_sgl.dsl.schema_split import (
    AssembleError,
    FieldBranch,
    SchemaPlan,
    SchemaSplitError,
    SchemaValidationError,
    assemble,
    split_schema,
    validate,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

SEQ = {"apar_sequential": True}


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str = Field(description="Street and number")
    zip_code: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    name: str = Field(description="Full name")
    age: int = Field(ge=0)
    color: Color
    tags: list[str]
    point: tuple[int, int]
    nickname: str | None = None
    home: Address
    work: Address = Field(description="Office address", json_schema_extra=SEQ)
    summary: str = Field(json_schema_extra=SEQ)


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Loop(BaseModel):
    value: int
    child: Loop


PERSON = Person(
    name="Ada",
    age=36,
    color=Color.GREEN,
    tags=["math", "engines"],
    point=(3, -4),
    nickname=None,
    home=Address(street="1 Main St", zip_code="12345"),
    work=Address(street="2 Side St", zip_code="54321"),
    summary="Wrote the first program.",
)

PERSON_PATHS = [
    ("name",),
    ("age",),
    ("color",),
    ("tags",),
    ("point", 0),
    ("point", 1),
    ("nickname",),
    ("home", "street"),
    ("home", "zip_code"),
    ("work", "street"),
    ("work", "zip_code"),
    ("summary",),
]


def values_from(plan: SchemaPlan, obj: Any) -> dict:
    out = {}
    for branch in plan.branches:
        value = obj
        for key in branch.path:
            value = value[key]
        out[branch.path] = value
    return out


def test_pydantic_model_splits_into_leaves_in_schema_order():
    plan = split_schema(Person)
    assert [b.path for b in plan.branches] == PERSON_PATHS
    assert plan.branch(("home", "zip_code")).pointer == "/home/zip_code"
    assert plan.branch(("point", 1)).pointer == "/point/1"
    assert plan.branch(("point", 1)).schema_pointer == "/properties/point/prefixItems/1"
    assert plan.branch(("home", "zip_code")).schema_pointer == (
        "/properties/home/properties/zip_code"
    )


def test_leaf_schemas_are_self_contained():
    plan = split_schema(Person)
    assert plan.branch(("color",)).schema == {
        "enum": ["red", "green"],
        "title": "Color",
        "type": "string",
    }
    assert plan.branch(("tags",)).schema["items"] == {"type": "string"}
    assert plan.branch(("point", 0)).schema == {"type": "integer"}
    assert plan.branch(("home", "zip_code")).schema["pattern"] == r"^\d{5}$"
    nickname = plan.branch(("nickname",)).schema
    assert nickname["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert all("$ref" not in str(b.schema) for b in plan.branches)
    assert all("apar_sequential" not in str(b.schema) for b in plan.branches)


def test_questions_name_the_field_in_words_and_skip_auto_titles():
    plan = split_schema(Person)
    assert plan.branch(("name",)).question == "The person's name (Full name)"
    assert plan.branch(("home", "street")).question == (
        "The person's home street (Street and number)"
    )
    assert plan.branch(("home", "zip_code")).question == "The person's home zip code"
    assert plan.branch(("point", 0)).question == "The person's point #1"


def test_sequential_marks_from_field_option_are_inherited():
    plan = split_schema(Person)
    sequential = [b.path for b in plan.branches if b.sequential]
    assert sequential == [("work", "street"), ("work", "zip_code"), ("summary",)]


def test_stages_put_parallel_branches_first_and_chain_sequential_ones():
    stages = split_schema(Person).stages
    assert [[b.path for b in stage] for stage in stages] == [
        [p for p in PERSON_PATHS if p[0] not in ("work", "summary")],
        [("work", "street")],
        [("work", "zip_code")],
        [("summary",)],
    ]


def test_stages_start_later_parallel_branches_immediately():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
    }
    stages = split_schema(schema, sequential=["b"]).stages
    assert [[b.path for b in stage] for stage in stages] == [[("a",), ("c",)], [("b",)]]


def test_sequential_argument_accepts_dotted_and_tuple_paths():
    plan = split_schema(Person, sequential=("home.zip_code", ("point", 0)))
    assert plan.branch(("home", "zip_code")).sequential
    assert plan.branch(("point", 0)).sequential
    assert not plan.branch(("home", "street")).sequential
    assert not plan.branch(("point", 1)).sequential


def test_round_trip_pydantic():
    obj = PERSON.model_dump(mode="json")
    plan = split_schema(Person)
    assembled = assemble(plan, values_from(plan, obj))
    assert assembled == obj
    assert list(assembled) == list(Person.model_fields)
    assert validate(plan, assembled) == PERSON
    assert validate(Person, assembled) == PERSON


def test_round_trip_dict_schema_validates_with_jsonschema():
    schema = Person.model_json_schema()
    obj = PERSON.model_dump(mode="json")
    plan = split_schema(schema)
    assert plan.model is None
    assembled = assemble(plan, values_from(plan, obj))
    assert assembled == obj
    assert validate(plan, assembled) is assembled
    for branch in plan.branches:
        jsonschema.validate(values_from(plan, obj)[branch.path], branch.schema)


def test_recursive_model_is_split_with_recursive_leaf():
    plan = split_schema(Node)
    assert [b.path for b in plan.branches] == [("value",), ("children",)]
    children = plan.branch(("children",)).schema
    assert children["items"] == {"$ref": "#/$defs/Node"}
    assert set(children["$defs"]) == {"Node"}
    tree = [{"value": 2, "children": [{"value": 3, "children": []}]}]
    jsonschema.validate(tree, children)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"value": "x"}], children)
    node = validate(plan, assemble(plan, {("value",): 1, ("children",): tree}))
    assert node.children[0].children[0].value == 3


def test_recursive_required_model_is_rejected():
    with pytest.raises(
        SchemaSplitError,
        match=re.escape("/properties/child: recursive $ref '#/$defs/Loop' would need infinite"),
    ):
        split_schema(Loop)


def test_fixed_list_and_items_after_prefix():
    schema = {
        "type": "object",
        "properties": {
            "xs": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3},
            "pair": {
                "type": "array",
                "prefixItems": [{"type": "string"}],
                "items": {"type": "null"},
                "minItems": 2,
                "maxItems": 2,
            },
            "tup": {
                "type": "array",
                "prefixItems": [{"type": "boolean"}],
                "items": False,
                "minItems": 1,
            },
            "empty": {"type": "array", "minItems": 0, "maxItems": 0},
            "var": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2},
        },
    }
    plan = split_schema(schema)
    assert [b.path for b in plan.branches] == [
        ("xs", 0),
        ("xs", 1),
        ("xs", 2),
        ("pair", 0),
        ("pair", 1),
        ("tup", 0),
        ("var",),
    ]
    assert plan.branch(("pair", 1)).schema == {"type": "null"}
    values = {b.path: i for i, b in enumerate(plan.branches)}
    assert assemble(plan, values) == {
        "xs": [0, 1, 2],
        "pair": [3, 4],
        "tup": [5],
        "empty": [],
        "var": 6,
    }


def test_dict_like_objects_and_unions_are_leaves():
    schema = {
        "type": "object",
        "properties": {
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "mixed": {"type": "object", "properties": {"a": {}}, "additionalProperties": {}},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "anything": True,
        },
    }
    plan = split_schema(schema)
    assert [b.path for b in plan.branches] == [("counts",), ("mixed",), ("either",), ("anything",)]
    assert plan.branch(("anything",)).schema == {}


def test_refs_with_siblings_and_single_allof_are_merged():
    schema = {
        "type": "object",
        "$defs": {"Zip": {"type": "string", "title": "Zip"}},
        "properties": {
            "a": {"$ref": "#/$defs/Zip", "description": "postal code"},
            "b": {"allOf": [{"$ref": "#/$defs/Zip"}], "maxLength": 5},
        },
    }
    plan = split_schema(schema)
    assert plan.branch(("a",)).schema == {
        "type": "string",
        "title": "Zip",
        "description": "postal code",
    }
    assert plan.branch(("b",)).schema == {"type": "string", "title": "Zip", "maxLength": 5}
    assert plan.branch(("a",)).question == "The a (postal code)"


def test_bundled_defs_rename_colliding_names():
    schema = {
        "type": "object",
        "$defs": {"T": {"type": "string"}},
        "definitions": {"T": {"type": "integer"}},
        "properties": {
            "u": {"anyOf": [{"$ref": "#/$defs/T"}, {"$ref": "#/definitions/T"}]},
        },
    }
    leaf = split_schema(schema).branch(("u",)).schema
    assert leaf["anyOf"] == [{"$ref": "#/$defs/T"}, {"$ref": "#/$defs/T_2"}]
    assert leaf["$defs"] == {"T": {"type": "string"}, "T_2": {"type": "integer"}}


def test_fields_subset_skips_optional_properties():
    keep = [name for name in Person.model_fields if name != "nickname"]
    plan = split_schema(Person, fields=keep)
    assert ("nickname",) not in [b.path for b in plan.branches]
    obj = PERSON.model_dump(mode="json")
    assembled = assemble(plan, values_from(plan, obj))
    assert "nickname" not in assembled
    assert validate(plan, assembled) == PERSON


def test_plan_is_frozen_and_has_a_short_repr():
    plan = split_schema(Person)
    with pytest.raises(AttributeError):
        plan.branches = ()
    assert repr(plan).startswith("SchemaPlan(Person, 12 branches: name, age, color, tags, point[0]")
    assert "work.street*" in repr(plan)
    assert "'type'" not in repr(plan.branches[0])
    assert isinstance(plan.branches[0], FieldBranch)


def test_source_schema_is_copied():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    plan = split_schema(schema)
    schema["properties"]["a"]["type"] = "integer"
    assert plan.schema["properties"]["a"]["type"] == "string"
    assert plan.branch(("a",)).schema == {"type": "string"}


def _obj(**properties: Any) -> dict:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            _obj(address=_obj(zip={**_obj(d={"type": "string"}), "patternProperties": {"^x": {}}})),
            "/properties/address/properties/zip: unsupported keyword 'patternProperties'",
        ),
        (_obj(a={"$ref": "#/$defs/Nope"}), "/properties/a: unresolvable $ref '#/$defs/Nope'"),
        (_obj(a={"$ref": "other.json#/x"}), "/properties/a: non-local $ref 'other.json#/x'"),
        (_obj(a={"$ref": "#foo"}), "/properties/a: $ref '#foo' is not a JSON pointer"),
        (
            {
                **_obj(a={"$ref": "#/$defs/A"}),
                "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}},
            },
            "/properties/a: circular $ref '#/$defs/A'",
        ),
        (_obj(a={"$ref": "#"}), "/properties/a: recursive $ref '#' would need infinite"),
        (
            _obj(tags={"type": "array", "items": {"$ref": "#/$defs/Missing"}}),
            "/properties/tags/items: unresolvable $ref '#/$defs/Missing'",
        ),
        (
            _obj(tags={"type": "array", "items": {"$dynamicRef": "#meta"}}),
            "/properties/tags/items: unsupported keyword '$dynamicRef'",
        ),
        ({"type": "string"}, "/: top-level schema must be an object with 'properties', got type"),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            "/: top-level schema must be an object",
        ),
        ({**_obj(a={}), "anyOf": [{"required": ["a"]}, {}]}, "/: unsupported keyword 'anyOf'"),
        (
            _obj(p={"type": "array", "minItems": 2, "maxItems": 2, "uniqueItems": True}),
            "/properties/p: unsupported keyword 'uniqueItems'",
        ),
        (
            _obj(
                p={
                    "type": "array",
                    "prefixItems": [{}],
                    "items": False,
                    "minItems": 2,
                    "maxItems": 2,
                }
            ),
            "/properties/p: item 1 is required but 'items' is false",
        ),
        ({**_obj(a={}), "required": ["b"]}, "/: required property 'b' not in properties"),
        ({"type": "object", "properties": []}, "/: 'properties' must be an object"),
        (_obj(a=False), "/properties/a: schema is false"),
        (_obj(a=3), "/properties/a: schema must be an object, got 3"),
        (
            _obj(a={"type": "string", "apar_sequential": "yes"}),
            "/properties/a: 'apar_sequential' must be a boolean",
        ),
        (
            {
                **_obj(a={"$ref": "#/$defs/S", "type": "integer"}),
                "$defs": {"S": {"type": "string"}},
            },
            "/properties/a: keyword 'type' conflicts with its $ref target",
        ),
    ],
)
def test_invalid_schemas_raise_with_pointer(schema: dict, message: str):
    with pytest.raises(SchemaSplitError, match=re.escape(message)):
        split_schema(schema)


def test_schema_split_error_is_a_value_error():
    assert issubclass(SchemaSplitError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sequential": ["home.city"]}, "sequential path 'home.city' matches no property"),
        ({"fields": [*Person.model_fields, "nope"]}, "fields path 'nope' matches no property"),
        ({"fields": [*Person.model_fields, "tags.0"]}, "fields path 'tags.0' matches no"),
        ({"fields": ["home.street"]}, "/properties/name: required property excluded by fields"),
        (
            {"fields": Person.model_fields.keys() - {"home"} | {"home.street"}},
            "/properties/home/properties/zip_code: required property excluded by fields",
        ),
        (
            {"fields": Person.model_fields.keys() - {"point"} | {"point.0"}},
            "/properties/point: fields may not select part of a fixed array",
        ),
        ({"sequential": ["a..b"]}, "invalid path 'a..b'"),
    ],
)
def test_bad_paths_raise(kwargs: dict, message: str):
    with pytest.raises(SchemaSplitError, match=re.escape(message)):
        split_schema(Person, **kwargs)


def test_non_schema_input_raises_type_error():
    with pytest.raises(TypeError, match="pydantic model class or a schema dict"):
        split_schema(42)
    with pytest.raises(TypeError, match="iterable of paths"):
        split_schema(Person, sequential="name")


def test_assemble_reports_missing_and_unknown_paths():
    plan = split_schema(Person)
    values = values_from(plan, PERSON.model_dump(mode="json"))
    del values[("home", "zip_code")]
    with pytest.raises(AssembleError, match=re.escape("home.zip_code (/home/zip_code)")):
        assemble(plan, values)
    values[("home", "zip_code")] = "12345"
    values[("home", "city")] = "x"
    with pytest.raises(AssembleError, match=re.escape("('home', 'city')")):
        assemble(plan, values)


def test_validate_names_failing_path_for_model_and_dict_schema():
    obj = PERSON.model_dump(mode="json")
    obj["home"]["zip_code"] = "abc"
    with pytest.raises(SchemaValidationError, match=re.escape("/home/zip_code: String should")):
        validate(Person, obj)
    with pytest.raises(
        SchemaValidationError, match=re.escape("/home/zip_code: 'abc' does not")
    ) as e:
        validate(Person.model_json_schema(), obj)
    assert e.value.errors[0][0] == "/home/zip_code"
    with pytest.raises(TypeError):
        validate(42, obj)


_LEAF_VALUES = st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none())


def _schema_and_value(depth: int) -> st.SearchStrategy[tuple[dict, Any]]:
    leaf = _LEAF_VALUES.map(lambda v: ({}, v))
    if depth == 0:
        return leaf
    child = _schema_and_value(depth - 1)
    obj = st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), child, max_size=3).map(
        lambda d: (_obj(**{k: s for k, (s, _) in d.items()}), {k: v for k, (_, v) in d.items()})
    )
    arr = st.lists(child, max_size=3).map(
        lambda xs: (
            {
                "type": "array",
                "prefixItems": [s for s, _ in xs],
                "minItems": len(xs),
                "maxItems": len(xs),
            },
            [v for _, v in xs],
        )
    )
    return st.one_of(leaf, obj, arr)


@given(st.dictionaries(st.text("pq", min_size=1, max_size=2), _schema_and_value(2), max_size=4))
def test_round_trip_random_nested_schemas(props: dict):
    schema = _obj(**{k: s for k, (s, _) in props.items()})
    value = {k: v for k, (_, v) in props.items()}
    plan = split_schema(schema)
    assert assemble(plan, values_from(plan, value)) == value
    assert validate(plan, value) is value
    assert len({b.pointer for b in plan.branches}) == len(plan.branches)
