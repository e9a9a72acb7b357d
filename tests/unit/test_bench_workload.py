"""The `code` and `copy` bench workloads: standard-library text, chosen deterministically."""

from __future__ import annotations

import ast

import pytest

from apar_sgl.bench.workload import (
    CODE_INSTRUCTION,
    COPY_INSTRUCTION,
    MIN_DOC_CHARS,
    stdlib_functions,
    stdlib_passages,
    workload_questions,
)

MODULE = '''"""{doc}"""


def _private(x):
    """Not offered: private."""


def undocumented(x):
    return x


def area(width: float, height: float = 1.0) -> float:
    """The area of a rectangle.

    Both sides must be positive.
    """
    return width * height
'''


def _code_block(text: str) -> str:
    return text.split("```python\n", 1)[1].rsplit("\n```", 1)[0]


def test_code_prompts_are_signature_and_docstring_without_the_body(tmp_path):
    (tmp_path / "shapes.py").write_text(MODULE.format(doc="Shapes."))
    (question,) = stdlib_functions(stdlib=tmp_path)
    assert question.text.startswith(CODE_INSTRUCTION)
    stub = _code_block(question.text)
    (fn,) = ast.parse(stub).body
    assert fn.name == "area" and ast.get_docstring(fn).startswith("The area of a rectangle.")
    assert len(fn.body) == 1  # the docstring only: the model writes the body
    assert "width * height" not in question.text


def test_copy_prompts_are_long_module_docstrings(tmp_path):
    long_doc = "This module does a thing. " * (MIN_DOC_CHARS // 20)
    (tmp_path / "a.py").write_text(MODULE.format(doc=long_doc))
    (tmp_path / "b.py").write_text(MODULE.format(doc="Too short to summarise."))
    (question,) = stdlib_passages(stdlib=tmp_path)
    assert question.text == f"{COPY_INSTRUCTION}\n\n{long_doc.strip()}"


def test_installed_stdlib_gives_the_same_prompts_every_time():
    code, copy = stdlib_functions(12), stdlib_passages(12)
    assert len(code) == len(copy) == 12
    assert [q.text for q in code] == [q.text for q in stdlib_functions(12)]
    assert len({q.text for q in code}) == 12 and len({q.text for q in copy}) == 12
    for question in code:
        ast.parse(_code_block(question.text))


def test_unknown_workload_is_refused():
    with pytest.raises(ValueError, match="unknown workload 'poems'"):
        workload_questions("poems", 3)
