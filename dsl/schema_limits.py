"""Caps on a client's JSON schema, and the checked plan a server may generate from it.

The splitter, jsonschema's metaschema check and the final validation all recurse over the
schema, and their cost grows with its size: a 200-level nesting or a 100,000-value enum must
be turned away before any of them runs. :func:`check_limits` walks the schema with an
explicit stack and stops at the first node past a cap, naming its JSON pointer;
:func:`plan_untrusted` then checks the schema against its metaschema, splits it, caps the
branches and tightens every leaf, so that anything wrong is a SchemaSplitError up front.
"""

from __future__ import annotations

from typing import Any

from apar_sgl.dsl.leaf_bounds import tighten
from apar_sgl.dsl.schema_split import SchemaPlan, SchemaSplitError, escape_pointer, split_schema

MAX_SCHEMA_DEPTH = 64  # nested objects and arrays, counted as JSON containers
MAX_SCHEMA_NODES = 20_000  # every value in the schema document: keys' values, list items
MAX_PATTERN_LENGTH = 1_000  # characters of one `pattern`: the grammar compiles it per request


def check_limits(
    schema: Any, *, max_depth: int = MAX_SCHEMA_DEPTH, max_nodes: int | None = MAX_SCHEMA_NODES
) -> None:
    """Raise SchemaSplitError at the first node deeper than ``max_depth`` or past ``max_nodes``."""
    stack: list[tuple[Any, str, int]] = [(schema, "", 0)]
    nodes = 0
    while stack:
        node, pointer, depth = stack.pop()
        nodes += 1
        if max_nodes is not None and nodes > max_nodes:
            raise SchemaSplitError(
                f"{pointer or '/'}: schema has more than {max_nodes} values (cap on schema size)"
            )
        if depth > max_depth:
            raise SchemaSplitError(
                f"{pointer or '/'}: schema is nested more than {max_depth} levels deep"
            )
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str) and len(pattern) > MAX_PATTERN_LENGTH:
                raise SchemaSplitError(
                    f"{pointer}/pattern: pattern is longer than {MAX_PATTERN_LENGTH} characters"
                )
            children = [(v, f"{pointer}/{escape_pointer(k)}") for k, v in node.items()]
        elif isinstance(node, list):
            children = [(v, f"{pointer}/{i}") for i, v in enumerate(node)]
        else:
            continue
        stack.extend((child, where, depth + 1) for child, where in reversed(children))


def plan_untrusted(schema: Any, *, max_branches: int) -> SchemaPlan:
    """Split a client's schema, or raise SchemaSplitError naming the JSON pointer at fault."""
    if not isinstance(schema, dict):
        raise SchemaSplitError(f"/: schema must be an object, got {type(schema).__name__}")
    check_limits(schema)
    check_metaschema(schema)
    plan = split_schema(schema)
    if len(plan.branches) > max_branches:
        raise SchemaSplitError(
            f"{plan.branches[max_branches].schema_pointer}: the schema has "
            f"{len(plan.branches)} leaves, more than --apar-max-json-branches={max_branches}"
        )
    for branch in plan.branches:
        tighten(branch.schema)
    return plan


def check_metaschema(schema: dict[str, Any]) -> None:
    """Reject a schema its own metaschema rejects, naming the offending part's JSON pointer."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        pointer = "".join(f"/{escape_pointer(p)}" for p in exc.path)
        raise SchemaSplitError(f"{pointer or '/'}: {exc.message}") from None
