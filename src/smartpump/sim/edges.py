"""Limit-edge scenarios for the pre-release harness: intermittent entries at their dose, duration and
dose-rate limits, and custom concentrations at their concentration limits (issue 18).

For every bound a limit set has, two scenarios: the value exactly on the bound (inside it, by the
library's rule) and 10 % beyond it (x 1.1 above a maximum, x 0.9 below a minimum, 4 significant
digits). Everything else is the usual program: the usual dose (default, else middle of the range), the
usual duration (likewise; 60 min without duration limits), the first fixed concentration (else the
middle of the custom concentration's range in a 100 mL bag), the care area's usual patient. A dose-rate
edge keeps the usual dose and takes the duration that runs it at the edge.

The expected verdict is computed from the limits, independent of the DERS engine, as the pump runs the
program: the volume that holds the dose rounded half-up once to the model's VTBI step, the rate that
gives it over the duration rounded half-up once to the step of its rate band, and the dose that volume
holds. ``hard`` when the programmed or delivered dose, the duration, the dose rate at the rate the pump
runs, that rate (entry limits, care-area maximum, model range) or the custom concentration is beyond a
hard bound, or the usual patient is beyond the care area's weight or BSA limits (an area without soft
weight limits has the middle of its hard range as usual weight: 250 kg in the Alaris v66 Adult profile,
whose BSA at 170 cm is above its 3 m2 hard max); ``soft`` likewise for a soft bound; else ``ok`` (a
value on a bound is inside it).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Final

from smartpump.errors import SmartpumpError
from smartpump.library.limits import LimitKind, LimitSet
from smartpump.library.model import CareArea, DeliveryMode, DrugLibrary, Entry
from smartpump.pump.capabilities import Capabilities
from smartpump.sim.generate import (
    USUAL_HEIGHT_CM,
    Family,
    GeneratedScenario,
    build_scenario,
    caps_for,
    continuous_step,
    continuous_verdict,
    level_of,
    pump_rate_ml_per_h,
    usual_weight_kg,
)
from smartpump.sim.workload import typical
from smartpump.units import (
    Concentration,
    bsa_mosteller_m2,
    dose_to_rate_ml_per_h,
    dose_to_volume_ml,
    format_decimal,
    rate_to_dose,
    round_half_up,
    volume_to_dose,
)

BEYOND: Final = {
    LimitKind.HARD_MIN: Decimal("0.9"),
    LimitKind.SOFT_MIN: Decimal("0.9"),
    LimitKind.SOFT_MAX: Decimal("1.1"),
    LimitKind.HARD_MAX: Decimal("1.1"),
}
USUAL_DURATION_MIN: Final = Decimal(60)
CUSTOM_BAG_ML: Final = Decimal(100)


def _worst(*levels: str) -> str:
    return "hard" if "hard" in levels else "soft" if "soft" in levels else "ok"


def _edges(limits: LimitSet) -> Iterator[tuple[str, Decimal]]:
    """(label, value) on and 10 % beyond each bound of ``limits``, in bound order."""
    for kind, bound in limits.items():
        yield f"on its {kind.value}", bound
        beyond = Decimal(f"{bound * BEYOND[kind]:.4g}")
        if beyond > 0 and beyond != bound:
            yield f"beyond its {kind.value}", beyond


def intermittent_verdict(
    entry: Entry,
    area: CareArea,
    caps: Capabilities,
    dose: Decimal,
    duration_min: Decimal,
    bag: Concentration,
    weight: Decimal,
    height: Decimal | None,
) -> str:
    """The module docstring's rule for an intermittent ``dose`` over ``duration_min`` from ``bag``.

    Raises:
        SmartpumpError: the dose cannot become a volume (e.g. a unit and a bag of other dimensions).
    """
    bsa = bsa_mosteller_m2(weight, height) if height is not None else None
    unit = entry.dose.unit
    needed = dose_to_volume_ml(dose, unit, bag, weight_kg=weight, bsa_m2=bsa)
    vtbi = round_half_up(needed, caps.vtbi_resolution_ml)
    rate = pump_rate_ml_per_h(caps, vtbi * 60 / duration_min)
    delivered = volume_to_dose(vtbi, unit, bag, weight_kg=weight, bsa_m2=bsa)
    levels = [
        level_of(entry.dose.limits, dose, delivered),
        level_of(entry.duration_min.limits, duration_min),
        level_of(entry.rate_ml_per_h.limits, rate),
        level_of(entry.vtbi_ml.limits, vtbi),
        level_of(area.rate_cap, rate),
        level_of(area.vtbi_cap, vtbi),
    ]
    if entry.dose_rate is not None:
        dose_rate = rate_to_dose(rate, entry.dose_rate.unit, bag, weight_kg=weight, bsa_m2=bsa)
        levels.append(level_of(entry.dose_rate.limits, dose_rate))
    if not (rate > 0 and caps.min_rate_ml_per_h <= rate <= caps.max_rate_ml_per_h):
        levels.append("hard")
    return _worst(*levels, _custom_level(entry, bag), patient_level(area, weight, bsa))


def patient_level(area: CareArea, weight: Decimal, bsa: Decimal | None) -> str:
    """The usual patient's weight and BSA (rounded to the care area's step) against its patient limits."""
    levels = [level_of(area.weight_kg.limits, weight)]
    if bsa is not None:
        resolution = area.bsa_resolution_m2
        shown = bsa if resolution is None else round_half_up(bsa, resolution)
        levels.append(level_of(area.bsa_m2.limits, shown))
    return _worst(*levels)


def _custom_level(entry: Entry, bag: Concentration) -> str:
    """The custom concentration's level when ``bag`` is not one of the entry's fixed strengths."""
    custom = entry.custom_concentration
    if custom is None or any(c.same_strength(bag) for c in entry.concentrations):
        return "ok"
    return level_of(custom.limits, bag.per_ml_in(custom.unit))


def usual_duration_min(entry: Entry) -> Decimal:
    """The usual duration: the default, else the middle of the duration limits, else 60 min."""
    bounds = entry.duration_min
    if bounds.limits.is_empty and bounds.default is None:
        return USUAL_DURATION_MIN
    return typical(bounds.limits, bounds.default)


def _usual_bag(entry: Entry) -> Concentration | None:
    """The first fixed concentration, else the middle of the custom range in a 100 mL bag."""
    if entry.concentrations:
        return entry.concentrations[0]
    custom = entry.custom_concentration
    if custom is None or custom.limits.is_empty:
        return None
    return _custom_bag(entry, typical(custom.limits, None))


def _custom_bag(entry: Entry, per_ml: Decimal) -> Concentration:
    custom = entry.custom_concentration
    assert custom is not None
    return Concentration(per_ml * CUSTOM_BAG_ML, custom.unit, CUSTOM_BAG_ML)


class _Maker:
    def __init__(self, library: DrugLibrary, area: CareArea, library_ref: str) -> None:
        self.library, self.area, self.library_ref = library, area, library_ref
        self.weight = usual_weight_kg(area)
        self.scenarios: list[GeneratedScenario] = []

    def entry(self, entry: Entry, caps: Capabilities, bag: Concentration) -> None:
        """Every edge scenario of one entry (intermittent limits, then custom concentration limits)."""
        height = USUAL_HEIGHT_CM if entry.needs_bsa else None
        dose = typical(entry.dose.limits, entry.dose.default)
        duration = usual_duration_min(entry)
        if entry.mode is DeliveryMode.INTERMITTENT:
            for label, value in _edges(entry.dose.limits):
                self._intermittent(entry, caps, "dose", label, value, duration, bag, height)
            for label, value in _edges(entry.duration_min.limits):
                self._intermittent(entry, caps, "duration", label, dose, value, bag, height)
            if entry.dose_rate is not None:
                for label, value in _edges(entry.dose_rate.limits):
                    minutes = self._duration_for(entry, dose, value, bag, height)
                    self._intermittent(entry, caps, "dose rate", label, dose, minutes, bag, height, value)
        custom = entry.custom_concentration
        if custom is None:
            return
        for label, per_ml in _edges(custom.limits):
            strength = _custom_bag(entry, per_ml)
            if any(c.same_strength(strength) for c in entry.concentrations):
                continue
            if entry.mode is DeliveryMode.INTERMITTENT:
                self._intermittent(
                    entry, caps, "concentration", label, dose, duration, strength, height, per_ml
                )
            else:
                bsa = bsa_mosteller_m2(self.weight, height) if height is not None else None
                verdict = _worst(
                    continuous_verdict(
                        entry, self.area, caps, dose, self.weight, height, concentration=strength
                    ),
                    _custom_level(entry, strength),
                    patient_level(self.area, self.weight, bsa),
                )
                step = continuous_step(entry, dose, self.weight, height, concentration=str(strength))
                what = f"{format_decimal(per_ml)} {custom.unit}/mL"
                self._add(entry, caps, "concentration", label, what, step, verdict)

    def _duration_for(
        self, entry: Entry, dose: Decimal, dose_rate: Decimal, bag: Concentration, height: Decimal | None
    ) -> Decimal:
        """The duration (6 significant digits) that runs the usual dose at ``dose_rate``."""
        assert entry.dose_rate is not None
        bsa = bsa_mosteller_m2(self.weight, height) if height is not None else None
        volume = dose_to_volume_ml(dose, entry.dose.unit, bag, weight_kg=self.weight, bsa_m2=bsa)
        rate = dose_to_rate_ml_per_h(dose_rate, entry.dose_rate.unit, bag, weight_kg=self.weight, bsa_m2=bsa)
        return Decimal(f"{volume * 60 / rate:.6g}")

    def _intermittent(
        self,
        entry: Entry,
        caps: Capabilities,
        parameter: str,
        label: str,
        dose: Decimal,
        duration: Decimal,
        bag: Concentration,
        height: Decimal | None,
        shown: Decimal | None = None,
    ) -> None:
        verdict = intermittent_verdict(entry, self.area, caps, dose, duration, bag, self.weight, height)
        step: dict[str, Any] = {
            "action": "program",
            "channel": "A",
            "kind": "intermittent",
            "entry": entry.id,
            "dose": format_decimal(dose),
            "duration_min": format_decimal(duration),
            "concentration": str(bag),
            "weight_kg": format_decimal(self.weight),
            "route": entry.route.value,
        }
        if height is not None:
            step["height_cm"] = format_decimal(height)
        units = {
            "dose": str(entry.dose.unit),
            "duration": "min",
            "dose rate": str(entry.dose_rate.unit) if entry.dose_rate else "",
            "concentration": f"{entry.custom_concentration.unit}/mL" if entry.custom_concentration else "",
        }
        value = shown if shown is not None else (duration if parameter == "duration" else dose)
        self._add(entry, caps, parameter, label, f"{format_decimal(value)} {units[parameter]}", step, verdict)

    def _add(
        self,
        entry: Entry,
        caps: Capabilities,
        parameter: str,
        label: str,
        what: str,
        step: dict[str, Any],
        verdict: str,
    ) -> None:
        number = len(self.scenarios) + 1
        name = f"{entry.id}: {parameter} {label} ({what}): expect {verdict}"
        slug = f"{parameter}_{label}".replace(" ", "_")
        self.scenarios.append(
            build_scenario(
                f"{entry.id}_{slug}_{number}",
                name,
                self.area,
                caps.model.value,
                step,
                verdict,
                self.library_ref,
                family=Family.LIMITS,
                note=f"{parameter} {label}",
            )
        )


def limit_edges(
    library: DrugLibrary, care_area_id: str, *, library_ref: str
) -> tuple[list[GeneratedScenario], list[str]]:
    """The limit-edge scenarios of every intermittent or custom-concentration entry of a care area, and
    the entries left out (why)."""
    area = library.care_area(care_area_id)
    maker = _Maker(library, area, library_ref)
    skipped: list[str] = []
    for entry in library.entries_in(area.id):
        if entry.mode is not DeliveryMode.INTERMITTENT and entry.custom_concentration is None:
            continue
        if entry.pca is not None:
            continue
        caps = caps_for(entry, area)
        bag = _usual_bag(entry)
        if caps is None or bag is None:
            skipped.append(f"{entry.id}: no pump model for its channels, or no concentration to program")
            continue
        before = len(maker.scenarios)
        try:
            maker.entry(entry, caps, bag)
        except SmartpumpError as error:
            del maker.scenarios[before:]
            skipped.append(f"{entry.id}: {error.message}")
    return maker.scenarios, skipped
