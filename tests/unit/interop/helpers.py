"""Synthetic test inputs for the interop tests: a demo-like library and the shared HL7 examples."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    EXAMPLE_LABEL,
    Bounds,
    CareArea,
    DeliveryMode,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    EntryKind,
    PCALimits,
    Provenance,
)
from smartpump.units import Concentration, DoseUnit

HL7_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "hl7"
ORDER_NOW = datetime(2008, 1, 1, 18, 40, tzinfo=UTC)


def example(name: str) -> str:
    """A shared example message with CR segment separators (the README's normalisation undone)."""
    path = HL7_DIR / name
    if not path.exists():
        pytest.fail(f"shared HL7 example missing: {path} (tests read ../shared/data, never a copy)")
    return "\r".join(path.read_text(encoding="utf-8").splitlines()) + "\r"


def demo_library(*, with_saline: bool = True) -> DrugLibrary:
    """Dopamine 400 mg/250 mL in mcg/kg/min (EHR code 1234) and, optionally, normal saline (5678)."""
    dopamine = Entry(
        id="icu-dopamine",
        care_area_id="icu",
        drug_id="dopamine",
        dose=DoseLimits(
            unit=DoseUnit.parse("mcg/kg/min"),
            limits=LimitSet(
                hard_min=Decimal(1), soft_min=Decimal(2), soft_max=Decimal(15), hard_max=Decimal(20)
            ),
        ),
        concentrations=(Concentration.parse("400 mg/250 mL"),),
        rate_ml_per_h=Bounds(limits=LimitSet(hard_max=Decimal(500))),
        bolus=DoseLimits(unit=DoseUnit.parse("mcg/kg"), limits=LimitSet(hard_max=Decimal(100))),
        allows_secondary=False,
    )
    drugs = [
        Drug(
            id="dopamine",
            generic_name="dopamine",
            display_name="DOPamine",
            ehr_codes=("1234",),
            is_high_alert=True,
        ),
        Drug(id="morphine", generic_name="morphine", ehr_codes=("4321",)),
    ]
    entries = [
        dopamine,
        Entry(
            id="icu-morphine-pca",
            care_area_id="icu",
            drug_id="morphine",
            mode=DeliveryMode.PCA,
            dose=DoseLimits(unit=DoseUnit.parse("mg"), limits=LimitSet(hard_max=Decimal(3))),
            concentrations=(Concentration.parse("30 mg/30 mL"),),
            pca=PCALimits(
                demand_dose=DoseLimits(unit=DoseUnit.parse("mg"), limits=LimitSet(hard_max=Decimal(3))),
                lockout_min=Bounds(limits=LimitSet(hard_min=Decimal(5))),
            ),
        ),
    ]
    if with_saline:
        drugs.append(Drug(id="ns", generic_name="normal saline", ehr_codes=("5678",)))
        entries.append(
            Entry(
                id="icu-ns",
                care_area_id="icu",
                drug_id="ns",
                kind=EntryKind.IV_FLUID,
                mode=DeliveryMode.RATE,
                dose=DoseLimits(unit=DoseUnit.parse("mL/h"), limits=LimitSet(hard_max=Decimal(999))),
                vtbi_ml=Bounds(limits=LimitSet(hard_max=Decimal(1000))),
            )
        )
    return DrugLibrary(
        name="Interop test library (synthetic)",
        version=3,
        hospital_id="hospital-example",
        drugs=tuple(drugs),
        care_areas=(
            CareArea(id="icu", name="Adult ICU", max_rate_ml_per_h=Decimal(999)),
            CareArea(id="nicu", name="Neonatal ICU", max_rate_ml_per_h=Decimal(50)),
        ),
        entries=tuple(entries),
        provenance=Provenance(source="tests/unit/interop (synthetic)", note=EXAMPLE_LABEL, is_example=True),
    )
