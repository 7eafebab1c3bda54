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

PCA entries get 2x/5x/10x the usual demand dose (the demand-dose default, else the middle of its
range), with the usual lockout, window maximum and concentration; the expected verdict is the most
severe of the demand dose, lockout and maximum against the entry's PCA limits. Entries without a
fixed concentration are skipped (listed in ``skipped``).

``smartpump.sim.mixups`` adds the drug mix-up families (look-alike/sound-alike and wrong
concentration), ``smartpump.sim.edges`` the limit edges of intermittent and custom-concentration
entries; ``Family`` names them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from smartpump.errors import SmartpumpError
from smartpump.library.limits import LimitSet
from smartpump.library.model import CareArea, DrugLibrary, Entry, PCALimits
from smartpump.pump.capabilities import CAPABILITIES, Capabilities, capabilities
from smartpump.sim.workload import profile_for, typical
from smartpump.units import (
    Concentration,
    bsa_mosteller_m2,
    dose_to_rate_ml_per_h,
    format_decimal,
    rate_to_dose,
    round_half_up,
)

FACTORS: Final = (2, 5, 10)
USUAL_HEIGHT_CM: Final = Decimal(170)


class Family(StrEnum):
    """The kinds of pre-release scenario: dose errors, look-alike/sound-alike picks, wrong concentration,
    and limit edges (intermittent dose, duration and dose rate; custom concentration)."""

    DOSE = "dose"
    LOOK_ALIKE = "look-alike"
    CONCENTRATION = "concentration"
    LIMITS = "limits"


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratedScenario:
    """One scenario document (ready for YAML), the file stem it should be written under, its family, and
    a note for the pharmacist (e.g. a mix-up the library does not catch)."""

    stem: str
    document: dict[str, Any]
    expected: str
    family: Family = Family.DOSE
    note: str = ""


def _above(value: Decimal, limit: Decimal | None) -> bool:
    return limit is not None and value > limit


def usual_weight_kg(area: CareArea) -> Decimal:
    """The care area's usual patient weight: middle of its soft (else hard) range, else 70 kg."""
    limits = area.weight_kg.limits
    return Decimal(70) if limits == LimitSet() else typical(limits, None)


def level_of(limits: LimitSet, *values: Decimal) -> str:
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
    levels = [level_of(entry.dose.limits, *doses), level_of(entry.rate_ml_per_h.limits, rate)]
    if _above(rate, area.max_rate_ml_per_h):
        levels.append("hard")
    if caps is not None and not (rate > 0 and caps.min_rate_ml_per_h <= rate <= caps.max_rate_ml_per_h):
        levels.append("hard")
    return "hard" if "hard" in levels else "soft" if "soft" in levels else "ok"


def caps_for(entry: Entry, area: CareArea) -> Capabilities | None:
    """The care area's usual pump model, else the first model whose channel the entry is for (a
    syringe-only entry in a large-volume area plays on the syringe pump); None when no model fits."""
    usual = capabilities(profile_for(area).model)
    if not entry.devices or usual.device_type in entry.devices:
        return usual
    return next((c for c in CAPABILITIES.values() if c.device_type in entry.devices), None)


def generate(
    library: DrugLibrary, care_area_id: str, *, library_ref: str
) -> tuple[list[GeneratedScenario], list[str]]:
    """The 2x/5x/10x scenarios of every usable entry of a care area, and the entries skipped (why)."""
    area = library.care_area(care_area_id)
    weight = usual_weight_kg(area)
    scenarios: list[GeneratedScenario] = []
    skipped: list[str] = []
    for entry in library.entries_in(area.id):
        if not entry.concentrations:
            skipped.append(f"{entry.id}: no fixed concentration")
            continue
        caps = caps_for(entry, area)
        if caps is None:
            skipped.append(f"{entry.id}: no pump model runs {', '.join(entry.devices)} channels")
            continue
        if entry.pca is not None:
            for factor in FACTORS:
                demand = Decimal(f"{usual_demand_dose(entry.pca) * factor:.4g}")
                step = pca_step(entry, entry.pca, demand, weight)
                verdict = pca_verdict(entry.pca, step)
                name = (
                    f"{entry.id} at {factor}x the usual demand dose ({format_decimal(demand)} "
                    f"{entry.pca.demand_dose.unit}): expect {verdict}"
                )
                scenarios.append(
                    build_scenario(
                        f"{entry.id}_{factor}x", name, area, caps.model.value, step, verdict, library_ref
                    )
                )
            continue
        usual = typical(entry.dose.limits, entry.dose.default)
        height = USUAL_HEIGHT_CM if entry.needs_bsa else None
        for factor in FACTORS:
            dose = Decimal(f"{usual * factor:.4g}")
            try:
                verdict = continuous_verdict(entry, area, caps, dose, weight, height)
            except SmartpumpError as error:
                skipped.append(f"{entry.id}: {error.message}")
                break
            step = continuous_step(entry, dose, weight, height)
            name = (
                f"{entry.id} at {factor}x the usual dose ({format_decimal(dose)} {entry.dose.unit}): "
                f"expect {verdict}"
            )
            scenarios.append(
                build_scenario(
                    f"{entry.id}_{factor}x", name, area, caps.model.value, step, verdict, library_ref
                )
            )
    return scenarios, skipped


def continuous_verdict(
    entry: Entry,
    area: CareArea,
    caps: Capabilities,
    dose: Decimal,
    weight: Decimal,
    height: Decimal | None,
    *,
    concentration: Concentration | None = None,
) -> str:
    """Rules 2-3 for ``dose`` on ``concentration`` (the entry's first unless told): the verdict the
    limits call for on the rate the pump runs and the dose it delivers.

    Raises:
        SmartpumpError: the dose cannot become a rate (e.g. a unit without a patient parameter).
    """
    bag = concentration or entry.concentrations[0]
    bsa = bsa_mosteller_m2(weight, height) if height is not None else None
    rate = dose_to_rate_ml_per_h(dose, entry.dose.unit, bag, weight_kg=weight, bsa_m2=bsa)
    delivered = rate_to_dose(
        pump_rate_ml_per_h(caps, rate), entry.dose.unit, bag, weight_kg=weight, bsa_m2=bsa
    )
    return expected_verdict(entry, area, dose, rate, caps=caps, delivered=delivered)


def usual_demand_dose(pca: PCALimits) -> Decimal:
    """The usual PCA demand dose: its default, else the middle of its range."""
    return typical(pca.demand_dose.limits, pca.demand_dose.default)


def continuous_step(
    entry: Entry, dose: Decimal, weight: Decimal, height: Decimal | None, *, concentration: str | None = None
) -> dict[str, Any]:
    """The ``program`` step of a continuous infusion of ``dose`` (the first concentration unless told)."""
    step: dict[str, Any] = {
        "action": "program",
        "channel": "A",
        "entry": entry.id,
        "dose": format_decimal(dose),
        "concentration": concentration or str(entry.concentrations[0]),
        "weight_kg": format_decimal(weight),
        "route": entry.route.value,
    }
    if height is not None:
        step["height_cm"] = format_decimal(height)
    return step


def pca_step(
    entry: Entry, pca: PCALimits, demand: Decimal, weight: Decimal, *, concentration: str | None = None
) -> dict[str, Any]:
    """The ``program`` step of a PCA: ``demand`` with the usual lockout and window maximum."""
    step: dict[str, Any] = {
        "action": "program",
        "channel": "A",
        "kind": "pca",
        "entry": entry.id,
        "demand_dose": format_decimal(demand),
        "lockout_min": format_decimal(typical(pca.lockout_min.limits, pca.lockout_min.default)),
        "concentration": concentration or str(entry.concentrations[0]),
        "weight_kg": format_decimal(weight),
        "route": entry.route.value,
    }
    if pca.max_dose is not None:
        step["max_dose"] = format_decimal(typical(pca.max_dose.limits, pca.max_dose.default))
        step["max_dose_window_h"] = pca.max_dose_window_h or 1
    return step


def pca_verdict(pca: PCALimits, step: dict[str, Any]) -> str:
    """The most severe level of the step's demand dose, lockout and window maximum against ``pca``."""
    levels = [
        level_of(pca.demand_dose.limits, Decimal(step["demand_dose"])),
        level_of(pca.lockout_min.limits, Decimal(step["lockout_min"])),
    ]
    if pca.max_dose is not None and "max_dose" in step:
        levels.append(level_of(pca.max_dose.limits, Decimal(step["max_dose"])))
    return "hard" if "hard" in levels else "soft" if "soft" in levels else "ok"


def build_scenario(
    stem: str,
    name: str,
    area: CareArea,
    model: str,
    program: dict[str, Any],
    verdict: str,
    library_ref: str,
    *,
    family: Family = Family.DOSE,
    note: str = "",
) -> GeneratedScenario:
    """A scenario that programs ``program``, expects ``verdict``, and then starts (ok) or is refused the
    start (soft without an override, hard). ``verdict`` may instead be a refusal code (``program.*``):
    the program step expects that error and nothing starts."""
    steps: list[dict[str, Any]] = [program]
    if verdict.startswith("program."):
        program["expect_error"] = verdict
        expect_events = {"program.refused": 1, "program.checked": 0, "infusion.started": 0}
    elif verdict == "ok":
        program["expect_verdict"] = verdict
        steps += [{"action": "confirm", "channel": "A"}, {"action": "start", "channel": "A"}]
        expect_events = {"program.checked": 1, "infusion.started": 1}
    else:
        program["expect_verdict"] = verdict
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
    document = {
        "name": name,
        "library": library_ref,
        "model": model,
        "care_area": area.id,
        "patient_id": "SCENARIO-PATIENT",
        "steps": steps,
        "expect_events": expect_events,
    }
    return GeneratedScenario(stem=stem, document=document, expected=verdict, family=family, note=note)
