"""The apar request fields a client may send: parsed, or a ValueError that names the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apar_sgl.config import AparArgs
from apar_sgl.request_params import escape_control_ids, parse_custom_params


def test_absent_or_plain_custom_params_mean_apar_on_with_server_limits():
    for params in (None, {}, {"thinking_budget": 5}):
        assert parse_custom_params(params) == (True, {})


def test_opt_out_and_lowered_limits_are_read():
    parsed = parse_custom_params({"apar": False, "apar_max_branches": 2, "apar_max_depth": 0})
    assert parsed.enabled is False
    assert parsed.limits == {"apar_max_branches": 2, "apar_max_depth": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"apar_max_branches": "many"}, "apar_max_branches"),
        ({"apar_max_depth": -1}, "apar_max_depth"),
        ({"apar_max_concurrent_children": 1.5}, "apar_max_concurrent_children"),
        ({"apar_max_branches": True}, "apar_max_branches"),
        ({"apar": "no"}, "custom_params.apar "),
        ({"apar_max_brnaches": 3}, "apar_max_brnaches"),
        ([1, 2], "custom_params must be a JSON object"),
    ],
)
def test_bad_fields_are_named(params, field):
    with pytest.raises(ValueError, match=field):
        parse_custom_params(params)


def test_server_limits_are_lowered_never_raised():
    from apar_sgl.runtime_patches.apar.state import AparLimits

    args = AparArgs(apar_max_branches=4)
    assert AparLimits.of(args, {"apar_max_branches": 9}).max_branches == 4
    assert AparLimits.of(args, {"apar_max_branches": 1}).max_branches == 1
    assert AparLimits.of(args, None) == (4, args.apar_max_depth, args.apar_max_concurrent_children)


@given(st.lists(st.integers(0, 9)), st.sampled_from([5, 7]))
def test_escaped_ids_keep_every_other_id_and_drop_the_control_id(ids, control):
    plain = {control: [100, 101]}
    escaped = escape_control_ids(ids, plain)
    if control not in ids:
        assert escaped is None
        return
    assert control not in escaped
    assert [i for i in escaped if i < 100] == [i for i in ids if i != control]
    assert escaped.count(100) == ids.count(control)
