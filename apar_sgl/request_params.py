"""The per-request apar fields a client may send, checked where the request enters.

`sampling_params.custom_params` (OpenAI clients: `extra_body={"custom_params": {...}}`) may
carry `apar` (bool: fork or not) and `apar_max_branches` / `apar_max_depth` /
`apar_max_concurrent_children` (non-negative ints that lower the server's limits). Anything
else spelled `apar_*` is a client error too, so a typo is not silently ignored.
"""

from __future__ import annotations

from typing import Any, NamedTuple

LIMIT_KEYS = ("apar_max_branches", "apar_max_depth", "apar_max_concurrent_children")


class AparRequestParams(NamedTuple):
    enabled: bool  # False: the client opted out with {"apar": false}
    limits: dict[str, int]  # the limits the client lowered, by key


def parse_custom_params(custom_params: Any) -> AparRequestParams:
    """The apar fields of `custom_params`; ValueError naming the field for a bad one."""
    if custom_params is None:
        return AparRequestParams(True, {})
    if not isinstance(custom_params, dict):
        raise ValueError(f"custom_params must be a JSON object; got {type(custom_params).__name__}")
    enabled = custom_params.get("apar", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"custom_params.apar must be true or false; got {enabled!r}")
    limits = {}
    for key, value in custom_params.items():
        if not str(key).startswith("apar_"):
            continue
        if key not in LIMIT_KEYS:
            raise ValueError(
                f"custom_params.{key} is not an apar field; known: apar, {', '.join(LIMIT_KEYS)}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"custom_params.{key} must be an integer >= 0; got {value!r}")
        limits[key] = value
    return AparRequestParams(enabled, limits)


def escape_control_ids(ids: list[int], plain: dict[int, list[int]]) -> list[int] | None:
    """`ids` with every control-token id replaced by its plain-text encoding; None if none."""
    if not any(i in plain for i in ids):
        return None
    out: list[int] = []
    for i in ids:
        out.extend(plain.get(i, (i,)))
    return out
