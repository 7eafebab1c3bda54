"""Dose-error scenarios for a pharmacist to test a library before release: 2x, 5x and 10x the usual
dose of every entry of a care area, each with the verdict the library's limits call for.

The expected verdict is computed from the limits by this rule, independent of the DERS engine:

1. The usual dose is the entry's default dose, else the middle of its soft range (else hard range),
   for the care area's usual patient (middle of its soft weight range, else 70 kg; 170 cm tall when
   the dose is per m2). The programmed dose is ``factor x usual`` (4 significant digits).
2. The rate is ``units.dose_to_rate_ml_per_h`` of that dose with the entry's first concentration.
   The pump runs it rounded half-up once to the model's resolution in the band the exact rate falls
   in, and delivers the dose that rounded rate gives (``units.rate_to_dose``).
3. ``hard`` when the programmed or the delivered dose is beyond a dose hard limit, or the rate the
   pump runs is beyond the entry's rate hard limits, above the care area's maximum rate or outside
   the model's range (a rate that rounds to zero included); else ``soft`` when either dose is beyond
   a dose soft limit or the rate beyond the entry's rate soft limits; else ``ok``. A value exactly
   on a limit is inside it. Without a model, only the library's limits and the exact rate count.

PCA entries and entries without a fixed concentration are skipped (listed in ``skipped``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from smartpump.errors import SmartpumpError
from smartpump.library.limits import LimitSet
from smartpump.library.model import CareArea, DeliveryMode, DrugLibrary, Entry
from smartpump.pump.capabilities import Capabilities, capabilities
from smartpump.sim.workload import profile_for, typical
from smartpump.units import (
    bsa_mosteller_m2,
    dose_to_rate_ml_per_h,
    format_decimal,
    rate_to_dose,
    round_half_up,
)

FACTORS: Final = (2, 5, 10)
USUAL_HEIGHT_CM: Final = Decimal(170)


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratedScenario:
    """One scenario document (ready for YAML) and the file stem it should be written under."""

    stem: str
    document: dict[str, Any]
    expected: str


def _above(value: Decimal, limit: Decimal | None) -> bool:
    return limit is not None and value > limit


def usual_weight_kg(area: CareArea) -> Decimal:
    """The care area's usual patient weight: middle of its soft (else hard) range, else 70 kg."""
    limits = area.weight_kg.limits
    return Decimal(70) if limits == LimitSet() else typical(limits, None)


def _level(limits: LimitSet, *values: Decimal) -> str:
    """hard or soft when any value is beyond a bound of that kind (the most severe wins), else ok."""
    breaches = [b for b in (limits.classify(v) for v in values) if b is not None]
    if any(b.kind.is_hard for b in breaches):
        return "hard"
    return "soft" if breaches else "ok"


def pump_rate_ml_per_h(caps: Capabilities, rate_ml_per_h: Decimal) -> Decimal:
    """Rule 2: the exact rate rounded half-up once to the model's resolution at that rate."""
    return round_half_up(rate_ml_per_h, caps.resolution_at(rate_ml_per_h))


def expected_verdict(
    entry: Entry,
    area: CareArea,
    dose: Decimal,
    rate_ml_per_h: Decimal,
    *,
    caps: Capabilities | None = None,
    delivered: Decimal | None = None,
) -> str:
    """Rule 3 of the module docstring: ok, soft or hard from the limits alone, for the programmed dose,
    the ``delivered`` dose and the rate the pump of ``caps`` runs (the exact rate without a model)."""
    rate = rate_ml_per_h if caps is None else pump_rate_ml_per_h(caps, rate_ml_per_h)
    doses = (dose,) if delivered is None else (dose, delivered)
    levels = [_level(entry.dose.limits, *doses), _level(entry.rate_ml_per_h.limits, rate)]
    if _above(rate, area.max_rate_ml_per_h):
        levels.append("hard")
    if caps is not None and not (rate > 0 and caps.min_rate_ml_per_h <= rate <= caps.max_rate_ml_per_h):
        levels.append("hard")
    return "hard" if "hard" in levels else "soft" if "soft" in levels else "ok"


def generate(
    library: DrugLibrary, care_area_id: str, *, library_ref: str
) -> tuple[list[GeneratedScenario], list[str]]:
    """The 2x/5x/10x scenarios of every usable entry of a care area, and the entries skipped (why)."""
    area = library.care_area(care_area_id)
    caps = capabilities(profile_for(area).model)
    weight = usual_weight_kg(area)
    scenarios: list[GeneratedScenario] = []
    skipped: list[str] = []
    for entry in library.entries_in(area.id):
        if entry.mode is DeliveryMode.PCA or not entry.concentrations:
            skipped.append(f"{entry.id}: PCA entry or no fixed concentration")
            continue
        if entry.devices and caps.device_type not in entry.devices:
            skipped.append(f"{entry.id}: not for a {caps.device_type} pump")
            continue
        usual = typical(entry.dose.limits, entry.dose.default)
        height = USUAL_HEIGHT_CM if entry.needs_bsa else None
        for factor in FACTORS:
            dose = Decimal(f"{usual * factor:.4g}")
            bsa = bsa_mosteller_m2(weight, height) if height is not None else None
            try:
                rate = dose_to_rate_ml_per_h(
                    dose, entry.dose.unit, entry.concentrations[0], weight_kg=weight, bsa_m2=bsa
                )
                delivered = rate_to_dose(
                    pump_rate_ml_per_h(caps, rate),
                    entry.dose.unit,
                    entry.concentrations[0],
                    weight_kg=weight,
                    bsa_m2=bsa,
                )
            except SmartpumpError as error:
                skipped.append(f"{entry.id}: {error.message}")
                break
            verdict = expected_verdict(entry, area, dose, rate, caps=caps, delivered=delivered)
            scenarios.append(
                _scenario(entry, area, caps.model.value, factor, dose, weight, height, verdict, library_ref)
            )
    return scenarios, skipped


def _scenario(
    entry: Entry,
    area: CareArea,
    model: str,
    factor: int,
    dose: Decimal,
    weight: Decimal,
    height: Decimal | None,
    verdict: str,
    library_ref: str,
) -> GeneratedScenario:
    program: dict[str, Any] = {
        "action": "program",
        "channel": "A",
        "entry": entry.id,
        "dose": format_decimal(dose),
        "concentration": str(entry.concentrations[0]),
        "weight_kg": format_decimal(weight),
        "route": entry.route.value,
    }
    if height is not None:
        program["height_cm"] = format_decimal(height)
    steps: list[dict[str, Any]] = [program]
    program["expect_verdict"] = verdict
    if verdict == "ok":
        steps += [{"action": "confirm", "channel": "A"}, {"action": "start", "channel": "A"}]
        expect_events = {"program.checked": 1, "infusion.started": 1}
    else:
        hard = verdict == "hard"
        steps += [
            {
                "action": "confirm",
                "channel": "A",
                "expect_error": "pump.hard_stop" if hard else "pump.override_required",
            },
            {
                "action": "start",
                "channel": "A",
                "expect_error": "pump.hard_stop" if hard else "pump.not_confirmed",
            },
        ]
        expect_events = {"program.checked": 1, "infusion.started": 0, "start.refused": 2}
    outcome = verdict
    document = {
        "name": f"{entry.id} at {factor}x the usual dose ({format_decimal(dose)} {entry.dose.unit}): "
        f"expect {outcome}",
        "library": library_ref,
        "model": model,
        "care_area": area.id,
        "patient_id": "SCENARIO-PATIENT",
        "steps": steps,
        "expect_events": expect_events,
    }
    return GeneratedScenario(stem=f"{entry.id}_{factor}x", document=document, expected=outcome)
