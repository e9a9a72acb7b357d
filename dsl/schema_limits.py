"""The checked plan a server may generate from a client's JSON schema.

:func:`plan_untrusted` first checks the schema's size caps without recursion
(`schema_walk.check_limits`), then checks it against its metaschema, splits it, caps the
branches and tightens every leaf, so that anything wrong is a SchemaSplitError up front.
"""

from __future__ import annotations

from typing import Any

from apar_sgl.dsl.leaf_bounds import tighten
from apar_sgl.dsl.schema_split import SchemaPlan, split_schema
from apar_sgl.dsl.schema_walk import SchemaSplitError, check_limits, escape_pointer


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
