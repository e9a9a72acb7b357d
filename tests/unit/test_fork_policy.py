"""The load-aware fork policy: a pure function of measured decode step times."""

from __future__ import annotations

import pytest

from apar_sgl.fork_policy import MIN_GAIN, StepTimes, decide


def _times(step_ms: dict[int, float], samples: int = 3) -> StepTimes:
    times = StepTimes()
    for rows, ms in step_ms.items():
        for _ in range(samples):
            times.observe(rows, ms / 1000)
    return times


def test_memory_bound_step_lets_a_branch_fork() -> None:
    # one more row costs 5%: the batch makes 2 / 1.05 = 1.9x the tokens per second
    decision = decide("auto", 1, _times({1: 20.0, 2: 21.0}))
    assert decision.allow and decision.reason == "gain"
    assert decision.gain == pytest.approx(2 * 20.0 / 21.0)
    assert (decision.step_ms, decision.step_ms_forked) == pytest.approx((20.0, 21.0))


def test_compute_bound_step_masks_the_fork() -> None:
    # each row costs its share: a fork only moves throughput from other requests to this one
    decision = decide("auto", 16, _times({16: 160.0, 17: 170.0}))
    assert not decision.allow
    assert decision.gain == pytest.approx(1.0)


def test_gain_threshold_is_inclusive() -> None:
    ms = 2 * 20.0 / MIN_GAIN  # exactly the minimum gain at one row
    assert decide("auto", 1, _times({1: 20.0, 2: ms})).allow
    assert not decide("auto", 1, _times({1: 20.0, 2: ms * 1.01})).allow


def test_unmeasured_batch_size_is_explored() -> None:
    decision = decide("auto", 16, _times({16: 160.0}))
    assert decision.allow and decision.reason == "unmeasured"
    assert decision.step_ms_forked is None and decision.gain is None
    # too few samples count as unmeasured
    assert decide("auto", 1, _times({1: 20.0, 2: 80.0}, samples=2)).reason == "unmeasured"


def test_batch_size_between_measured_ones_is_interpolated() -> None:
    times = _times({4: 40.0, 8: 80.0})
    assert times.predict(5) == pytest.approx(0.050)
    assert times.predict(9) is None and times.predict(3) is None
    assert not decide("auto", 4, times).allow  # 5 * 40 / (4 * 50) = 1.0


def test_forced_policies_ignore_the_measurements() -> None:
    times = _times({16: 160.0, 17: 170.0})
    assert decide("always", 16, times).allow
    assert not decide("never", 1, _times({1: 20.0, 2: 20.0})).allow
    assert decide("always", 16, times).reason == "policy"
    with pytest.raises(ValueError, match="fork policy must be one of"):
        decide("sometimes", 1, times)


def test_step_times_follow_a_changing_machine() -> None:
    times = _times({1: 20.0}, samples=10)
    for _ in range(30):
        times.observe(1, 0.040)
    assert times.predict(1) == pytest.approx(0.040, rel=0.05)
    assert times.as_ms() == {1: pytest.approx(40.0, rel=0.05)}
    with pytest.raises(ValueError, match="rows >= 1"):
        times.observe(0, 0.01)
