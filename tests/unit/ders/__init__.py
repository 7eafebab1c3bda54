"""A small synthetic ICU library (example data) shared by the DERS unit and property tests.

Every number below is a test fixture chosen by hand, not a clinical recommendation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    EXAMPLE_LABEL,
    BasicInfusionPolicy,
    Bounds,
    CareArea,
    CustomConcentration,
    DeliveryMode,
    DeviceDefaults,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    EntryKind,
    PCALimits,
    Provenance,
)
from smartpump.units import AmountUnit, Concentration, DoseUnit

D = Decimal
ICU = "icu"
PEDS = "peds"
WEIGHT = D(70)


def limits(
    hard_min: str | int | None = None,
    soft_min: str | int | None = None,
    soft_max: str | int | None = None,
    hard_max: str | int | None = None,
) -> LimitSet:
    """A LimitSet from plain numbers (absent bounds stay unconfigured)."""
    return LimitSet(
        hard_min=None if hard_min is None else D(hard_min),
        soft_min=None if soft_min is None else D(soft_min),
        soft_max=None if soft_max is None else D(soft_max),
        hard_max=None if hard_max is None else D(hard_max),
    )


def dose(unit: str, **bounds: str | int) -> DoseLimits:
    """DoseLimits in a unit given as text."""
    return DoseLimits(unit=DoseUnit.parse(unit), limits=limits(**bounds))


def bounds(**values: str | int) -> Bounds:
    """Bounds (fixed-unit parameter limits) from plain numbers."""
    return Bounds(limits=limits(**values))


def conc(text: str) -> Concentration:
    """A concentration from text."""
    return Concentration.parse(text)


ICU_AREA = CareArea(
    id=ICU,
    name="Adult ICU",
    weight_kg=bounds(hard_min="0.5", soft_min=30, soft_max=200, hard_max=350),
    bsa_m2=bounds(hard_min="0.2", soft_max="2.5", hard_max=3),
    max_rate_ml_per_h=D(999),
    basic_infusion=BasicInfusionPolicy(allowed=True, rate_ml_per_h=bounds(soft_max=200, hard_max=500)),
    device=DeviceDefaults(max_vtbi_ml=D(4000)),
)
PEDS_AREA = CareArea(
    id=PEDS,
    name="Pediatrics",
    weight_kg=bounds(hard_min="0.3", hard_max=80),
    basic_infusion=BasicInfusionPolicy(allowed=False),
)

DRUGS = (
    Drug(id="dopamine", generic_name="dopamine", display_name="DOPamine", is_high_alert=True),
    Drug(id="heparin", generic_name="heparin", display_name="HEPARIN", aliases=("heparin sodium",)),
    Drug(id="ivf", generic_name="..IVF Maintenance"),
    Drug(id="vancomycin", generic_name="vancomycin"),
    Drug(id="fluorouracil", generic_name="fluorouracil", aliases=("5-FU",)),
    Drug(
        id="norepinephrine",
        generic_name="norepinephrine",
        display_name="NORepinephrine",
        aliases=("Levophed",),
    ),
    Drug(id="amiodarone", generic_name="amiodarone"),
    Drug(id="morphine", generic_name="morphine", is_high_alert=True),
    Drug(id="milrinone", generic_name="milrinone"),
)

ENTRIES = (
    Entry(
        id="icu-dopamine",
        care_area_id=ICU,
        drug_id="dopamine",
        therapy="cardiac",
        dose=dose("mcg/kg/min", soft_min=2, soft_max=20, hard_max=30),
        concentrations=(conc("400 mg/250 mL"), conc("800 mg/250 mL")),
    ),
    Entry(
        id="icu-dopamine-renal",
        care_area_id=ICU,
        drug_id="dopamine",
        therapy="renal",
        dose=dose("mcg/kg/min", soft_max=5, hard_max=10),
        concentrations=(conc("400 mg/250 mL"),),
    ),
    Entry(
        id="icu-heparin",
        care_area_id=ICU,
        drug_id="heparin",
        therapy="ACS",
        dose=dose("units/kg/h", hard_min=5, soft_max=25, hard_max=40),
        concentrations=(conc("25000 units/250 mL"),),
        bolus=dose("units/kg", soft_max=80, hard_max=100),
        bolus_rate=dose("mL/h", soft_max=600, hard_max=900),
    ),
    Entry(
        id="icu-heparin-fixed",
        care_area_id=ICU,
        drug_id="heparin",
        therapy="DVT",
        dose=dose("units/h", soft_min=500, soft_max=2000, hard_max=3000),
        concentrations=(conc("25000 units/250 mL"),),
    ),
    Entry(
        id="icu-ivf",
        care_area_id=ICU,
        drug_id="ivf",
        kind=EntryKind.IV_FLUID,
        mode=DeliveryMode.RATE,
        dose=DoseLimits(unit=DoseUnit.parse("mL/h")),
        rate_ml_per_h=bounds(soft_min=10, soft_max=250, hard_max=500),
        vtbi_ml=bounds(soft_max=1000, hard_max=2000),
    ),
    Entry(
        id="icu-vancomycin",
        care_area_id=ICU,
        drug_id="vancomycin",
        mode=DeliveryMode.INTERMITTENT,
        dose=dose("g", soft_min="0.5", soft_max=2, hard_max=3),
        concentrations=(conc("1 g/250 mL"),),
        duration_min=bounds(hard_min=60, soft_min=90, soft_max=180, hard_max=240),
    ),
    Entry(
        id="icu-fluorouracil",
        care_area_id=ICU,
        drug_id="fluorouracil",
        dose=dose("mg/m2/day", soft_max=1000, hard_max=1200),
        concentrations=(conc("5000 mg/100 mL"),),
    ),
    Entry(
        id="icu-norepinephrine",
        care_area_id=ICU,
        drug_id="norepinephrine",
        dose=dose("mcg/min", soft_min=1, soft_max=30, hard_max=40),
        concentrations=(conc("4 mg/250 mL"),),
        custom_concentration=CustomConcentration(
            unit=AmountUnit.MG, limits=limits(hard_min="0.008", soft_min="0.016", soft_max="0.064")
        ),
    ),
    Entry(
        id="icu-norepinephrine-double",
        care_area_id=ICU,
        drug_id="norepinephrine",
        dose=dose("mcg/min", soft_min=1, soft_max=30, hard_max=40),
        concentrations=(conc("8 mg/250 mL"),),
    ),
    Entry(
        id="icu-amiodarone",
        care_area_id=ICU,
        drug_id="amiodarone",
        dose=dose("mg/min", soft_max=1, hard_max=2),
        concentrations=(conc("150 mg/100 mL"),),
        loading=dose("mg", soft_min=100, soft_max=150, hard_max=300),
        loading_duration_min=bounds(hard_min=10, soft_min=15, soft_max=30, hard_max=60),
    ),
    Entry(
        id="icu-morphine-pca",
        care_area_id=ICU,
        drug_id="morphine",
        mode=DeliveryMode.PCA,
        dose=dose("mg", soft_max=2, hard_max=3),
        concentrations=(conc("30 mg/30 mL"),),
        pca=PCALimits(
            demand_dose=dose("mg", hard_min="0.1", soft_max=2, hard_max=3),
            lockout_min=bounds(hard_min=5, soft_min=6, soft_max=20, hard_max=60),
            basal=dose("mg/h", soft_max=1, hard_max=2),
            loading_dose=dose("mg", soft_max=5, hard_max=10),
            max_dose=dose("mg", soft_max=20, hard_max=30),
            max_dose_window_h=4,
        ),
    ),
    Entry(
        id="icu-milrinone",
        care_area_id=ICU,
        drug_id="milrinone",
        dose=DoseLimits(unit=DoseUnit.parse("mcg/kg/min")),
        concentrations=(conc("20 mg/100 mL"),),
    ),
    Entry(
        id="peds-dopamine",
        care_area_id=PEDS,
        drug_id="dopamine",
        dose=dose("mcg/kg/min", soft_max=20, hard_max=30),
        concentrations=(conc("400 mg/250 mL"),),
    ),
)

LIBRARY = DrugLibrary(
    name="DERS test library (synthetic)",
    version=1,
    hospital_id="hospital-example",
    drugs=DRUGS,
    care_areas=(ICU_AREA, PEDS_AREA),
    entries=ENTRIES,
    provenance=Provenance(source="tests/unit/ders (synthetic)", note=EXAMPLE_LABEL, is_example=True),
)

# Every limited entry with a plausible dose: within its soft limits, more than a tenth of its
# upper limit and less than ten times its lower limit, so that a 10-fold error must cross a limit.
TYPICAL_DOSES: dict[str, Decimal] = {
    "icu-dopamine": D(5),
    "icu-dopamine-renal": D(3),
    "icu-heparin": D(18),
    "icu-heparin-fixed": D(1000),
    "icu-ivf": D(50),
    "icu-vancomycin": D(1),
    "icu-fluorouracil": D(800),
    "icu-norepinephrine": D(5),
    "icu-norepinephrine-double": D(5),
    "icu-amiodarone": D("0.5"),
}


DOPAMINE_400 = conc("400 mg/250 mL")


def program(entry_id: str | None, **fields: Any) -> InfusionProgram:
    """A program for an entry with a 70 kg patient unless ``patient`` is given.

    The patient also has a 1.8 m2 BSA; dopamine gets 400 mg/250 mL and vancomycin (intermittent)
    a 120 min duration unless overridden.
    """
    fields.setdefault("patient", PatientParameters(weight_kg=WEIGHT, bsa_m2=D("1.8")))
    if entry_id == "icu-dopamine":
        fields.setdefault("concentration", DOPAMINE_400)
    if entry_id == "icu-vancomycin":
        fields.setdefault("kind", ProgramKind.INTERMITTENT)
        fields.setdefault("duration_min", D(120))
    return InfusionProgram(entry_id=entry_id, **fields)


def pca_program(**fields: Any) -> InfusionProgram:
    """A PCA program on the morphine entry: 1 mg demand, 10 min lockout unless overridden."""
    settings: dict[str, Any] = {"demand_dose": D(1), "lockout_min": D(10)}
    settings.update(fields)
    return program("icu-morphine-pca", kind=ProgramKind.PCA, pca=PCAProgram(**settings))
