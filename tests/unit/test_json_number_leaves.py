"""Number leaves with no upper bound of their own end where the model ends them (issue 22)."""

from __future__ import annotations

import json
import re

import pydantic
import pytest
from apar_sgl.dsl.backend import Completion
from apar_sgl.dsl.json_gen import open_number_regex, parse_leaf
from apar_sgl.dsl.leaf_bounds import INTEGER_LIMIT, tighten
from apar_sgl.dsl.schema_split import split_schema
from hypothesis import given
from hypothesis import strategies as st


class Reading(pydantic.BaseModel):
    label: str
    count: int
    level: float
    stock: int = pydantic.Field(ge=0)
    grade: int = pydantic.Field(ge=1, le=5)
    bins: list[int]


BRANCHES = {b.path[0]: b for b in split_schema(Reading).branches}


@pytest.mark.parametrize(
    ("field", "text", "matches"),
    [
        ("count", "45}", True),
        ("count", "-45,", True),
        ("count", "45", False),  # no delimiter: a bare number would run on
        ("count", "045}", False),
        ("count", f"{INTEGER_LIMIT}}}", True),
        ("count", f"{INTEGER_LIMIT + 1}}}", False),
        ("level", "3.25}", True),
        ("stock", "-1}", False),  # its own minimum 0 keeps the sign out
        ("stock", "12,", True),
    ],
)
def test_open_number_regex(field, text, matches):
    assert bool(re.fullmatch(open_number_regex(BRANCHES[field]), text)) == matches


@pytest.mark.parametrize("field", ["label", "grade", "bins"])
def test_other_leaves_keep_their_schema(field):
    assert open_number_regex(BRANCHES[field]) is None


@given(st.integers(-INTEGER_LIMIT, INTEGER_LIMIT), st.sampled_from(",}"))
def test_every_match_parses_to_a_value_the_leaf_schema_accepts(value, delimiter):
    text = f"{value}{delimiter}"
    assert re.fullmatch(open_number_regex(BRANCHES["count"]), text)
    bound = tighten(BRANCHES["count"].schema)
    completion = Completion(text, {"finish_reason": {"type": "stop"}})
    parsed = parse_leaf(BRANCHES["count"], completion, 20, bound, terminated=True)
    assert parsed == value
    assert json.loads(json.dumps(parsed)) == value
