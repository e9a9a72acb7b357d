"""gen_json on the embedded SmolLM2 (greedy, bfloat16 default) with plain, unbounded models.

Issue 22: a four-field ``Person`` without ``max_length`` must come back valid, and parallel
generation must succeed wherever SGLang's own serial ``json_schema`` request does.
"""

from __future__ import annotations

import pytest

import apar_sgl as apar
from apar_sgl.bench.json_models import CASES, Person
from apar_sgl.bench.parallel_json import run_parallel_json_bench


@pytest.fixture(scope="module")
def backend():
    backend = apar.default_backend()
    yield backend
    apar.set_default_backend(None)
    backend.shutdown()


@apar.function
def profile(s, who):
    s += apar.user(f"Describe {who} as JSON.")
    s += apar.assistant_begin()
    s += apar.gen_json("person", Person)
    s += apar.assistant_end()


@pytest.mark.parametrize("who", ["a retired sailor", "a young chef", "a famous painter"])
def test_issue_example_returns_a_valid_person(backend, who):
    person = profile.run(who=who, backend=backend)["person"]
    assert isinstance(person, Person)
    for text in (person.name, person.city, person.hobby):
        assert not set(text) & set("<>{}[]\n") and 1 <= len(text) <= 40


@pytest.mark.slow
def test_parallel_succeeds_wherever_serial_json_schema_does(backend):
    rows = run_parallel_json_bench(backend, [c._replace(prompts=c.prompts[:1]) for c in CASES])
    failed = [(r.schema, r.parallel_doc) for r in rows if r.serial_valid and not r.parallel_valid]
    assert not failed
    assert len({r.schema for r in rows}) == len(CASES) >= 10
