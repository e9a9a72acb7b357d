"""Benchmark workloads: questions in, chat-templated prompts out."""

from __future__ import annotations

import ast
import json
import sysconfig
from importlib import resources
from pathlib import Path
from typing import NamedTuple


class Question(NamedTuple):
    question_id: int
    category: str
    text: str


def vicuna_questions(limit: int | None = None) -> list[Question]:
    """The 80 Vicuna questions (first turn), in file order; see data/SOURCE.md."""
    path = resources.files("apar_sgl.bench") / "data" / "vicuna_bench.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    questions = [Question(r["question_id"], r["category"], r["turns"][0]) for r in rows]
    return questions[:limit] if limit else questions


# The `rewrite` workload: an answer that copies its prompt, as in the summarisation and code
# editing tasks of the ANPD paper, where n-gram drafts from the prompt are nearly certain.
REWRITE_INSTRUCTION = (
    "Rewrite the following text with any spelling or grammar mistakes corrected. "
    "Write out the full text."
)


def chat_prompts(
    model_path: str, questions: list[Question], instruction: str | None = None
) -> list[str]:
    """Each question as a single user turn in the model's chat template, after `instruction`
    and a blank line when one is given."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    turns = [q.text if instruction is None else f"{instruction}\n\n{q.text}" for q in questions]
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": turn}], tokenize=False, add_generation_prompt=True
        )
        for turn in turns
    ]


# The `code` and `copy` workloads come from the Python standard library sources of the running
# interpreter: openly available text that is not a benchmark, chosen deterministically.
CODE_INSTRUCTION = "Complete the body of this Python function. Reply with the whole function."
COPY_INSTRUCTION = (
    "Summarise the following documentation in a few sentences, reusing its own wording."
)
MIN_DOC_CHARS = 300  # a copy task needs a passage worth summarising


def stdlib_functions(limit: int | None = None, stdlib: Path | None = None) -> list[Question]:
    """Public top-level functions with a docstring: signature + docstring, to be completed.

    Files in name order, functions in source order, every `_STRIDE`-th one (spread over
    modules), at most one per module.
    """
    found = []
    for path, tree in _stdlib_modules(stdlib):
        functions = [
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and not node.name.startswith("_")
            and ast.get_docstring(node)
        ]
        if functions:
            found.append((path, functions[len(functions) // 2]))
    picked = found[::_STRIDE]
    questions = [
        Question(i, "code", f"{CODE_INSTRUCTION}\n\n```python\n{_stub(fn)}\n```")
        for i, (_, fn) in enumerate(picked)
    ]
    return questions[:limit] if limit else questions


def stdlib_passages(limit: int | None = None, stdlib: Path | None = None) -> list[Question]:
    """Module docstrings of at least `MIN_DOC_CHARS` characters, each to be summarised."""
    docs = [ast.get_docstring(tree) or "" for _, tree in _stdlib_modules(stdlib)]
    passages = [doc.strip()[:_MAX_DOC_CHARS] for doc in docs if len(doc) >= MIN_DOC_CHARS]
    questions = [
        Question(i, "copy", f"{COPY_INSTRUCTION}\n\n{text}") for i, text in enumerate(passages)
    ]
    return questions[:limit] if limit else questions


_STRIDE = 3
_MAX_DOC_CHARS = 1200  # keeps prompts short on a CPU


def _stdlib_modules(stdlib: Path | None) -> list[tuple[Path, ast.Module]]:
    folder = stdlib or Path(sysconfig.get_paths()["stdlib"])
    modules = []
    for path in sorted(folder.glob("*.py")):
        try:
            modules.append((path, ast.parse(path.read_text(encoding="utf-8"))))
        except (SyntaxError, UnicodeDecodeError):
            continue  # e.g. lib2to3 test data; not worth a prompt
    return modules


def _stub(fn: ast.FunctionDef) -> str:
    """`def name(args) -> ret:` and the docstring, the body left to the model."""
    returns = f" -> {ast.unparse(fn.returns)}" if fn.returns else ""
    doc = ast.get_docstring(fn, clean=True).replace('"""', "'''")
    body = "\n".join(f"    {line}".rstrip() for line in doc.splitlines())
    return f'def {fn.name}({ast.unparse(fn.args)}){returns}:\n    """{body.lstrip()}\n    """'


WORKLOADS = ("vicuna", "rewrite", "code", "copy")


def workload_questions(workload: str, limit: int | None) -> tuple[list[Question], str | None]:
    """The questions of `workload` and the instruction put before each (None: asked as is)."""
    if workload == "code":
        return stdlib_functions(limit), None
    if workload == "copy":
        return stdlib_passages(limit), None
    if workload == "rewrite":
        return vicuna_questions(limit), REWRITE_INSTRUCTION
    if workload == "vicuna":
        return vicuna_questions(limit), None
    raise ValueError(f"unknown workload {workload!r}; choose from {WORKLOADS}")
