"""Walking an untrusted JSON schema without recursion: its size caps and JSON pointers.

The splitter, jsonschema's metaschema check and the final validation all recurse over the
schema, and their cost grows with its size: a 200-level nesting or a 100,000-value enum must
be turned away before any of them runs. :func:`check_limits` walks the schema with an
explicit stack and stops at the first node past a cap, naming its JSON pointer.
"""

from __future__ import annotations

from typing import Any


class SchemaSplitError(ValueError):
    """A schema part cannot be split; the message starts with its JSON pointer."""


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


def escape_pointer(token: Any) -> str:
    """One RFC 6901 reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")
