"""The Alaris Guardrails importer on the hospital's real v66/v65 data sets (read from ../shared/data)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from smartpump.errors import LibraryFormatError
from smartpump.library.formats.alaris import alaris_version, read_alaris
from smartpump.library.formats.import_report import ImportResult
from smartpump.library.limits import LimitSet
from smartpump.library.model import DeliveryMode, Entry, EntryKind, LibraryStatus
from smartpump.units import AmountUnit, Concentration, DoseUnit
from tests import vendor_libraries
from tests.conftest import shared_file

V66 = ("vendor-libraries", "alaris-guardrails-dataset-v66.xlsx")
V65 = ("vendor-libraries", "alaris-guardrails-dataset-v65.xlsx")


@pytest.fixture(scope="module")
def v66() -> ImportResult:
    return vendor_libraries.alaris(66)


def _entries(result: ImportResult, prefix: str) -> list[Entry]:
    return [e for e in result.library.entries if e.id.startswith(prefix)]


def _sheet_rows(path: Path, sheet: str) -> list[tuple[object, ...]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return [tuple(r) for r in list(workbook[sheet].iter_rows(values_only=True))[2:]]
    finally:
        workbook.close()


def test_header_gives_name_version_hospital_and_real_provenance(v66: ImportResult) -> None:
    library = v66.library
    assert library.name == "Conway2024v66is"
    assert library.version == 66
    assert library.hospital_id == "conway-medical-center"
    assert library.status is LibraryStatus.DRAFT
    assert library.provenance.imported_from == "alaris-guardrails-dataset-v66.xlsx"
    assert library.provenance.source == "BD Alaris Guardrails data set Conway2024v66is"
    assert library.provenance.is_example is False
    assert "02d5f8234-R" in (library.provenance.note or "")


def test_version_rule_takes_number_after_last_v() -> None:
    assert alaris_version("Conway2024v66is") == 66
    assert alaris_version("NoVersionHere") is None


def test_every_profile_is_a_care_area(v66: ImportResult) -> None:
    names = [a.name for a in v66.library.care_areas]
    assert names == ["Adult", "Nursery", "ONC Infusion Center", "OutPt InfusionCenter", "Pediatrics"]
    assert [a.id for a in v66.library.care_areas][2] == "onc-infusion-center"


def test_module_configuration_per_profile(v66: ImportResult) -> None:
    nursery = v66.library.care_area("nursery")
    assert nursery.weight_kg.limits.hard_max == Decimal(7)
    assert nursery.bsa_m2.limits.hard_max == Decimal(3)
    assert nursery.max_rate_ml_per_h == Decimal(25)
    assert nursery.device.air_in_line_ul == Decimal(50)
    assert nursery.device.kvo_rate_ml_per_h == Decimal(2)
    assert nursery.device.max_vtbi_ml == Decimal(1200)
    assert nursery.device.auto_restart_attempts == 1
    assert nursery.device.occlusion_pressure_mmhg == Decimal(525)
    adult = v66.library.care_area("adult")
    assert adult.weight_kg.limits.hard_max == Decimal(500)
    assert adult.device.air_in_line_ul == Decimal(250)
    assert adult.pca.pause_enabled is True
    assert adult.pca.max_dose_window_h == 1
    assert adult.pca.bolus_delivery_rate_ml_per_h == Decimal(150)
    assert adult.pca.pause_resp_rate_min_bpm == Decimal(6)
    assert adult.basic_infusion.advisory == "This infusion selection DOES NOT have Guardrails Protection"
    assert v66.library.care_area("nursery").pca.pause_enabled is False


def test_continuous_entry_keeps_soft_limits_and_leaves_blank_hard_max_absent(v66: ImportResult) -> None:
    (entry,) = _entries(v66, "adult.cont.adenosine-cath-lab.standard-wt-115kg.mcg-kg-min.")
    assert entry.dose.unit == DoseUnit.parse("mcg/kg/min")
    assert entry.dose.limits == LimitSet(soft_min=Decimal(135), soft_max=Decimal(145))
    assert entry.dose.limits.hard_max is None
    assert entry.dose.default == Decimal(140)
    assert entry.concentrations == (Concentration(Decimal(90), AmountUnit.MG, Decimal(90)),)
    assert entry.therapy == ".Standard wt < 115kg"
    assert v66.library.drug(entry.drug_id).generic_name == "adenosine (CATH LAB)"


def test_custom_concentration_carries_concentration_limits_and_advisory_text(v66: ImportResult) -> None:
    (entry,) = _entries(v66, "adult.cont.alteplase-stroke.stroke-101-kg.mg-kg-h.")
    assert entry.concentrations == ()
    assert entry.custom_concentration is not None
    assert entry.custom_concentration.unit is AmountUnit.MG
    assert entry.custom_concentration.limits == LimitSet(
        hard_min=Decimal("0.85"), soft_min=Decimal("0.99"), soft_max=Decimal("1.01")
    )
    assert entry.dose.limits == LimitSet(soft_min=Decimal("0.7"), soft_max=Decimal("0.9"))
    assert entry.dose.default == Decimal("0.81")
    assert entry.advisory is not None and entry.advisory != "Alteplase wt based"


def test_bolus_and_bolus_rate_limits(v66: ImportResult) -> None:
    (entry,) = _entries(v66, "adult.cont.atracurium.none.mcg-kg-min.")
    assert entry.bolus is not None and entry.bolus_rate is not None
    assert entry.bolus.unit == DoseUnit.parse("mg/kg")
    assert entry.bolus.limits == LimitSet(
        soft_min=Decimal("0.07"), soft_max=Decimal("0.5"), hard_max=Decimal("0.58")
    )
    assert entry.bolus_rate.unit == DoseUnit.parse("mg/kg/min")
    assert entry.bolus_rate.limits.hard_max == Decimal("0.29")
    assert entry.custom_concentration is not None
    assert entry.custom_concentration.unit is AmountUnit.MCG


def test_vancomycin_duration_limits_differ_per_concentration(v66: ImportResult) -> None:
    entries = _entries(v66, "adult.int.vancomycin.mg-dosing.mg.")
    durations = {e.duration_min for e in entries}
    assert len(entries) > 1
    assert len(durations) == len(entries)
    by_volume = {c.volume_ml: e for e in entries for c in e.concentrations if c.amount == Decimal(500)}
    first = by_volume[Decimal(100)]
    assert first.duration_min.limits == LimitSet(hard_min=Decimal(25), soft_max=Decimal(240))
    assert first.duration_min.default == Decimal(30)
    largest = next(e for e in entries if any(c.amount == Decimal(2000) for c in e.concentrations))
    assert largest.duration_min.limits == LimitSet(hard_min=Decimal(105), soft_max=Decimal(360))
    assert {c.volume_ml for c in largest.concentrations} >= {Decimal(350), Decimal(400), Decimal(500)}
    assert all(e.dose.limits == LimitSet(soft_min=Decimal(500), soft_max=Decimal(2000)) for e in entries)


def test_fluid_rate_limits_are_in_dose_and_rate(v66: ImportResult) -> None:
    (entry,) = _entries(v66, "adult.fluid.ivf-kcl.15-meq-l.ml-h.")
    expected = LimitSet(soft_min=Decimal(1), soft_max=Decimal(666), hard_max=Decimal(700))
    assert entry.kind is EntryKind.IV_FLUID
    assert entry.mode is DeliveryMode.RATE
    assert entry.dose.unit == DoseUnit.parse("mL/h")
    assert entry.dose.limits == expected
    assert entry.rate_ml_per_h.limits == expected
    assert v66.library.drug(entry.drug_id).generic_name == ".IVF + KCL"


def test_master_drug_aliases_become_ehr_codes(v66: ImportResult) -> None:
    drugs = {d.generic_name: d for d in v66.library.drugs}
    assert drugs["vancomycin"].ehr_codes == ("2770944I",)
    assert drugs["heparin"].ehr_codes == ("2759747C",)
    assert drugs["..IVF Maintenance"].ehr_codes == ("1000000000F", "1000000000I")
    assert drugs["heparin"].is_high_alert
    assert not drugs["vancomycin"].is_high_alert


def test_every_sheet_balances_read_with_represented_and_not(v66: ImportResult) -> None:
    for sheet in v66.report.sheets:
        assert sheet.rows_read == sheet.represented + sheet.not_represented, sheet


def test_section_counts_match_the_sheet_rows(v66: ImportResult) -> None:
    path = shared_file(*V66)
    for sheet in ("ContBolus Non-Anesth Drugs", "ContBolus Anesth Drugs", "Intermittent Drugs", "Fluids"):
        rows = _sheet_rows(path, sheet)
        placeholders = sum(1 for r in rows if r[2] == "No drugs exist in this section")
        count = v66.report.sheet(sheet)
        assert count.rows_read == len(rows)
        assert count.represented == len(rows) - placeholders
        assert count.not_represented == placeholders
    assert v66.report.sheet("Intermittent Drugs").represented == 955
    assert v66.report.sheet("PCA Drugs").not_represented == 5


def test_rows_per_profile_are_all_held_by_entries(v66: ImportResult) -> None:
    rows = _sheet_rows(shared_file(*V66), "Intermittent Drugs")
    per_profile = Counter(str(r[1]) for r in rows)
    held: Counter[str] = Counter()
    for entry in v66.library.entries:
        if entry.mode is DeliveryMode.INTERMITTENT:
            area = v66.library.care_area(entry.care_area_id).name
            held[area] += len(entry.concentrations) + (entry.custom_concentration is not None)
    assert held == per_profile
    assert per_profile["Adult"] == 493


def test_unused_master_advisory_is_reported_not_dropped(v66: ImportResult) -> None:
    items = {(u.sheet, u.item) for u in v66.report.unrepresented}
    assert ("Master Clinical Advisories", "12 Hour Tubing") in items
    assert any("high-alert" in n for n in v66.report.notes)


def test_entry_ids_are_stable_across_imports(v66: ImportResult) -> None:
    again = read_alaris(shared_file(*V66))
    assert [e.id for e in again.library.entries] == [e.id for e in v66.library.entries]


def test_previous_version_imports(v66: ImportResult) -> None:
    v65 = read_alaris(shared_file(*V65))
    assert v65.library.version == 65
    assert len(v65.library.care_areas) == len(v66.library.care_areas)


def test_changed_entries_match_the_rows_that_changed_between_versions(v66: ImportResult) -> None:
    def group_keys(path: Path) -> Counter[tuple[object, ...]]:
        rows = _sheet_rows(path, "Intermittent Drugs")
        return Counter(tuple(v for i, v in enumerate(r) if i not in (0, 8)) for r in rows)

    old_rows, new_rows = group_keys(shared_file(*V65)), group_keys(shared_file(*V66))
    changed_rows = (old_rows - new_rows) + (new_rows - old_rows)
    changed_groups = {
        (str(r[0]), str(r[1]), str(r[2]), str(DoseUnit.parse(str(r[14])))) for r in changed_rows
    }
    v65 = read_alaris(shared_file(*V65))

    def by_id(result: ImportResult) -> dict[str, Entry]:
        return {e.id: e for e in result.library.entries if e.mode is DeliveryMode.INTERMITTENT}

    old, new = by_id(v65), by_id(v66)
    differing = {i for i in old.keys() | new.keys() if old.get(i) != new.get(i)}
    names = {d.id: d.generic_name for d in (*v65.library.drugs, *v66.library.drugs)}
    areas = {a.id: a.name for a in v66.library.care_areas}
    from_library = {
        (areas[(e := old.get(i) or new[i]).care_area_id], names[e.drug_id], e.therapy or "", str(e.dose.unit))
        for i in differing
    }
    assert len(changed_groups) > 0
    assert from_library == changed_groups


def test_a_workbook_without_alaris_sheets_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.title = "Something"
    workbook.save(path)
    with pytest.raises(LibraryFormatError, match="Data Set Properties"):
        read_alaris(path)


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_text("not a zip")
    with pytest.raises(LibraryFormatError, match="not a readable"):
        read_alaris(path)
