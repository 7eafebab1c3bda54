"""Properties of the trumpet window arithmetic on arbitrary non-decreasing records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.analytics.flow_accuracy import (
    FlowRecord,
    interval_flows_ml_per_h,
    mean_error_percent,
    trumpet,
    trumpet_naive,
)

RATE = 6.0
INTERVALS = 240
WINDOWS = (0.5, 2, 5, 11, 19, 31, 60)
increments = st.lists(
    st.floats(min_value=0, max_value=0.2, allow_nan=False, allow_infinity=False),
    min_size=INTERVALS,
    max_size=INTERVALS,
)


def build(steps: list[float], offset: float = 0.0) -> FlowRecord:
    total = offset
    values = [total]
    for step in steps:
        total += step
        values.append(total)
    return FlowRecord(times_s=tuple(30.0 * i for i in range(INTERVALS + 1)), cumulative_ml=tuple(values))


@given(increments)
def test_the_fast_pass_equals_the_naive_loop(steps: list[float]) -> None:
    record = build(steps)
    for fast, slow in zip(
        trumpet(record, RATE, windows_min=WINDOWS),
        trumpet_naive(record, RATE, windows_min=WINDOWS),
        strict=True,
    ):
        assert (fast.samples, fast.positions) == (slow.samples, slow.positions)
        assert fast.ep_max_percent == pytest.approx(slow.ep_max_percent, abs=1e-7)
        assert fast.ep_min_percent == pytest.approx(slow.ep_min_percent, abs=1e-7)


@given(increments, st.floats(min_value=0, max_value=1000))
def test_envelopes_are_ordered_shift_free_and_the_whole_period_window_is_a(
    steps: list[float], offset: float
) -> None:
    record = build(steps)
    shifted = build(steps, offset)
    points = trumpet(record, RATE, windows_min=WINDOWS)
    for point, moved in zip(points, trumpet(shifted, RATE, windows_min=WINDOWS), strict=True):
        assert point.ep_min_percent <= point.ep_max_percent
        assert point.positions == 120 - point.samples + 1
        assert moved.ep_max_percent == pytest.approx(point.ep_max_percent, abs=1e-6)
    a = mean_error_percent(record, RATE)
    whole = points[-1]
    assert whole.positions == 1
    assert whole.ep_max_percent == pytest.approx(a, abs=1e-9) and whole.ep_min_percent == pytest.approx(
        a, abs=1e-9
    )


@given(increments)
def test_one_sample_windows_are_the_extremes_of_the_interval_flows_and_bound_every_window(
    steps: list[float],
) -> None:
    record = build(steps)
    flows = interval_flows_ml_per_h(record)[120:]
    points = trumpet(record, RATE, windows_min=WINDOWS)
    single = points[0]
    assert single.ep_max_percent == pytest.approx(100 * (max(flows) - RATE) / RATE, abs=1e-9)
    assert single.ep_min_percent == pytest.approx(100 * (min(flows) - RATE) / RATE, abs=1e-9)
    for point in points[1:]:
        assert (
            single.ep_min_percent - 1e-9
            <= point.ep_min_percent
            <= point.ep_max_percent
            <= single.ep_max_percent + 1e-9
        )
