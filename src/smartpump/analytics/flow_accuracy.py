"""The IEC 60601-2-24 flow-accuracy procedure as pure functions: start-up graph, trumpet curve, mean error.

Procedure (as pump operator manuals and analyzer documentation describe it; see docs/bench.md):
a balance records the cumulative delivered mass every dt = 0.5 min for T = 120 min at a set rate r;
the flow of interval i is Q_i = (W_i - W_(i-1)) / (rho * dt). The start-up graph is Q_i over the
whole test. The trumpet curve uses the analysis period (the second hour): for each observation
window P in {2, 5, 11, 19, 31} min (p = P / dt samples) the window slides one sample at a time
over the period (m = N - p + 1 positions for N intervals); at each position the mean flow over the
window gives E = 100 * (mean - r) / r, and Ep(max), Ep(min) are the extremes over the positions.
The mean error A is that of the mean flow over the whole analysis period.

Numbers: binary floats. A window's mean flow is the difference of two cumulative readings over
its duration (the sum of its Q_i telescopes), so no summation error builds up with window length;
results are rounded half-even on output only (errors to 0.01 %, flows to 0.001 mL/h).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from smartpump.errors import SmartpumpError

STANDARD_WINDOWS_MIN: Final = (2, 5, 11, 19, 31)
SAMPLE_INTERVAL_S: Final = 30.0
TEST_DURATION_S: Final = 7200.0
ANALYSIS_START_S: Final = 3600.0
ANALYSIS_MIN_S: Final = 3600.0
SECONDS_PER_HOUR: Final = 3600.0
GRID_TOLERANCE: Final = 0.02
PERCENT_DIGITS: Final = 2
FLOW_DIGITS: Final = 3


class BenchError(SmartpumpError):
    """A bench record or analysis request that cannot be analysed (code says why)."""

    code = "bench.invalid"


class Verdict(StrEnum):
    """Outcome of one bench rule."""

    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowRecord:
    """Cumulative delivered volume (mL) at sample times (s from the start); first sample at t=0."""

    times_s: tuple[float, ...]
    cumulative_ml: tuple[float, ...]

    def __post_init__(self) -> None:
        """Refuse records that are empty, ragged, unordered, non-finite or off a constant grid."""
        check_samples(self.times_s, self.cumulative_ml)

    @classmethod
    def from_mass(
        cls, times_s: Sequence[float], mass_g: Sequence[float], *, density_g_per_ml: float
    ) -> FlowRecord:
        """A record from balance readings (g) and the test liquid's density (g/mL)."""
        if not (math.isfinite(density_g_per_ml) and 0.5 <= density_g_per_ml <= 2.0):
            raise BenchError(
                f"density {density_g_per_ml} g/mL is outside 0.5-2.0 g/mL", code="bench.bad_density"
            )
        return cls(times_s=tuple(times_s), cumulative_ml=tuple(m / density_g_per_ml for m in mass_g))

    @property
    def interval_s(self) -> float:
        """The nominal sample interval (the first interval; the grid is checked constant)."""
        return self.times_s[1] - self.times_s[0]

    @property
    def duration_s(self) -> float:
        """Time from the first to the last sample."""
        return self.times_s[-1] - self.times_s[0]


def check_samples(times_s: Sequence[float], values: Sequence[float]) -> None:
    """Raise BenchError unless the samples form a usable record (at least two, on a constant grid)."""
    if len(times_s) != len(values):
        raise BenchError("times and readings differ in length", code="bench.ragged")
    if len(times_s) < 2:
        raise BenchError("a record needs at least two samples", code="bench.empty")
    if not all(math.isfinite(v) for v in (*times_s, *values)):
        raise BenchError("a time or reading is not a finite number", code="bench.non_numeric")
    if times_s[0] != 0:
        raise BenchError(f"the first sample must be at t=0, not {times_s[0]} s", code="bench.bad_start")
    step = times_s[1] - times_s[0]
    for i in range(1, len(times_s)):
        gap = times_s[i] - times_s[i - 1]
        if gap <= 0:
            raise BenchError(
                f"time does not increase at sample {i + 1} ({times_s[i - 1]} s -> {times_s[i]} s)",
                code="bench.time_not_increasing",
            )
        if abs(gap - step) > GRID_TOLERANCE * step:
            raise BenchError(
                f"sample interval {gap:g} s at sample {i + 1} departs from {step:g} s (a gap or jitter)",
                code="bench.gap",
            )


def interval_flows_ml_per_h(record: FlowRecord) -> tuple[float, ...]:
    """Q_i for each sample interval (mL/h), from consecutive cumulative readings."""
    t, v = record.times_s, record.cumulative_ml
    return tuple((v[i] - v[i - 1]) * SECONDS_PER_HOUR / (t[i] - t[i - 1]) for i in range(1, len(t)))


@dataclass(frozen=True, slots=True, kw_only=True)
class TrumpetPoint:
    """One observation window of the trumpet curve: extremes of the window-mean error (%)."""

    window_min: float
    samples: int
    positions: int
    ep_max_percent: float
    ep_min_percent: float


def _analysis_bounds(record: FlowRecord, start_s: float, end_s: float | None) -> tuple[int, int]:
    """Sample indices (first, last) of the analysis period; refuses a period shorter than required."""
    end = record.times_s[-1] if end_s is None else end_s
    tol = GRID_TOLERANCE * record.interval_s
    first = next((i for i, t in enumerate(record.times_s) if t >= start_s - tol), None)
    last = next((i for i in range(len(record.times_s) - 1, -1, -1) if record.times_s[i] <= end + tol), None)
    if first is None or last is None or record.times_s[last] - record.times_s[first] < ANALYSIS_MIN_S - tol:
        raise BenchError(
            f"the record lasts {record.duration_s / 60:g} min; the analysis needs "
            f"{ANALYSIS_MIN_S / 60:g} min from minute {start_s / 60:g}",
            code="bench.too_short",
        )
    return first, last


def _window_samples(record: FlowRecord, window_min: float) -> int:
    samples = window_min * 60 / record.interval_s
    if samples < 1 or abs(samples - round(samples)) > 1e-9:
        raise BenchError(
            f"a {window_min} min window is not a whole number of {record.interval_s:g} s samples",
            code="bench.window_off_grid",
        )
    return round(samples)


def _error_percent(volume_ml: float, duration_s: float, rate_ml_per_h: float) -> float:
    return 100 * (volume_ml * SECONDS_PER_HOUR / duration_s - rate_ml_per_h) / rate_ml_per_h


def _check_rate(rate_ml_per_h: float) -> None:
    if not (math.isfinite(rate_ml_per_h) and rate_ml_per_h > 0):
        raise BenchError(f"set rate {rate_ml_per_h} mL/h must be positive", code="bench.bad_rate")


def trumpet(
    record: FlowRecord,
    rate_ml_per_h: float,
    *,
    windows_min: Sequence[float] = STANDARD_WINDOWS_MIN,
    start_s: float = ANALYSIS_START_S,
    end_s: float | None = None,
) -> tuple[TrumpetPoint, ...]:
    """Ep(max) and Ep(min) per observation window over the analysis period (one pass per window)."""
    _check_rate(rate_ml_per_h)
    first, last = _analysis_bounds(record, start_s, end_s)
    t, v = record.times_s, record.cumulative_ml
    points = []
    for window in windows_min:
        p = _window_samples(record, window)
        positions = last - first - p + 1
        if positions < 1:
            raise BenchError(
                f"a {window} min window exceeds the analysis period", code="bench.window_too_long"
            )
        errors = [
            _error_percent(v[j + p] - v[j], t[j + p] - t[j], rate_ml_per_h)
            for j in range(first, first + positions)
        ]
        points.append(
            TrumpetPoint(
                window_min=window,
                samples=p,
                positions=positions,
                ep_max_percent=max(errors),
                ep_min_percent=min(errors),
            )
        )
    return tuple(points)


def trumpet_naive(
    record: FlowRecord,
    rate_ml_per_h: float,
    *,
    windows_min: Sequence[float] = STANDARD_WINDOWS_MIN,
    start_s: float = ANALYSIS_START_S,
    end_s: float | None = None,
) -> tuple[TrumpetPoint, ...]:
    """The same curve by the textbook loop: average the p interval flows of every window (reference)."""
    _check_rate(rate_ml_per_h)
    first, last = _analysis_bounds(record, start_s, end_s)
    flows = interval_flows_ml_per_h(record)[first:last]
    points = []
    for window in windows_min:
        p = _window_samples(record, window)
        positions = len(flows) - p + 1
        if positions < 1:
            raise BenchError(
                f"a {window} min window exceeds the analysis period", code="bench.window_too_long"
            )
        errors = []
        for j in range(positions):
            total = 0.0
            for i in range(j, j + p):
                total += flows[i]
            errors.append(100 * (total / p - rate_ml_per_h) / rate_ml_per_h)
        points.append(
            TrumpetPoint(
                window_min=window,
                samples=p,
                positions=positions,
                ep_max_percent=max(errors),
                ep_min_percent=min(errors),
            )
        )
    return tuple(points)


def mean_error_percent(
    record: FlowRecord, rate_ml_per_h: float, *, start_s: float = ANALYSIS_START_S, end_s: float | None = None
) -> float:
    """A: the percentage error of the mean flow over the analysis period."""
    _check_rate(rate_ml_per_h)
    first, last = _analysis_bounds(record, start_s, end_s)
    t, v = record.times_s, record.cumulative_ml
    return _error_percent(v[last] - v[first], t[last] - t[first], rate_ml_per_h)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A bench rule's outcome: rule id, the limit, the measured value, the verdict."""

    rule: str
    limit: float
    value: float
    verdict: Verdict
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyReport:
    """The whole test: start-up graph (t min, Q mL/h), trumpet curve, A, first-hour deficit, findings."""

    rate_ml_per_h: float
    tolerance_percent: float
    interval_s: float
    duration_s: float
    startup: tuple[tuple[float, float], ...]
    trumpet: tuple[TrumpetPoint, ...]
    mean_error_percent: float
    mean_flow_ml_per_h: float
    first_hour_deficit_ml: float
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> Verdict:
        """Fail when any finding fails."""
        return Verdict.FAIL if any(f.verdict is Verdict.FAIL for f in self.findings) else Verdict.PASS


def analyse(record: FlowRecord, rate_ml_per_h: float, *, tolerance_percent: float) -> AccuracyReport:
    """Run the whole procedure; the pass/fail rule is |A| within the model's stated tolerance at this rate."""
    _check_rate(rate_ml_per_h)
    if not (math.isfinite(tolerance_percent) and tolerance_percent > 0):
        raise BenchError(f"tolerance {tolerance_percent} % must be positive", code="bench.bad_tolerance")
    flows = interval_flows_ml_per_h(record)
    startup = tuple(
        (round(t / 60, 4), round(q, FLOW_DIGITS)) for t, q in zip(record.times_s[1:], flows, strict=True)
    )
    a = mean_error_percent(record, rate_ml_per_h)
    points = trumpet(record, rate_ml_per_h)
    first, _ = _analysis_bounds(record, ANALYSIS_START_S, None)
    expected_ml = rate_ml_per_h * record.times_s[first] / SECONDS_PER_HOUR
    deficit = expected_ml - (record.cumulative_ml[first] - record.cumulative_ml[0])
    finding = Finding(
        rule="bench.mean_error",
        limit=tolerance_percent,
        value=round(a, PERCENT_DIGITS),
        verdict=Verdict.PASS if abs(a) <= tolerance_percent else Verdict.FAIL,
        message=f"mean error A {a:+.2f} % against the stated ±{tolerance_percent:g} %",
    )
    return AccuracyReport(
        rate_ml_per_h=rate_ml_per_h,
        tolerance_percent=tolerance_percent,
        interval_s=record.interval_s,
        duration_s=record.duration_s,
        startup=startup,
        trumpet=tuple(
            TrumpetPoint(
                window_min=p.window_min,
                samples=p.samples,
                positions=p.positions,
                ep_max_percent=round(p.ep_max_percent, PERCENT_DIGITS),
                ep_min_percent=round(p.ep_min_percent, PERCENT_DIGITS),
            )
            for p in points
        ),
        mean_error_percent=round(a, PERCENT_DIGITS),
        mean_flow_ml_per_h=round(rate_ml_per_h * (1 + a / 100), FLOW_DIGITS),
        first_hour_deficit_ml=round(deficit, FLOW_DIGITS),
        findings=(finding,),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseResult:
    """Intermittent/bolus delivery: the volume of each dose and its error against the set dose."""

    dose_ml: float
    delivered_ml: tuple[float, ...]
    errors_percent: tuple[float, ...]

    @property
    def mean_error_percent(self) -> float:
        """Mean of the per-dose errors."""
        return sum(self.errors_percent) / len(self.errors_percent)


def dose_accuracy(record: FlowRecord, dose_ml: float, boundaries_s: Sequence[float]) -> DoseResult:
    """Delivered volume per dose between consecutive boundary times (each on a sample time)."""
    if not (math.isfinite(dose_ml) and dose_ml > 0):
        raise BenchError(f"dose {dose_ml} mL must be positive", code="bench.bad_dose")
    if len(boundaries_s) < 2:
        raise BenchError("need at least two boundaries for one dose", code="bench.no_doses")
    index = {round(t, 6): i for i, t in enumerate(record.times_s)}
    positions = []
    for boundary in boundaries_s:
        found = index.get(round(boundary, 6))
        if found is None:
            raise BenchError(
                f"dose boundary {boundary} s is not a sample time", code="bench.boundary_off_grid"
            )
        positions.append(found)
    if any(b <= a for a, b in itertools.pairwise(positions)):
        raise BenchError("dose boundaries must increase", code="bench.boundaries_not_increasing")
    v = record.cumulative_ml
    delivered = tuple(v[b] - v[a] for a, b in itertools.pairwise(positions))
    errors = tuple(100 * (d - dose_ml) / dose_ml for d in delivered)
    return DoseResult(dose_ml=dose_ml, delivered_ml=delivered, errors_percent=errors)
