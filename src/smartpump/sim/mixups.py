"""Drug mix-up scenarios for the pre-release harness: look-alike/sound-alike picks and wrong concentrations.

**Look-alike/sound-alike.** For every pair of the confused-names table (``ismp_confused_names.json``)
whose two drugs both have a usable entry in the care area, the nurse means one drug at its usual dose
and picks the other: the number is keyed into the picked entry (in the picked entry's unit), with its
first concentration, for the care area's usual patient. Both directions are written. The expected
verdict follows the picked entry's limits by the rules of ``smartpump.sim.generate`` (PCA: the usual
demand dose of the intended drug as the picked drug's demand dose). An ``ok`` is a mix-up the library
does not catch: the scenario passes (the pump does what the limits say) and its note says so.

**Wrong concentration.** Every entry with a fixed concentration is programmed with a bag ten times
the strength of its first one (same volume). Without a custom concentration the pump must refuse it
(``program.concentration_not_in_entry``); with one, the strength is a custom concentration checked
against the entry's concentration limits and the usual dose is checked on the rate that bag needs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from smartpump.errors import SmartpumpError
from smartpump.library.confused_names import ConfusedNamesTable
from smartpump.library.model import CareArea, Drug, DrugLibrary, Entry
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
    pca_step,
    pca_verdict,
    usual_demand_dose,
    usual_weight_kg,
)
from smartpump.sim.workload import typical
from smartpump.units import Concentration, format_decimal

WRONG_STRENGTH_FACTOR: Final = Decimal(10)
NOT_IN_ENTRY: Final = "program.concentration_not_in_entry"


def _usable(entry: Entry, area: CareArea) -> bool:
    return bool(entry.concentrations) and caps_for(entry, area) is not None


def _first_usable(library: DrugLibrary, area: CareArea, drug: Drug) -> Entry | None:
    return next((e for e in library.entries_in(area.id) if e.drug_id == drug.id and _usable(e, area)), None)


def _worst(*levels: str) -> str:
    return "hard" if "hard" in levels else "soft" if "soft" in levels else "ok"


def look_alike(
    library: DrugLibrary, care_area_id: str, table: ConfusedNamesTable, *, library_ref: str
) -> tuple[list[GeneratedScenario], list[str]]:
    """Both directions of every confused pair with a usable entry of each drug in the care area, and
    what was left out (why)."""
    area = library.care_area(care_area_id)
    weight = usual_weight_kg(area)
    scenarios: list[GeneratedScenario] = []
    skipped: list[str] = []
    for mixup in table.mixups(library):
        first = _first_usable(library, area, mixup.first)
        second = _first_usable(library, area, mixup.second)
        if first is None or second is None:
            continue
        if (first.pca is None) != (second.pca is None):
            skipped.append(f"{first.id} / {second.id}: one is a PCA entry, the other is not")
            continue
        for intended, picked in ((first, second), (second, first)):
            try:
                scenarios.append(
                    _picked_instead(library, area, weight, intended, picked, mixup.pair.label, library_ref)
                )
            except SmartpumpError as error:
                skipped.append(f"{intended.id} picked as {picked.id}: {error.message}")
    return scenarios, skipped


def _picked_instead(
    library: DrugLibrary,
    area: CareArea,
    weight: Decimal,
    intended: Entry,
    picked: Entry,
    pair: str,
    library_ref: str,
) -> GeneratedScenario:
    caps = caps_for(picked, area)
    assert caps is not None
    meant, chosen = library.drug(intended.drug_id).shown_name, library.drug(picked.drug_id).shown_name
    if intended.pca is not None and picked.pca is not None:
        dose = usual_demand_dose(intended.pca)
        unit = f"{picked.pca.demand_dose.unit}"
        step = pca_step(picked, picked.pca, dose, weight)
        verdict = pca_verdict(picked.pca, step)
    else:
        dose = typical(intended.dose.limits, intended.dose.default)
        unit = str(picked.dose.unit)
        height = USUAL_HEIGHT_CM if picked.needs_bsa else None
        verdict = continuous_verdict(picked, area, caps, dose, weight, height)
        step = continuous_step(picked, dose, weight, height)
    caught = "NOT CAUGHT by the library" if verdict == "ok" else f"caught ({verdict})"
    name = (
        f"look-alike {pair}: {meant} meant, {chosen} picked ({picked.id}) at {format_decimal(dose)} {unit}: "
        f"expect {verdict}"
    )
    note = f"meant {meant}, picked {chosen} at {meant}'s usual dose: {caught}"
    return build_scenario(
        f"{intended.id}_picked_as_{picked.id}",
        name,
        area,
        caps.model.value,
        step,
        verdict,
        library_ref,
        family=Family.LOOK_ALIKE,
        note=note,
    )


def wrong_concentration(
    library: DrugLibrary, care_area_id: str, *, library_ref: str
) -> tuple[list[GeneratedScenario], list[str]]:
    """A ten-times-stronger bag for every usable entry of the care area, and the entries left out (why)."""
    area = library.care_area(care_area_id)
    weight = usual_weight_kg(area)
    scenarios: list[GeneratedScenario] = []
    skipped: list[str] = []
    for entry in library.entries_in(area.id):
        caps = caps_for(entry, area)
        if caps is None or not entry.concentrations:
            skipped.append(f"{entry.id}: no fixed concentration or no pump model for its channels")
            continue
        listed = entry.concentrations[0]
        wrong = Concentration(listed.amount * WRONG_STRENGTH_FACTOR, listed.unit, listed.volume_ml)
        if any(c.same_strength(wrong) for c in entry.concentrations):
            skipped.append(f"{entry.id}: ten times {listed} is one of its own concentrations")
            continue
        try:
            scenarios.append(_wrong_bag(entry, area, caps, weight, listed, wrong, library_ref))
        except SmartpumpError as error:
            skipped.append(f"{entry.id}: {error.message}")
    return scenarios, skipped


def _wrong_bag(
    entry: Entry,
    area: CareArea,
    caps: Capabilities,
    weight: Decimal,
    listed: Concentration,
    wrong: Concentration,
    library_ref: str,
) -> GeneratedScenario:
    custom = entry.custom_concentration
    accepted = custom is not None and custom.unit.dimension is wrong.unit.dimension
    if entry.pca is not None:
        step = pca_step(entry, entry.pca, usual_demand_dose(entry.pca), weight, concentration=str(wrong))
        verdict = pca_verdict(entry.pca, step)
    else:
        dose = typical(entry.dose.limits, entry.dose.default)
        height = USUAL_HEIGHT_CM if entry.needs_bsa else None
        verdict = continuous_verdict(entry, area, caps, dose, weight, height, concentration=wrong)
        step = continuous_step(entry, dose, weight, height, concentration=str(wrong))
    if accepted and custom is not None:
        verdict = _worst(verdict, level_of(custom.limits, wrong.per_ml_in(custom.unit)))
        note = f"{wrong} taken as a custom concentration: " + (
            "NOT CAUGHT by the library" if verdict == "ok" else f"caught ({verdict})"
        )
    else:
        verdict = NOT_IN_ENTRY
        note = f"{wrong} is not in the entry: refused"
    name = f"wrong concentration: {entry.id} with {wrong} instead of {listed}: expect {verdict}"
    return build_scenario(
        f"{entry.id}_wrong_concentration",
        name,
        area,
        caps.model.value,
        step,
        verdict,
        library_ref,
        family=Family.CONCENTRATION,
        note=note,
    )
