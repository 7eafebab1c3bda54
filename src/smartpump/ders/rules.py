"""The DERS rule table: one small pure function per limited parameter, evaluated by one loop.

Each rule reads a resolved ``CheckContext`` and returns the measured value, the LimitSet it is
held to and the unit both are in — or None when the rule does not apply. ``evaluate`` turns every
crossed bound into an ``Alert`` whose rule id is ``ders.<parameter>.<limit kind>``; the limits
themselves are always library data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final

from smartpump.ders.program import Alert, DeviceLimits, InfusionProgram, ProgramKind, VerdictLevel
from smartpump.library.limits import LIMIT_ORDER, LimitSet
from smartpump.library.model import CareArea, DoseLimits, Entry
from smartpump.units import Concentration, rate_to_dose


@dataclass(slots=True, kw_only=True)
class CheckContext:
    """Everything a rule may look at, already resolved and converted to the entry's units
    (built once per check and not changed once rules run; not frozen because frozen init is slow).

    ``dose`` is the dose the pump really delivers, ``dose_programmed`` the dose as asked;
    ``vtbi_ml`` the volume the pump will run; ``pca_basal_delivered`` the basal dose at the rate
    the pump runs."""

    program: InfusionProgram
    care_area: CareArea
    entry: Entry | None
    dose: Decimal | None
    dose_limits: DoseLimits | None
    rate_ml_per_h: Decimal
    rate_ml_per_h_exact: Decimal
    concentration: Concentration | None
    is_custom_concentration: bool
    weight_kg: Decimal | None
    bsa_m2: Decimal | None
    duration_min: Decimal | None
    dose_programmed: Decimal | None = None
    vtbi_ml: Decimal | None = None
    pca_basal_delivered: Decimal | None = None
    device: DeviceLimits | None = None


Measure = tuple[Decimal, LimitSet, str]
"""A value to hold against a LimitSet, and the unit both are expressed in."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A limited parameter: which program kinds it applies to, how to measure it, whether it holds a
    device limit (those are skipped at once when ``device_clear`` says none is crossed), and the
    entry field holding its limits (``pca.basal``; None for care-area and device limits)."""

    parameter: str
    applies_to: frozenset[ProgramKind]
    measure: Callable[[CheckContext], Measure | None]
    is_device: bool = False
    entry_field: str | None = None


ALL_KINDS: Final = frozenset(ProgramKind)
LIBRARY_KINDS: Final = ALL_KINDS - {ProgramKind.BASIC}
PRIMARY_KINDS: Final = frozenset({ProgramKind.CONTINUOUS, ProgramKind.INTERMITTENT})


def _patient_weight(ctx: CheckContext) -> Measure | None:
    """Patient weight against the care area's weight limits, whenever a weight was entered."""
    limits = ctx.care_area.weight_kg.limits
    if ctx.weight_kg is None or limits.is_empty:
        return None
    return (ctx.weight_kg, limits, "kg")


def _patient_bsa(ctx: CheckContext) -> Measure | None:
    """Body surface area against the care area's BSA limits, whenever one is used."""
    limits = ctx.care_area.bsa_m2.limits
    if ctx.bsa_m2 is None or limits.is_empty:
        return None
    return (ctx.bsa_m2, limits, "m2")


def worse_of(limits: LimitSet, delivered: Decimal, programmed: Decimal | None) -> Decimal:
    """Of the dose delivered and the dose programmed, the one to hold against ``limits``: the
    larger when either is above the lowest upper bound, else the smaller (a value on a bound is
    inside it, so this reports whichever of the two crosses the most severe bound)."""
    if programmed is None or programmed == delivered:
        return delivered
    high, low = (delivered, programmed) if delivered > programmed else (programmed, delivered)
    upper = limits.soft_max if limits.soft_max is not None else limits.hard_max
    return high if upper is not None and high > upper else low


def _dose(ctx: CheckContext) -> Measure | None:
    """The delivered and the programmed dose (or bolus/loading dose) against the limits of its kind."""
    if ctx.dose is None or ctx.dose_limits is None:
        return None
    limits = ctx.dose_limits.limits
    return (worse_of(limits, ctx.dose, ctx.dose_programmed), limits, str(ctx.dose_limits.unit))


def _rate(ctx: CheckContext) -> Measure | None:
    """The delivered flow rate against the entry's rate limits (continuous and intermittent); not
    when the entry is dosed in mL/h with the same limits (an IV fluid: the dose rule holds that
    value against those limits already, so one value alerts once)."""
    entry = ctx.entry
    if entry is None or entry.rate_ml_per_h.limits.is_empty:
        return None
    unit = entry.dose.unit
    if unit.is_volume and unit.is_rate and entry.dose.limits == entry.rate_ml_per_h.limits:
        return None
    return (ctx.rate_ml_per_h, entry.rate_ml_per_h.limits, "mL/h")


def _dose_rate(ctx: CheckContext) -> Measure | None:
    """An intermittent's dose rate (the amount per time the rate the pump runs gives) against the
    entry's dose-rate limits."""
    entry = ctx.entry
    if entry is None or entry.dose_rate is None:
        return None
    unit = entry.dose_rate.unit
    dose_rate = rate_to_dose(
        ctx.rate_ml_per_h, unit, ctx.concentration, weight_kg=ctx.weight_kg, bsa_m2=ctx.bsa_m2
    )
    return (dose_rate, entry.dose_rate.limits, str(unit))


def _bolus_rate(ctx: CheckContext) -> Measure | None:
    """A bolus's flow rate against the entry's bolus administration-rate limits."""
    entry = ctx.entry
    if entry is None or entry.bolus_rate is None or ctx.program.kind is not ProgramKind.BOLUS:
        return None
    unit = entry.bolus_rate.unit
    if unit.is_volume:
        return (ctx.rate_ml_per_h, entry.bolus_rate.limits, str(unit))
    dose_rate = rate_to_dose(
        ctx.rate_ml_per_h, unit, ctx.concentration, weight_kg=ctx.weight_kg, bsa_m2=ctx.bsa_m2
    )
    return (dose_rate, entry.bolus_rate.limits, str(unit))


def _basic_rate(ctx: CheckContext) -> Measure | None:
    """A basic (library-less) infusion's rate against the care area's basic-infusion limits."""
    return (ctx.rate_ml_per_h, ctx.care_area.basic_infusion.rate_ml_per_h.limits, "mL/h")


def _care_area_max_rate(ctx: CheckContext) -> Measure | None:
    """Any flow rate against the care area's maximum rate (a hard limit)."""
    cap = ctx.care_area.rate_cap
    return None if cap.is_empty else (ctx.rate_ml_per_h, cap, "mL/h")


def _vtbi(ctx: CheckContext) -> Measure | None:
    """The volume the pump will run against the entry's VTBI limits."""
    if ctx.entry is None or ctx.vtbi_ml is None or ctx.entry.vtbi_ml.limits.is_empty:
        return None
    return (ctx.vtbi_ml, ctx.entry.vtbi_ml.limits, "mL")


def _care_area_max_vtbi(ctx: CheckContext) -> Measure | None:
    """The volume the pump will run against the care area's maximum VTBI (a hard limit)."""
    cap = ctx.care_area.vtbi_cap
    if ctx.vtbi_ml is None or cap.is_empty:
        return None
    return (ctx.vtbi_ml, cap, "mL")


@lru_cache(maxsize=256)
def _device_bounds(hard_min: Decimal | None, hard_max: Decimal | None) -> LimitSet:
    """A device's hard bounds as a LimitSet (few distinct values: built once each)."""
    return LimitSet(hard_min=hard_min, hard_max=hard_max)


def _device_rate(ctx: CheckContext) -> Measure | None:
    """The rate the pump runs against the device's range (the resolution is the least rate without
    a device); a rate below half a step is shown as the rate asked for."""
    device = ctx.device
    rate = ctx.rate_ml_per_h
    if ctx.rate_ml_per_h_exact == 0 or (device is None and rate > 0):
        return None
    low = device.min_rate_ml_per_h if device is not None else ctx.program.rate_resolution_ml_per_h
    high = device.max_rate_ml_per_h if device is not None else None
    if low <= rate and (high is None or rate <= high):
        return None
    rate = rate if rate > 0 else ctx.rate_ml_per_h_exact
    return (rate, _device_bounds(low, high), "mL/h")


def _device_rate_cap(ctx: CheckContext) -> Measure | None:
    """The rate the pump runs against the configuration's rate cap (set by biomedical engineering)."""
    device = ctx.device
    if device is None or device.rate_cap_ml_per_h is None or ctx.rate_ml_per_h <= device.rate_cap_ml_per_h:
        return None
    return (ctx.rate_ml_per_h, _device_bounds(None, device.rate_cap_ml_per_h), "mL/h")


def _device_vtbi(ctx: CheckContext) -> Measure | None:
    """The volume the pump will run against its VTBI resolution and the device's largest VTBI."""
    device = ctx.device
    vtbi = ctx.vtbi_ml
    if vtbi is None or (
        vtbi >= ctx.program.vtbi_resolution_ml
        and (device is None or device.max_vtbi_ml is None or vtbi <= device.max_vtbi_ml)
    ):
        return None
    high = device.max_vtbi_ml if device is not None else None
    return (vtbi, _device_bounds(ctx.program.vtbi_resolution_ml, high), "mL")


def _device_container(ctx: CheckContext) -> Measure | None:
    """The volume the pump will run against what is left in the container on the channel."""
    device = ctx.device
    if (
        device is None
        or device.container_left_ml is None
        or ctx.vtbi_ml is None
        or ctx.vtbi_ml <= device.container_left_ml
    ):
        return None
    return (ctx.vtbi_ml, _device_bounds(None, device.container_left_ml), "mL")


def _duration(ctx: CheckContext) -> Measure | None:
    """An intermittent infusion's duration against the entry's duration limits."""
    if ctx.entry is None or ctx.duration_min is None or ctx.program.kind is not ProgramKind.INTERMITTENT:
        return None
    return (ctx.duration_min, ctx.entry.duration_min.limits, "min")


def _loading_duration(ctx: CheckContext) -> Measure | None:
    """A loading dose's duration against the entry's loading-duration limits."""
    if ctx.entry is None or ctx.duration_min is None or ctx.program.kind is not ProgramKind.LOADING:
        return None
    return (ctx.duration_min, ctx.entry.loading_duration_min.limits, "min")


def _custom_concentration(ctx: CheckContext) -> Measure | None:
    """A custom concentration's strength (amount per mL) against the entry's concentration limits."""
    entry = ctx.entry
    if not ctx.is_custom_concentration or entry is None or entry.custom_concentration is None:
        return None
    assert ctx.concentration is not None
    custom = entry.custom_concentration
    return (ctx.concentration.per_ml_in(custom.unit), custom.limits, f"{custom.unit}/mL")


def _pca_measure(
    field: str, unit_of: Callable[[CheckContext], str]
) -> Callable[[CheckContext], Measure | None]:
    def measure(ctx: CheckContext) -> Measure | None:
        pca_limits = ctx.entry.pca if ctx.entry is not None else None
        programmed = ctx.program.pca
        if pca_limits is None or programmed is None:
            return None
        value: Decimal | None = getattr(programmed, field)
        limit_holder = getattr(pca_limits, field)
        if value is None or limit_holder is None:
            return None
        if field == "basal" and ctx.pca_basal_delivered is not None:
            value = worse_of(limit_holder.limits, ctx.pca_basal_delivered, value)
        return (value, limit_holder.limits, unit_of(ctx))

    measure.__doc__ = f"The programmed PCA {field.replace('_', ' ')} against the entry's PCA limits."
    return measure


def _pca_unit(attr: str) -> Callable[[CheckContext], str]:
    def unit(ctx: CheckContext) -> str:
        assert ctx.entry is not None and ctx.entry.pca is not None
        holder: DoseLimits = getattr(ctx.entry.pca, attr)
        return str(holder.unit)

    return unit


def _minutes(_: CheckContext) -> str:
    return "min"


PCA_ONLY: Final = frozenset({ProgramKind.PCA})


def _pca_rule(name: str, field: str, unit_of: Callable[[CheckContext], str] | None = None) -> Rule:
    """The rule ``pca.<name>`` holding the programmed PCA ``field`` against the entry's PCA limits."""
    measure = _pca_measure(field, unit_of or _pca_unit(field))
    return Rule(f"pca.{name}", PCA_ONLY, measure, entry_field=f"pca.{field}")


RULES: Final[tuple[Rule, ...]] = (
    Rule("patient_weight", ALL_KINDS, _patient_weight),
    Rule("patient_bsa", ALL_KINDS, _patient_bsa),
    Rule("concentration", LIBRARY_KINDS, _custom_concentration, entry_field="custom_concentration"),
    Rule("dose", PRIMARY_KINDS, _dose, entry_field="dose"),
    Rule("bolus_dose", frozenset({ProgramKind.BOLUS}), _dose, entry_field="bolus"),
    Rule("loading_dose", frozenset({ProgramKind.LOADING}), _dose, entry_field="loading"),
    Rule("rate", PRIMARY_KINDS, _rate, entry_field="rate_ml_per_h"),
    Rule("dose_rate", frozenset({ProgramKind.INTERMITTENT}), _dose_rate, entry_field="dose_rate"),
    Rule("bolus_rate", frozenset({ProgramKind.BOLUS}), _bolus_rate, entry_field="bolus_rate"),
    Rule("duration", frozenset({ProgramKind.INTERMITTENT}), _duration, entry_field="duration_min"),
    Rule(
        "loading_duration",
        frozenset({ProgramKind.LOADING}),
        _loading_duration,
        entry_field="loading_duration_min",
    ),
    Rule("vtbi", LIBRARY_KINDS, _vtbi, entry_field="vtbi_ml"),
    _pca_rule("demand_dose", "demand_dose"),
    _pca_rule("lockout", "lockout_min", _minutes),
    _pca_rule("basal", "basal"),
    _pca_rule("loading_dose", "loading_dose"),
    _pca_rule("max_dose", "max_dose"),
    Rule("basic.rate", frozenset({ProgramKind.BASIC}), _basic_rate),
    Rule("care_area.max_rate", ALL_KINDS, _care_area_max_rate),
    Rule("care_area.max_vtbi", ALL_KINDS, _care_area_max_vtbi),
    Rule("device.rate", ALL_KINDS, _device_rate, is_device=True),
    Rule("device.rate_cap", ALL_KINDS, _device_rate_cap, is_device=True),
    Rule("device.vtbi", ALL_KINDS, _device_vtbi, is_device=True),
    Rule("device.container", ALL_KINDS, _device_container, is_device=True),
)


_RULES_BY_KIND: Final[dict[ProgramKind, tuple[Rule, ...]]] = {
    kind: tuple(r for r in RULES if kind in r.applies_to) for kind in ProgramKind
}
_RULES_WITHOUT_DEVICE: Final[dict[ProgramKind, tuple[Rule, ...]]] = {
    kind: tuple(r for r in rules if not r.is_device) for kind, rules in _RULES_BY_KIND.items()
}


def device_clear(ctx: CheckContext) -> bool:
    """True when no device rule can fire: the rate the pump runs is inside the device's range (the
    resolution without a device) and its cap, and the volume inside the VTBI range and the container."""
    device, program = ctx.device, ctx.program
    rate, vtbi = ctx.rate_ml_per_h, ctx.vtbi_ml
    if ctx.rate_ml_per_h_exact != 0:
        if rate < (device.min_rate_ml_per_h if device is not None else program.rate_resolution_ml_per_h):
            return False
        if device is not None and (
            rate > device.max_rate_ml_per_h
            or (device.rate_cap_ml_per_h is not None and rate > device.rate_cap_ml_per_h)
        ):
            return False
    if vtbi is not None:
        if vtbi < program.vtbi_resolution_ml:
            return False
        if device is not None and (
            (device.max_vtbi_ml is not None and vtbi > device.max_vtbi_ml)
            or (device.container_left_ml is not None and vtbi > device.container_left_ml)
        ):
            return False
    return True


def evaluate(ctx: CheckContext, rules: tuple[Rule, ...] | None = None) -> tuple[Alert, ...]:
    """Run every rule that applies to the program's kind (the whole table, or ``rules`` in the
    order given) and return, in rule order, one Alert per parameter whose limits are crossed,
    for the most severe bound crossed (a dose above the hard max yields the hard_max alert only)."""
    alerts: list[Alert] = []
    kind = ctx.program.kind
    if rules is not None:
        selected = tuple(r for r in rules if kind in r.applies_to)
    else:
        selected = (_RULES_WITHOUT_DEVICE if device_clear(ctx) else _RULES_BY_KIND)[kind]
    for rule in selected:
        measured = rule.measure(ctx)
        if measured is None:
            continue
        value, limits, unit = measured
        breach = limits.classify(value)
        if breach is None:
            continue
        alerts.append(
            Alert(
                rule=f"ders.{rule.parameter}.{breach.kind.value}",
                parameter=rule.parameter,
                limit_kind=breach.kind,
                limit=breach.limit,
                value=breach.value,
                unit=unit,
                factor=breach.factor,
                level=VerdictLevel.HARD if breach.kind.is_hard else VerdictLevel.SOFT,
            )
        )
    return tuple(alerts)


def rule_ids() -> tuple[str, ...]:
    """Every rule id ``evaluate`` can produce (for docs and CQI code tables)."""
    return tuple(f"ders.{r.parameter}.{k.value}" for r in RULES for k in LIMIT_ORDER)
