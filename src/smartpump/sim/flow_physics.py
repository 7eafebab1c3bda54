"""Physical delivery of a simulated pump on a bench: what a balance weighs, and the occlusion test.

This layer never touches the pump core's exact volume accounting; it models the gap between the
commanded and the physical delivery. The mechanism displaces fluid (peristaltic strokes with a
sinusoidal ripple within each cycle, or a syringe plunger after its drive slack and stiction are
taken up); the set or syringe tolerance, the head height and the back-pressure scale the mean flow;
the line compliance stores volume as the line pressurises to the back-pressure (a first-order lag
with time constant C * P / rate, so low rates start slowest). Noise is seeded: one stroke-volume
factor per cycle and the balance's reading noise per sample.

Floats throughout: the physics is an approximation whose noise dwarfs binary rounding.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from smartpump.errors import SmartpumpError
from smartpump.pump.capabilities import PumpModel, capabilities
from smartpump.pump.device import time_to_alarm_s
from smartpump.pump.sensors import LineModel
from smartpump.sim.flow_models import DisposableSet, FlowModel, Mechanism, flow_model

WATER_DENSITY_G_PER_ML: Final = 0.998
SECONDS_PER_HOUR: Final = 3600.0
MG_PER_G: Final = 1000.0
UL_PER_ML: Final = 1000.0
MAX_BENCH_S: Final = 48 * SECONDS_PER_HOUR


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchConditions:
    """The test set-up: container height above the pump's reference, downstream pressure, liquid, seed."""

    head_height_cm: float = 0.0
    back_pressure_mmhg: float = 0.0
    density_g_per_ml: float = WATER_DENSITY_G_PER_ML
    seed: int = 1
    noise: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceRecord:
    """A simulated balance export: sample times (s from start) and cumulative mass (g), t=0 first."""

    model: PumpModel
    set_name: str
    rate_ml_per_h: float
    conditions: BenchConditions
    times_s: tuple[float, ...]
    mass_g: tuple[float, ...]
    steady_rate_ml_per_h: float


def steady_rate_ml_per_h(
    model: FlowModel, disposable: DisposableSet, rate_ml_per_h: float, conditions: BenchConditions
) -> float:
    """The physical mean rate once started: set tolerance, head height and back-pressure applied."""
    factor = (
        (1 + disposable.volume_error_percent / 100)
        * (1 + model.head_percent_per_cm * conditions.head_height_cm / 100)
        * (1 + model.back_pressure_percent_per_mmhg * conditions.back_pressure_mmhg / 100)
    )
    return max(0.0, rate_ml_per_h * factor)


def displaced_ml(rate_ml_per_s: float, stroke_ml: float, pulsation: float, t_s: float) -> float:
    """Volume the mechanism has displaced by ``t_s`` (noise-free): mean flow plus the within-cycle ripple.

    The flow is ``rate * (1 + pulsation * sin(2 pi t / T))`` with cycle time ``T = stroke / rate``;
    its integral is exact here, so sampling never aliases the ripple.
    """
    if rate_ml_per_s <= 0:
        return 0.0
    if stroke_ml <= 0 or pulsation == 0:
        return rate_ml_per_s * t_s
    cycle_s = stroke_ml / rate_ml_per_s
    ripple = rate_ml_per_s * pulsation * cycle_s / (2 * math.pi)
    return rate_ml_per_s * t_s + ripple * (1 - math.cos(2 * math.pi * t_s / cycle_s))


def _check(rate_ml_per_h: float, duration_s: float, interval_s: float, model: PumpModel) -> None:
    caps = capabilities(model)
    if not float(caps.min_rate_ml_per_h) <= rate_ml_per_h <= float(caps.max_rate_ml_per_h):
        raise SmartpumpError(
            f"rate {rate_ml_per_h} mL/h is outside {caps.min_rate_ml_per_h}-{caps.max_rate_ml_per_h} mL/h "
            f"of the {model} pump",
            code="bench.rate_out_of_range",
        )
    if not 0 < interval_s <= duration_s <= MAX_BENCH_S:
        raise SmartpumpError(
            f"need 0 < interval ({interval_s} s) <= duration ({duration_s} s) <= {MAX_BENCH_S:.0f} s",
            code="bench.bad_duration",
        )


def _weigh(
    model: FlowModel,
    disposable: DisposableSet,
    conditions: BenchConditions,
    rng: random.Random,
    mechanism_ml: Callable[[float], float],
    rate_ml_per_s: float,
    duration_s: float,
    interval_s: float,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Balance readings (s, g) of what leaves the line while the mechanism displaces ``mechanism_ml(t)``.

    Slack and stiction swallow the first displacement; one stroke-volume factor is drawn per cycle;
    the line's compliance stores volume up to C * back-pressure with time constant C * P / rate.
    """
    stroke_ml = model.stroke_ml(disposable)
    dead_ml = (model.slack_mm + model.stiction_mm) * disposable.ml_per_mm
    compliance_ml_per_mmhg = float(capabilities(model.model).line_compliance_ul_per_mmhg) / UL_PER_ML
    stored_target_ml = compliance_ml_per_mmhg * max(0.0, conditions.back_pressure_mmhg)
    tau_s = stored_target_ml / rate_ml_per_s if rate_ml_per_s > 0 else 0.0
    noise_sd = model.flow_noise_percent / 100 if conditions.noise else 0.0
    reading_sd_g = model.reading_noise_mg / MG_PER_G if conditions.noise else 0.0
    step_s = min(1.0, interval_s)
    per_sample = max(1, round(interval_s / step_s))
    previous_ml = stored_ml = out_ml = 0.0
    cycle = 0
    factor = 1.0
    times = [0.0]
    masses = [rng.gauss(0, reading_sd_g) if reading_sd_g else 0.0]
    for k in range(1, round(duration_s / step_s) + 1):
        t_s = k * step_s
        moved_ml = max(0.0, mechanism_ml(t_s) - dead_ml)
        if stroke_ml > 0 and noise_sd:
            now_cycle = int(moved_ml / stroke_ml)
            if now_cycle != cycle:
                cycle = now_cycle
                factor = max(0.0, 1 + rng.gauss(0, noise_sd))
        into_line_ml = (moved_ml - previous_ml) * factor
        previous_ml = moved_ml
        if tau_s > 0:
            decay = math.exp(-step_s / tau_s)
            new_stored = stored_ml * decay + into_line_ml * (tau_s / step_s) * (1 - decay)
            out_ml += stored_ml + into_line_ml - new_stored
            stored_ml = new_stored
        else:
            out_ml += into_line_ml
        if k % per_sample == 0:
            times.append(t_s)
            reading = rng.gauss(0, reading_sd_g) if reading_sd_g else 0.0
            masses.append(out_ml * conditions.density_g_per_ml + reading)
    return tuple(times), tuple(masses)


def balance_record(
    model_name: PumpModel | str,
    rate_ml_per_h: float,
    *,
    set_name: str | None = None,
    conditions: BenchConditions = BenchConditions(),
    duration_s: float = 7200.0,
    interval_s: float = 30.0,
) -> BalanceRecord:
    """Run the pump on a simulated balance: cumulative mass every ``interval_s`` for ``duration_s``."""
    model = flow_model(model_name)
    _check(rate_ml_per_h, duration_s, interval_s, model.model)
    disposable = model.disposable(set_name)
    rng = random.Random(conditions.seed)
    steady = steady_rate_ml_per_h(model, disposable, rate_ml_per_h, conditions)
    rate_ml_per_s = steady / SECONDS_PER_HOUR
    stroke_ml = model.stroke_ml(disposable)
    pulsation = model.pulsation_fraction
    phase_s = rng.uniform(0, stroke_ml / rate_ml_per_s) if rate_ml_per_s > 0 and stroke_ml > 0 else 0.0
    offset_ml = displaced_ml(rate_ml_per_s, stroke_ml, pulsation, phase_s)

    def mechanism_ml(t_s: float) -> float:
        return displaced_ml(rate_ml_per_s, stroke_ml, pulsation, t_s + phase_s) - offset_ml

    times, masses = _weigh(
        model, disposable, conditions, rng, mechanism_ml, rate_ml_per_s, duration_s, interval_s
    )
    return BalanceRecord(
        model=model.model,
        set_name=disposable.name,
        rate_ml_per_h=rate_ml_per_h,
        conditions=conditions,
        times_s=times,
        mass_g=masses,
        steady_rate_ml_per_h=steady,
    )


def dose_record(
    model_name: PumpModel | str,
    dose_ml: float,
    *,
    rate_ml_per_h: float,
    every_s: float,
    doses: int,
    set_name: str | None = None,
    conditions: BenchConditions = BenchConditions(),
    interval_s: float = 1.0,
) -> BalanceRecord:
    """Intermittent delivery on the balance: ``doses`` doses of ``dose_ml`` at ``rate_ml_per_h``, one
    starting every ``every_s``; each dose ends when the mechanism has displaced it (set error included)."""
    model = flow_model(model_name)
    duration_s = every_s * doses
    _check(rate_ml_per_h, duration_s, interval_s, model.model)
    if not (dose_ml > 0 and doses >= 1) or dose_ml / rate_ml_per_h * SECONDS_PER_HOUR > every_s:
        raise SmartpumpError(
            f"{doses} dose(s) of {dose_ml} mL at {rate_ml_per_h} mL/h do not fit one every {every_s} s",
            code="bench.bad_doses",
        )
    disposable = model.disposable(set_name)
    rng = random.Random(conditions.seed)
    steady = steady_rate_ml_per_h(model, disposable, rate_ml_per_h, conditions)
    rate_ml_per_s = steady / SECONDS_PER_HOUR
    physical_dose_ml = dose_ml * steady / rate_ml_per_h
    stroke_ml = model.stroke_ml(disposable)
    pulsation = model.pulsation_fraction

    def mechanism_ml(t_s: float) -> float:
        k = min(int(t_s // every_s), doses - 1)
        within = displaced_ml(rate_ml_per_s, stroke_ml, pulsation, t_s - k * every_s)
        return k * physical_dose_ml + min(within, physical_dose_ml)

    times, masses = _weigh(
        model, disposable, conditions, rng, mechanism_ml, rate_ml_per_s, duration_s, interval_s
    )
    return BalanceRecord(
        model=model.model,
        set_name=disposable.name,
        rate_ml_per_h=rate_ml_per_h,
        conditions=conditions,
        times_s=times,
        mass_g=masses,
        steady_rate_ml_per_h=steady,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OcclusionResult:
    """One occlusion test: time from occlusion to alarm and the bolus released after back-off."""

    rate_ml_per_h: float
    threshold_mmhg: float
    alarm_time_s: float
    declared_time_s: float
    limit_s: float
    bolus_ml: float
    bolus_limit_ml: float

    @property
    def passed(self) -> bool:
        """Alarm within the model's stated time and bolus within its stated volume."""
        return self.alarm_time_s <= self.limit_s and self.bolus_ml <= self.bolus_limit_ml


def occlusion_test(
    model_name: PumpModel | str,
    rate_ml_per_h: float,
    *,
    set_name: str | None = None,
    threshold_mmhg: float | None = None,
    seed: int = 1,
    sensor_period_s: float = 1.0,
) -> OcclusionResult:
    """Occlude the line below a running pump; step the pump's pressure model until the alarm.

    The mechanism keeps displacing (ripple included) into the closed line; the pressure follows the
    pump's own ``LineModel``; the alarm time is when a sensor reading first reaches the threshold.
    The limit scales the model's stated time at its minimum rate by ``min_rate / rate``.
    """
    model = flow_model(model_name)
    caps = capabilities(model.model)
    disposable = model.disposable(set_name)
    threshold = float(caps.default_occlusion_mmhg) if threshold_mmhg is None else threshold_mmhg
    caps.check_occlusion(Decimal(str(threshold)))
    _check(rate_ml_per_h, 1.0, 1.0, model.model)
    line = LineModel(
        threshold_mmhg=Decimal(str(threshold)),
        compliance_ul_per_mmhg=caps.line_compliance_ul_per_mmhg,
        backoff_ml=caps.occlusion_backoff_ml,
    )
    rate_ml_per_s = rate_ml_per_h * (1 + disposable.volume_error_percent / 100) / SECONDS_PER_HOUR
    stroke_ml = model.stroke_ml(disposable)
    rng = random.Random(seed)
    phase_s = rng.uniform(0, stroke_ml / rate_ml_per_s) if stroke_ml > 0 else 0.0
    offset_ml = displaced_ml(rate_ml_per_s, stroke_ml, model.pulsation_fraction, phase_s)
    target_ml = float(line.stored_at_alarm_ml)
    t_s = 0.0
    pumped_ml = 0.0
    limit_bound_s = 4 * target_ml / rate_ml_per_s + sensor_period_s
    while float(line.pressure_mmhg(Decimal(repr(pumped_ml)))) < threshold:
        t_s += sensor_period_s
        if t_s > limit_bound_s:
            raise SmartpumpError("the pressure never reached the threshold", code="bench.no_occlusion_alarm")
        pumped_ml = (
            displaced_ml(rate_ml_per_s, stroke_ml, model.pulsation_fraction, t_s + phase_s) - offset_ml
        )
    min_rate = float(caps.min_rate_ml_per_h)
    return OcclusionResult(
        rate_ml_per_h=rate_ml_per_h,
        threshold_mmhg=threshold,
        alarm_time_s=t_s,
        declared_time_s=float(time_to_alarm_s(caps, Decimal(str(rate_ml_per_h)), Decimal(str(threshold)))),
        limit_s=model.occlusion_alarm_max_s_at_min_rate * min_rate / rate_ml_per_h,
        bolus_ml=float(line.released_bolus_ml(Decimal(repr(pumped_ml)))),
        bolus_limit_ml=model.occlusion_bolus_max_ml,
    )


def occlusion_suite(
    model_name: PumpModel | str, *, set_name: str | None = None, seed: int = 1
) -> tuple[OcclusionResult, ...]:
    """The 60601-2-24 pair: occlusion at the minimum and an intermediate rate (default threshold)."""
    model = flow_model(model_name)
    caps = capabilities(model.model)
    rates = (float(caps.min_rate_ml_per_h), model.intermediate_rate_ml_per_h)
    return tuple(occlusion_test(model.model, r, set_name=set_name, seed=seed) for r in rates)


__all__ = [
    "WATER_DENSITY_G_PER_ML",
    "BalanceRecord",
    "BenchConditions",
    "Mechanism",
    "OcclusionResult",
    "balance_record",
    "displaced_ml",
    "dose_record",
    "occlusion_suite",
    "occlusion_test",
    "steady_rate_ml_per_h",
]
