"""Valid drug-library objects for tests, each built from defaults plus keyword overrides (synthetic data).

The defaults form a small, lint-clean library: one care area ("icu", Adult ICU) with patient weight
and BSA limits and a 999 mL/h max rate, one high-alert drug (dopamine, shown as DOPamine) and one
weight-based continuous entry with two concentrations and full dose limits. Override any field::

    make_library(version=2, entries=(make_entry(dose=dose_limits("mcg/kg/min", hard_max=40)),))
    make_entry(id="icu-dobutamine", drug_id="dobutamine", therapy="cardiac")
    make_care_area(weight_kg=bounds())          # a care area without weight limits

Numbers may be given as int, str or Decimal; they become Decimals. The library is labelled as
example data (``Provenance.is_example``), as every synthetic library must be.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    EXAMPLE_LABEL,
    Bounds,
    CareArea,
    DeviceType,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    Provenance,
)
from smartpump.units import Concentration, DoseUnit

Number = Decimal | int | str

DRUG_ID = "dopamine"
CARE_AREA_ID = "icu"
ENTRY_ID = "icu-dopamine"
HOSPITAL_ID = "hospital-example"


def _decimal(value: Number | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def limit_set(
    *,
    hard_min: Number | None = None,
    soft_min: Number | None = None,
    soft_max: Number | None = None,
    hard_max: Number | None = None,
) -> LimitSet:
    """A LimitSet from plain numbers; absent bounds stay unconfigured."""
    return LimitSet(
        hard_min=_decimal(hard_min),
        soft_min=_decimal(soft_min),
        soft_max=_decimal(soft_max),
        hard_max=_decimal(hard_max),
    )


def bounds(*, default: Number | None = None, **limits: Number | None) -> Bounds:
    """Bounds (mL/h, mL, min, kg, m2 parameters) from plain numbers: ``bounds(hard_max=500)``."""
    return Bounds(limits=limit_set(**limits), default=_decimal(default))


def dose_limits(unit: str, *, default: Number | None = None, **limits: Number | None) -> DoseLimits:
    """DoseLimits in a unit given as text: ``dose_limits("mg/h", soft_max=10, hard_max=20)``."""
    return DoseLimits(unit=DoseUnit.parse(unit), limits=limit_set(**limits), default=_decimal(default))


def concentration(text: str) -> Concentration:
    """A concentration from text: ``concentration("400 mg/250 mL")``."""
    return Concentration.parse(text)


def make_drug(**overrides: Any) -> Drug:
    """A high-alert drug (dopamine, Tall Man 'DOPamine'); any Drug field may be overridden."""
    fields: dict[str, Any] = {
        "id": DRUG_ID,
        "generic_name": "dopamine",
        "display_name": "DOPamine",
        "drug_class": "vasopressor",
        "is_high_alert": True,
    }
    fields.update(overrides)
    return Drug(**fields)


def make_care_area(**overrides: Any) -> CareArea:
    """An adult ICU with weight (0.5-350 kg) and BSA (0.1-4 m2) limits and a 999 mL/h max rate."""
    fields: dict[str, Any] = {
        "id": CARE_AREA_ID,
        "name": "Adult ICU",
        "weight_kg": bounds(hard_min="0.5", soft_min=30, soft_max=200, hard_max=350),
        "bsa_m2": bounds(hard_min="0.1", hard_max=4),
        "max_rate_ml_per_h": Decimal(999),
    }
    fields.update(overrides)
    return CareArea(**fields)


def make_entry(**overrides: Any) -> Entry:
    """Dopamine in mcg/kg/min (400 or 800 mg/250 mL), dose limits 1-2-20-30, rate hard max 500 mL/h."""
    fields: dict[str, Any] = {
        "id": ENTRY_ID,
        "care_area_id": CARE_AREA_ID,
        "drug_id": DRUG_ID,
        "dose": dose_limits("mcg/kg/min", default=5, hard_min=1, soft_min=2, soft_max=20, hard_max=30),
        "concentrations": (concentration("400 mg/250 mL"), concentration("800 mg/250 mL")),
        "rate_ml_per_h": bounds(hard_max=500),
        "devices": (DeviceType.LARGE_VOLUME,),
    }
    fields.update(overrides)
    return Entry(**fields)


def make_library(**overrides: Any) -> DrugLibrary:
    """A version-1 example library holding make_drug(), make_care_area() and make_entry()."""
    fields: dict[str, Any] = {
        "name": "Factory test library",
        "version": 1,
        "hospital_id": HOSPITAL_ID,
        "drugs": (make_drug(),),
        "care_areas": (make_care_area(),),
        "entries": (make_entry(),),
        "provenance": Provenance(
            source="tests/factories.py (synthetic)", note=EXAMPLE_LABEL, is_example=True
        ),
    }
    fields.update(overrides)
    return DrugLibrary(**fields)
