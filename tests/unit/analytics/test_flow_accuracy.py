"""The IEC 60601-2-24 procedure on records whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from smartpump.analytics.flow_accuracy import (
    STANDARD_WINDOWS_MIN,
    BenchError,
    FlowRecord,
    Verdict,
    analyse,
    dose_accuracy,
    interval_flows_ml_per_h,
    mean_error_percent,
    trumpet,
    trumpet_naive,
)

RATE = 10.0  # mL/h
TIMES = tuple(30.0 * i for i in range(241))  # 0.5 min for 120 min


def record(volume_at: object) -> FlowRecord:
    """A record sampling a cumulative-volume function (mL of seconds) on the standard grid."""
    assert callable(volume_at)
    return FlowRecord(times_s=TIMES, cumulative_ml=tuple(float(volume_at(t)) for t in TIMES))


def test_a_perfect_pump_gives_a_flat_zero_trumpet_and_a_zero_mean_error() -> None:
    perfect = record(lambda t: RATE * t / 3600)
    points = trumpet(perfect, RATE)
    assert [p.window_min for p in points] == list(STANDARD_WINDOWS_MIN)
    for p in points:
        assert p.ep_max_percent == pytest.approx(0, abs=1e-9)
        assert p.ep_min_percent == pytest.approx(0, abs=1e-9)
    assert mean_error_percent(perfect, RATE) == pytest.approx(0, abs=1e-9)
    assert all(q == pytest.approx(RATE) for q in interval_flows_ml_per_h(perfect))


def test_a_constant_three_percent_over_delivery_gives_a_equal_three_everywhere() -> None:
    over = record(lambda t: 1.03 * RATE * t / 3600)
    assert mean_error_percent(over, RATE) == pytest.approx(3.0, abs=1e-9)
    for p in trumpet(over, RATE):
        assert p.ep_max_percent == pytest.approx(3.0, abs=1e-9)
        assert p.ep_min_percent == pytest.approx(3.0, abs=1e-9)
    report = analyse(over, RATE, tolerance_percent=5)
    assert report.mean_error_percent == 3.0 and report.verdict is Verdict.PASS
    assert analyse(over, RATE, tolerance_percent=2).verdict is Verdict.FAIL


def test_window_positions_follow_m_equals_n_minus_p_plus_one() -> None:
    perfect = record(lambda t: RATE * t / 3600)
    # second hour: 120 intervals of 0.5 min; p = P / 0.5 min
    assert [(p.samples, p.positions) for p in trumpet(perfect, RATE)] == [
        (4, 117),
        (10, 111),
        (22, 99),
        (38, 83),
        (62, 59),
    ]


@pytest.mark.parametrize("amplitude", [0.1, 0.5])
def test_a_sinusoidal_stroke_ripple_gives_the_analytic_envelope(amplitude: float) -> None:
    """Q(t) = r (1 + a sin(2 pi t / T)), T = 4 min: a window of P has mean error
    -100 a (T / (pi P)) sin(pi P / T) sin(2 pi t0 / T + pi P / T); the 0.5 min grid reaches both
    extremes of the last factor, so Ep(max) = -Ep(min) = 100 a (T / (pi P)) |sin(pi P / T)|."""
    period_s = 240.0
    rippled = record(
        lambda t: (
            RATE
            / 3600
            * (t + amplitude * period_s / (2 * math.pi) * (1 - math.cos(2 * math.pi * t / period_s)))
        )
    )
    for p in trumpet(rippled, RATE):
        window_s = p.window_min * 60
        expected = (
            100 * amplitude * period_s / (math.pi * window_s) * abs(math.sin(math.pi * window_s / period_s))
        )
        assert p.ep_max_percent == pytest.approx(expected, rel=1e-9)
        assert p.ep_min_percent == pytest.approx(-expected, rel=1e-9)
    # 2 min is half a period: 100 * a * 4 / (2 pi)
    assert trumpet(rippled, RATE)[0].ep_max_percent == pytest.approx(200 * amplitude / math.pi, rel=1e-9)


def test_the_naive_loop_and_the_telescoping_pass_agree() -> None:
    wobbly = record(lambda t: RATE * t / 3600 + 0.01 * math.sin(t / 97.0) + 0.002 * (t % 7))
    for fast, slow in zip(trumpet(wobbly, RATE), trumpet_naive(wobbly, RATE), strict=True):
        assert fast.positions == slow.positions
        assert fast.ep_max_percent == pytest.approx(slow.ep_max_percent, abs=1e-9)
        assert fast.ep_min_percent == pytest.approx(slow.ep_min_percent, abs=1e-9)


def test_the_start_up_graph_covers_the_whole_test_and_the_deficit_counts_the_slow_start() -> None:
    delayed = record(lambda t: max(0.0, RATE * (t - 300) / 3600))
    report = analyse(delayed, RATE, tolerance_percent=5)
    assert len(report.startup) == 240 and report.startup[0] == (0.5, 0.0)
    assert report.startup[-1] == (120.0, RATE)
    assert report.first_hour_deficit_ml == pytest.approx(RATE * 300 / 3600, abs=1e-3)
    assert report.mean_error_percent == 0.0


def test_delivered_volume_per_dose() -> None:
    doses = record(lambda t: 0.5 * min(t // 600, 11) + (0.52 if t >= 6600 else 0.0))
    result = dose_accuracy(doses, 0.5, [0.0, 600.0, 1200.0])
    assert result.delivered_ml == (0.5, 0.5)
    assert result.errors_percent == (0.0, 0.0)
    last = dose_accuracy(doses, 0.5, [6000.0, 6600.0])
    assert last.errors_percent[0] == pytest.approx(104.0)
    with pytest.raises(BenchError) as off_grid:
        dose_accuracy(doses, 0.5, [0.0, 601.0])
    assert off_grid.value.code == "bench.boundary_off_grid"


@pytest.mark.parametrize(
    ("times", "values", "code"),
    [
        ((0.0,), (0.0,), "bench.empty"),
        ((0.0, 30.0), (0.0,), "bench.ragged"),
        ((0.0, 30.0, 30.0), (0.0, 1.0, 2.0), "bench.time_not_increasing"),
        ((0.0, 30.0, 90.0), (0.0, 1.0, 2.0), "bench.gap"),
        ((0.0, 30.0), (0.0, math.nan), "bench.non_numeric"),
        ((5.0, 35.0), (0.0, 1.0), "bench.bad_start"),
    ],
)
def test_unusable_records_are_refused_with_a_code(
    times: tuple[float, ...], values: tuple[float, ...], code: str
) -> None:
    with pytest.raises(BenchError) as refused:
        FlowRecord(times_s=times, cumulative_ml=values)
    assert refused.value.code == code


def test_a_record_shorter_than_the_analysis_period_and_a_bad_rate_are_refused() -> None:
    short = FlowRecord(times_s=TIMES[:200], cumulative_ml=tuple(RATE * t / 3600 for t in TIMES[:200]))
    with pytest.raises(BenchError) as too_short:
        trumpet(short, RATE)
    assert too_short.value.code == "bench.too_short"
    with pytest.raises(BenchError) as bad_rate:
        mean_error_percent(record(lambda t: t), 0.0)
    assert bad_rate.value.code == "bench.bad_rate"
    with pytest.raises(BenchError) as density:
        FlowRecord.from_mass(TIMES, TIMES, density_g_per_ml=0.0)
    assert density.value.code == "bench.bad_density"
