"""Quality flaws beside validity: empty strings, template placeholders, markup."""

from __future__ import annotations

import pytest
from apar_sgl.dsl.json_quality import flaws


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("", "empty"),
        (", ", "empty"),
        ("'<NAME>'", "placeholder"),
        ("{name} {age} years old", "placeholder"),
        ("{", "empty"),
        ("N/A", "placeholder"),
        ("A<br>19th-century", "markup"),
        ("**bold**", "markup"),
    ],
)
def test_flawed_strings_are_named_by_pointer(value, kind):
    assert flaws({"person": {"name": value, "age": 3}}) == [("/person/name", kind)]


def test_sensible_values_have_no_flaws():
    doc = {"name": "Dana Kim", "city": "São Paulo", "tags": ["jazz", "R&B"], "n": 0, "ok": None}
    assert flaws(doc) == []
