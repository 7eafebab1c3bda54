"""The Baxter Sigma Spectrum importer on the hospital's real master drug library (../shared/data)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.library.formats.baxter import baxter_unit
from smartpump.library.formats.import_report import ImportResult
from smartpump.library.limits import LimitSet
from smartpump.library.model import DeliveryMode, Entry
from smartpump.units import AmountUnit, Concentration, DoseUnit
from tests import vendor_libraries


@pytest.fixture(scope="module")
def sigma() -> ImportResult:
    return vendor_libraries.baxter()


def _entry(result: ImportResult, entry_id: str) -> Entry:
    return result.library.entry(entry_id)


def test_header_block_gives_name_version_and_provenance(sigma: ImportResult) -> None:
    library = sigma.library
    assert library.name == "CMCMasterDrugLibrary"
    assert library.version == 14
    note = library.provenance.note or ""
    assert "MDL Version 6.2.4" in note
    assert "Last Saved Date 2017-10-13T08:56:39" in note
    assert "Keypad" not in note
    assert library.provenance.imported_from == "baxter-sigma-library-v14.xlsx"
    assert library.provenance.is_example is False


def test_ten_care_areas_with_weight_limits(sigma: ImportResult) -> None:
    areas = sigma.library.care_areas
    assert len(areas) == 10
    assert areas[0].name == "ANESTHESIA / PACU"
    nursery = sigma.library.care_area("nursery")
    assert nursery.weight_kg.limits == LimitSet(soft_min=Decimal("0.45"), soft_max=Decimal(6))
    assert sigma.library.care_area("telemetry").weight_kg.limits.soft_max == Decimal(300)


def test_basic_row_sets_basic_infusion_rate_limits(sigma: ImportResult) -> None:
    basic = sigma.library.care_area("ccu").basic_infusion
    assert basic.allowed is True
    assert basic.rate_ml_per_h.limits == LimitSet(hard_min=Decimal("0.5"), hard_max=Decimal(999))


def test_dose_rate_entry_with_bolus_and_load(sigma: ImportResult) -> None:
    entry = _entry(sigma, "anesthesia-pacu.esmolol.mcg-kg-min.1")
    assert entry.mode is DeliveryMode.CONTINUOUS
    assert entry.dose.limits == LimitSet(soft_min=Decimal(50), soft_max=Decimal(200), hard_max=Decimal(300))
    assert entry.concentrations == (Concentration(Decimal(2500), AmountUnit.MG, Decimal(250)),)
    assert entry.vtbi_ml.default == Decimal(250)
    assert entry.bolus is not None and entry.bolus.unit == DoseUnit.parse("mcg/kg")
    assert entry.bolus.limits.hard_max == Decimal(200)
    assert entry.loading is not None and entry.loading.limits.hard_max == Decimal(250)


def test_ml_mode_entry_is_rate_based(sigma: ImportResult) -> None:
    entries = [e for e in sigma.library.entries_in("anesthesia-pacu") if e.drug_id == "acetaminophen"]
    rate_only = next(e for e in entries if not e.concentrations)
    assert rate_only.mode is DeliveryMode.RATE
    assert rate_only.rate_ml_per_h.limits == LimitSet(soft_max=Decimal(400), hard_max=Decimal(400))


def test_variable_concentration_becomes_custom_with_limits(sigma: ImportResult) -> None:
    (entry,) = [
        e
        for e in sigma.library.entries_in("anesthesia-pacu")
        if e.drug_id == "azithromycin" and e.custom_concentration
    ]
    assert entry.custom_concentration is not None
    assert entry.custom_concentration.unit is AmountUnit.MG
    assert entry.custom_concentration.limits == LimitSet(hard_max=Decimal(2))


def test_vendor_unit_spellings_map_into_the_vocabulary() -> None:
    assert baxter_unit("mUnits/min") == DoseUnit.parse("milliunits/min")
    assert baxter_unit("Units/hr") == DoseUnit.parse("units/h")


def test_every_fulllist_row_is_accounted_for(sigma: ImportResult) -> None:
    for sheet in sigma.report.sheets:
        assert sheet.rows_read == sheet.represented + sheet.not_represented
    assert sigma.report.sheet("FullList").not_represented == 0
    assert sigma.report.sheet("DiscreteList").represented == 501
