"""Geometry of the bench charts (start-up graph, trumpet curve, trend) for server-rendered inline SVG.

Each chart is plain data: polylines as SVG point lists, reference lines, a band, and labelled ticks in
chart pixels; the template draws them with presentation attributes (no script, no chart library).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

WIDTH: Final = 600.0
HEIGHT: Final = 260.0
LEFT: Final = 56.0
RIGHT: Final = 16.0
TOP: Final = 12.0
BOTTOM: Final = 36.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """An axis tick: its position in pixels and its label."""

    at: float
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """A polyline (``points`` in SVG syntax) with a CSS class and a legend name."""

    points: str
    css: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """One chart: title, axis titles, ticks, lines, dots and an optional tolerance band (y0, y1)."""

    title: str
    x_title: str
    y_title: str
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    lines: tuple[Line, ...]
    dots: tuple[tuple[float, float, str], ...]
    band: tuple[float, float] | None
    width: float = WIDTH
    height: float = HEIGHT
    left: float = LEFT
    bottom_y: float = HEIGHT - BOTTOM
    right_x: float = WIDTH - RIGHT
    top_y: float = TOP


def nice_step(span: float, count: int = 5) -> float:
    """A 1-2-5 step giving about ``count`` ticks over ``span``."""
    raw = max(span, 1e-9) / count
    power: float = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


@dataclass(frozen=True, slots=True)
class _Scale:
    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        return self.a + (value - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _ticks(lo: float, hi: float, scale: _Scale) -> tuple[Tick, ...]:
    step = nice_step(hi - lo)
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return tuple(
        Tick(at=round(scale(first + i * step), 1), label=f"{first + i * step:g}") for i in range(count)
    )


def _points(xs: Sequence[float], ys: Sequence[float], sx: _Scale, sy: _Scale) -> str:
    return " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))


def _y_range(values: Sequence[float], floor: float, ceiling: float) -> tuple[float, float]:
    lo, hi = min([*values, floor]), max([*values, ceiling])
    step = nice_step(hi - lo)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def startup_chart(report: dict[str, Any]) -> Chart:
    """Flow per interval against time over the whole test, with the set rate and its tolerance band."""
    rate = float(report["rate_ml_per_h"])
    tolerance = float(report["tolerance_percent"])
    times = [float(t) for t, _ in report["startup"]]
    flows = [float(q) for _, q in report["startup"]]
    end = max(times, default=120.0)
    sx = _Scale(0.0, end, LEFT, WIDTH - RIGHT)
    lo, hi = _y_range(flows, 0.0, rate * 1.2)
    sy = _Scale(lo, hi, HEIGHT - BOTTOM, TOP)
    band = (sy(rate * (1 + tolerance / 100)), sy(rate * (1 - tolerance / 100)))
    return Chart(
        title="Start-up graph",
        x_title="time (min)",
        y_title="flow Q (mL/h)",
        x_ticks=_ticks(0.0, end, sx),
        y_ticks=_ticks(lo, hi, sy),
        lines=(
            Line(points=_points([0.0, end], [rate, rate], sx, sy), css="ref", name=f"set rate {rate:g} mL/h"),
            Line(points=_points(times, flows, sx, sy), css="flow", name="flow Qi"),
        ),
        dots=(),
        band=band,
    )


def trumpet_chart(report: dict[str, Any]) -> Chart:
    """Ep(max) and Ep(min) against the observation window, with the mean error A and the tolerance."""
    tolerance = float(report["tolerance_percent"])
    a = float(report["mean_error_percent"])
    windows = [float(p["window_min"]) for p in report["trumpet"]]
    highs = [float(p["ep_max_percent"]) for p in report["trumpet"]]
    lows = [float(p["ep_min_percent"]) for p in report["trumpet"]]
    end = max([*windows, 32.0])
    sx = _Scale(0.0, end, LEFT, WIDTH - RIGHT)
    lo, hi = _y_range([*highs, *lows], -tolerance * 1.5, tolerance * 1.5)
    sy = _Scale(lo, hi, HEIGHT - BOTTOM, TOP)
    dots = tuple(
        (round(sx(w), 1), round(sy(e), 1), "max") for w, e in zip(windows, highs, strict=True)
    ) + tuple((round(sx(w), 1), round(sy(e), 1), "min") for w, e in zip(windows, lows, strict=True))
    return Chart(
        title="Trumpet curve (second hour)",
        x_title="observation window (min)",
        y_title="error (%)",
        x_ticks=_ticks(0.0, end, sx),
        y_ticks=_ticks(lo, hi, sy),
        lines=(
            Line(points=_points([0.0, end], [0.0, 0.0], sx, sy), css="zero", name="zero error"),
            Line(points=_points([0.0, end], [a, a], sx, sy), css="ref", name=f"mean error A {a:+.2f} %"),
            Line(points=_points(windows, highs, sx, sy), css="epmax", name="Ep(max)"),
            Line(points=_points(windows, lows, sx, sy), css="epmin", name="Ep(min)"),
        ),
        dots=dots,
        band=(sy(tolerance), sy(-tolerance)),
    )


def trend_chart(errors_percent: Sequence[float], tolerance_percent: float) -> Chart:
    """Mean error A of each test in order (the pump's trend), inside its tolerance band."""
    count = len(errors_percent)
    sx = _Scale(0.0, max(count - 1, 1), LEFT, WIDTH - RIGHT)
    lo, hi = _y_range(errors_percent, -tolerance_percent * 1.5, tolerance_percent * 1.5)
    sy = _Scale(lo, hi, HEIGHT - BOTTOM, TOP)
    xs = [float(i) for i in range(count)]
    return Chart(
        title="Trend: mean error A per test",
        x_title="test (oldest first)",
        y_title="A (%)",
        x_ticks=tuple(Tick(at=round(sx(i), 1), label=str(i + 1)) for i in range(count)),
        y_ticks=_ticks(lo, hi, sy),
        lines=(Line(points=_points(xs, errors_percent, sx, sy), css="flow", name="A"),),
        dots=tuple(
            (round(sx(x), 1), round(sy(e), 1), "max") for x, e in zip(xs, errors_percent, strict=True)
        ),
        band=(sy(tolerance_percent), sy(-tolerance_percent)),
    )
