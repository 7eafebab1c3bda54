"""Malformed vendor exports (synthetic workbooks from vendor_workbooks): every refusal carries our
error code, every unusable row is reported with its sheet, row and reason, and nothing else is lost."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import smartpump.cli.library_import  # noqa: F401  (registers the command)
from smartpump.cli import app
from smartpump.errors import LibraryFormatError
from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.formats.detect import (
    ImportFormat,
    cell_decimal,
    cell_text,
    detect_format,
    format_from_sheets,
    slug,
)
from smartpump.library.formats.ehr_mapping import read_ehr_mapping, resolve_alias
from smartpump.library.formats.import_report import ImportReport, ImportResult, Unrepresented
from smartpump.library.limits import LimitSet
from smartpump.library.model import DrugLibrary
from smartpump.units import AmountUnit, Concentration
from tests.unit.library.vendor_workbooks import (
    ALARIS_COLUMNS,
    ALARIS_PROPERTIES,
    AMOUNT,
    ANES,
    BAXTER_AREA,
    BAXTER_HEADER,
    CONT,
    INT,
    PROFILE,
    VOLUME,
    BaxterArea,
    alaris_rows,
    baxter_drug_row,
    baxter_time_row,
    cont_row,
    fluid_row,
    int_row,
    mapping_row,
    write_alaris,
    write_baxter,
    write_mapping,
    write_sheets,
)

runner = CliRunner()

# Sheet row numbers of the synthetic workbooks: Alaris data rows start at row 3 (title, header).
FIRST_ALARIS_ROW = 3
# Baxter FullList: title, 4 header lines, blank, then the area block (area, 3 weight headers, weights,
# blank, 'Continuous Drugs', 4 drug-table headers) -> weights are row 11 and the first drug row 18.
BAXTER_WEIGHTS_ROW = 11
FIRST_BAXTER_DRUG_ROW = 18


def _balanced(report: ImportReport) -> None:
    for sheet in report.sheets:
        assert sheet.rows_read == sheet.represented + sheet.not_represented, sheet
    assert report.rows_not_represented == sum(s.not_represented for s in report.sheets)


def _only_skip(report: ImportReport) -> Unrepresented:
    _balanced(report)
    assert len(report.unrepresented) == 1, f"expected one reported row, got {report.unrepresented}"
    return report.unrepresented[0]


def _alaris(tmp_path: Path, **kwargs: Any) -> ImportResult:
    return read_alaris(write_alaris(tmp_path / "synthetic-alaris.xlsx", **kwargs))


def _baxter(tmp_path: Path, **kwargs: Any) -> ImportResult:
    return read_baxter(write_baxter(tmp_path / "synthetic-baxter.xlsx", **kwargs))


def _cont_problem(tmp_path: Path, **overrides: object) -> tuple[ImportResult, Unrepresented]:
    """A continuous section with one good row and one row carrying ``overrides`` (the second row)."""
    result = _alaris(tmp_path, rows={CONT: [cont_row(), cont_row(**{"Drug Name": "synthadol", **overrides})]})
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == (
        CONT,
        FIRST_ALARIS_ROW + 1,
        f"{PROFILE} / synthadol",
    )
    assert result.report.sheet(CONT).represented == 1
    assert [d.generic_name for d in result.library.drugs if d.generic_name == "synthadol"] == []
    return result, skipped


def _int_problem(tmp_path: Path, **overrides: object) -> Unrepresented:
    result = _alaris(tmp_path, rows={INT: [int_row(), int_row(**{"Drug Name": "synthafen", **overrides})]})
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == (INT, FIRST_ALARIS_ROW + 1, f"{PROFILE} / synthafen")
    assert result.report.sheet(INT).represented == 1
    return skipped


# --- detect: which export a file is, and the shared cell readers ---------------------------------


def test_detect_refuses_a_workbook_that_is_no_vendor_export(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "budget.xlsx", {"Budget": [["item", "cost"]], "Notes": []})
    with pytest.raises(LibraryFormatError) as caught:
        detect_format(path)
    assert caught.value.code == "library.format_unknown"
    assert "['Budget', 'Notes']" in caught.value.message


def test_detect_refuses_an_empty_workbook(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "empty.xlsx", {"Sheet1": []})
    with pytest.raises(LibraryFormatError) as caught:
        detect_format(path)
    assert caught.value.code == "library.format_unknown"


def test_detect_refuses_a_text_file_named_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    path.write_text("Drug,Dose\nsynthamycin,5\n", encoding="utf-8")
    with pytest.raises(LibraryFormatError) as caught:
        detect_format(path)
    assert caught.value.code == "library.format_unreadable"
    assert "report.xlsx is not a readable .xlsx workbook" in caught.value.message


def test_detect_refuses_a_file_with_an_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4 synthetic")
    with pytest.raises(LibraryFormatError) as caught:
        detect_format(path)
    assert caught.value.code == "library.format_unreadable"


def test_detect_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        detect_format(tmp_path / "absent.xlsx")
    assert caught.value.code == "library.format_unreadable"


def test_detect_takes_csv_by_extension_without_opening_it(tmp_path: Path) -> None:
    assert detect_format(tmp_path / "not-even-there.CSV") is ImportFormat.CSV


def test_detect_recognises_the_synthetic_workbooks(tmp_path: Path) -> None:
    assert detect_format(write_alaris(tmp_path / "a.xlsx")) is ImportFormat.ALARIS_XLSX
    assert detect_format(write_baxter(tmp_path / "b.xlsx")) is ImportFormat.BAXTER_XLSX
    assert detect_format(write_mapping(tmp_path / "m.xlsx", [mapping_row()])) is ImportFormat.EHR_MAPPING_XLSX


def test_detect_needs_all_three_alaris_sheets() -> None:
    with pytest.raises(LibraryFormatError) as caught:
        format_from_sheets(("Data Set Properties", "Master Drugs"))
    assert caught.value.code == "library.format_unknown"


def test_cell_decimal_refuses_a_formula() -> None:
    with pytest.raises(LibraryFormatError) as caught:
        cell_decimal("=A1*2", what="'Dose Limits Soft Max'")
    assert caught.value.code == "library.format_formula"
    assert "'Dose Limits Soft Max': formula '=A1*2'" in caught.value.message


def test_cell_decimal_refuses_text() -> None:
    with pytest.raises(LibraryFormatError) as caught:
        cell_decimal("ten", what="limit")
    assert (caught.value.code, caught.value.message) == (
        "library.format_number",
        "limit: 'ten' is not a number",
    )


def test_cell_decimal_refuses_a_boolean() -> None:
    with pytest.raises(LibraryFormatError) as caught:
        cell_decimal(True, what="limit")
    assert caught.value.code == "library.format_number"


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-inf"])
def test_cell_decimal_refuses_non_finite_numbers(text: str) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        cell_decimal(text, what="limit")
    assert caught.value.code == "library.format_number"
    assert "not a finite number" in caught.value.message


@pytest.mark.parametrize("blank", [None, "", "  ", "n/a", "N/A", "-", "--"])
def test_cell_decimal_reads_blanks_as_absent(blank: object) -> None:
    assert cell_decimal(blank, what="limit") is None


def test_cell_decimal_is_exact_for_floats_ints_and_thousands() -> None:
    assert cell_decimal(0.81, what="x") == Decimal("0.81")
    assert cell_decimal(7, what="x") == Decimal(7)
    assert cell_decimal(" 1,250.5 ", what="x") == Decimal("1250.5")


def test_cell_text_keeps_integral_floats_integral() -> None:
    assert cell_text(9000001.0) == "9000001"
    assert cell_text(2.5) == "2.5"
    assert cell_text(None) == ""


def test_slug_of_only_punctuation_is_none() -> None:
    assert slug("... ") == "none"


# --- Alaris: whole-file refusals ----------------------------------------------------------------


def test_alaris_synthetic_baseline_imports_every_row(tmp_path: Path) -> None:
    result = _alaris(tmp_path)
    _balanced(result.report)
    assert result.report.unrepresented == ()
    assert result.library.version == 7
    assert result.library.hospital_id == "synthetic-test-hospital"
    assert len(result.library.entries) == 3


def test_alaris_empty_data_set_properties_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, properties={})
    assert caught.value.code == "library.format_properties"


def test_alaris_properties_without_hospital_name_are_refused(tmp_path: Path) -> None:
    properties = {k: v for k, v in ALARIS_PROPERTIES.items() if k != "Hospital Name"}
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, properties=properties)
    assert caught.value.code == "library.format_properties"
    assert "'Hospital Name'" in caught.value.message


def test_alaris_properties_without_data_set_name_are_refused(tmp_path: Path) -> None:
    properties = {k: v for k, v in ALARIS_PROPERTIES.items() if k != "Data Set Name"}
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, properties=properties)
    assert caught.value.code == "library.format_properties"


def test_alaris_missing_section_sheet_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, omit=("Fluids",))
    assert caught.value.code == "library.format_sheet"
    assert "'Fluids'" in caught.value.message


def test_alaris_missing_properties_sheet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, omit=("Data Set Properties",))
    assert caught.value.code == "library.format_sheet"


def test_alaris_non_numeric_care_area_limit_is_refused_with_our_error(tmp_path: Path) -> None:
    unit = {**alaris_rows()["PC Unit Config"][0], "Max Patient Weight (kg)": "heavy"}
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, rows={"PC Unit Config": [unit]})
    assert caught.value.code == "library.format_number"
    assert "'Max Patient Weight (kg)': 'heavy' is not a number" in caught.value.message


def test_alaris_name_without_version_gets_version_one_with_a_note(tmp_path: Path) -> None:
    result = _alaris(tmp_path, properties={**ALARIS_PROPERTIES, "Data Set Name": "SyntheticNoVersion"})
    assert result.library.version == 1
    assert any("'SyntheticNoVersion' carries no 'v<number>'" in n for n in result.report.notes)


def test_alaris_version_zero_is_not_silently_replaced(tmp_path: Path) -> None:
    """Regression (alaris.py): 'v0' parses as 0, `version or 1` makes it 1 and no note says so."""
    result = _alaris(tmp_path, properties={**ALARIS_PROPERTIES, "Data Set Name": "Synthetic2099v0"})
    assert any("version set to 1" in n and "Synthetic2099v0" in n for n in result.report.notes)


# --- Alaris: one bad row is reported, the others are imported ------------------------------------


def test_alaris_unknown_dosing_unit_kcal_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{"Dosing Units": "kcal/h"})
    assert skipped.reason == "unknown amount unit 'kcal' in 'kcal/h'"


def test_alaris_unknown_dosing_unit_million_units_is_reported(tmp_path: Path) -> None:
    skipped = _int_problem(tmp_path, **{"Dosing Units": "million units"})
    assert skipped.reason == "unknown amount unit 'millionunits' in 'million units'"


def test_alaris_unknown_bolus_unit_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{"Bolus Dose Units": "kcal/kg"})
    assert "unknown amount unit 'kcal'" in skipped.reason


def test_alaris_drug_amount_unit_that_is_a_rate_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{"Drug Amount Units": "mg/h"})
    assert skipped.reason == "'mg/h' is not an amount unit"


def test_alaris_blank_concentration_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{AMOUNT: None})
    assert skipped.reason == "drug amount or diluent volume is blank"


def test_alaris_custom_concentration_marker_without_limits_is_held_as_custom(tmp_path: Path) -> None:
    result = _alaris(tmp_path, rows={CONT: [cont_row(**{AMOUNT: "- -", VOLUME: "- -"})]})
    _balanced(result.report)
    assert result.report.sheet(CONT).represented == 1
    (entry,) = [e for e in result.library.entries if e.id.startswith("synthetic-unit.cont.")]
    assert entry.concentrations == ()
    assert entry.custom_concentration is not None
    assert entry.custom_concentration.unit is AmountUnit.MG
    assert entry.custom_concentration.limits.is_empty


def test_alaris_custom_concentration_keeps_its_concentration_limits(tmp_path: Path) -> None:
    row = cont_row(
        **{
            AMOUNT: "- -",
            VOLUME: "- -",
            "Conc. Limit Units": "mg/mL",
            "Conc. Limits Hard Min": 0.5,
            "Conc. Limits Soft Min": 1,
            "Conc. Limits Soft Max": 2,
        }
    )
    result = _alaris(tmp_path, rows={CONT: [row]})
    (entry,) = [e for e in result.library.entries if e.id.startswith("synthetic-unit.cont.")]
    assert entry.custom_concentration is not None
    assert entry.custom_concentration.limits == LimitSet(
        hard_min=Decimal("0.5"), soft_min=Decimal(1), soft_max=Decimal(2)
    )


def test_alaris_custom_concentration_unit_not_per_ml_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{AMOUNT: "- -", VOLUME: "- -", "Conc. Limit Units": "mg/L"})
    assert skipped.reason == "concentration unit 'mg/L' is not <amount>/mL"


def test_alaris_fixed_concentration_with_concentration_limits_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{"Conc. Limit Units": "mg/mL", "Conc. Limits Soft Max": 2})
    assert skipped.reason == "concentration limits on a fixed concentration cannot be represented"


def test_alaris_non_numeric_limit_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{"Dose Limits Soft Max": "ten"})
    assert skipped.reason == "'Dose Limits Soft Max': 'ten' is not a number"


def test_alaris_formula_in_a_limit_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{"Dose Limits Hard Max": "=M4*2"})
    assert skipped.reason == "'Dose Limits Hard Max': formula '=M4*2' where a number was expected"


def test_alaris_soft_max_above_hard_max_is_reported_and_other_rows_kept(tmp_path: Path) -> None:
    result, skipped = _cont_problem(tmp_path, **{"Dose Limits Soft Max": 30, "Dose Limits Hard Max": 20})
    assert "soft_max 30 is above hard_max 20" in skipped.reason
    assert result.report.sheet(INT).represented == 1
    assert result.report.sheet("Fluids").represented == 1
    assert len(result.library.entries) == 3


def test_alaris_disordered_bolus_limits_are_reported(tmp_path: Path) -> None:
    overrides = {"Bolus Dose Units": "mg", "Bolus Dose Limits Soft Min": 5, "Bolus Dose Limits Soft Max": 1}
    _, skipped = _cont_problem(tmp_path, **overrides)
    assert "soft_min 5 is above soft_max 1" in skipped.reason


def test_alaris_negative_limit_is_reported(tmp_path: Path) -> None:
    _, skipped = _cont_problem(tmp_path, **{"Dose Limits Soft Min": -1})
    assert skipped.reason == "soft_min must not be negative, got -1"


def test_alaris_duration_that_is_not_hhmm_is_reported(tmp_path: Path) -> None:
    skipped = _int_problem(tmp_path, **{"Duration Limits (hh:mm) Soft Max": "90 min"})
    assert skipped.reason == "duration soft max: '90 min' is not hh:mm"


def test_alaris_duration_with_minutes_over_59_is_reported(tmp_path: Path) -> None:
    """Regression (alaris.py): '00:75' matches (\\d+):(\\d{2}) and is read as 75 minutes, not refused."""
    skipped = _int_problem(tmp_path, **{"Duration Limits (hh:mm) Soft Max": "00:75"})
    assert "hh:mm" in skipped.reason


def test_alaris_duration_time_cells_and_na_are_read(tmp_path: Path) -> None:
    row = int_row(
        **{
            "Duration Limits (hh:mm) Hard Min": datetime.time(0, 20),
            "Duration Limits (hh:mm) Soft Min": "n/a",
            "Duration (hh:mm) Initial Value": datetime.time(1, 5),
        }
    )
    result = _alaris(tmp_path, rows={INT: [row]})
    (entry,) = [e for e in result.library.entries if e.id.startswith("synthetic-unit.int.")]
    assert entry.duration_min.limits == LimitSet(hard_min=Decimal(20), soft_max=Decimal(60))
    assert entry.duration_min.default == Decimal(65)


def test_alaris_disordered_durations_are_reported(tmp_path: Path) -> None:
    skipped = _int_problem(tmp_path, **{"Duration Limits (hh:mm) Hard Min": "02:00"})
    assert "hard_min 120 is above soft_min 20" in skipped.reason


def test_alaris_diluent_unit_that_is_not_ml_is_reported(tmp_path: Path) -> None:
    skipped = _int_problem(tmp_path, **{"Diluent Volume Units": "L"})
    assert skipped.reason == "diluent volume unit 'L' is not mL"


def test_alaris_unknown_module_availability_is_reported_and_leaves_no_drug(tmp_path: Path) -> None:
    """Regression (alaris.py): Entry(...) evaluates
    drug_id=self._drug_id(...) before devices=_devices(...), so a row refused for its module
    availability still registers its drug: the library gains a Drug no entry uses."""
    _, skipped = _cont_problem(tmp_path, **{"Module Availability": "Wall socket"})
    assert skipped.reason == "unknown module availability 'Wall socket'"


def test_alaris_placeholder_row_is_reported(tmp_path: Path) -> None:
    placeholder = {"Profile": PROFILE, "Drug Name": "No drugs exist in this section"}
    result = _alaris(tmp_path, rows={ANES: [placeholder]})
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == (ANES, FIRST_ALARIS_ROW, PROFILE)
    assert "placeholder" in skipped.reason


def test_alaris_pca_drug_rows_that_cannot_be_read_are_reported_not_dropped(tmp_path: Path) -> None:
    rows = [
        {"Profile": PROFILE, "Drug Name": "synthorphine"},
        {"Profile": PROFILE, "Drug Name": "No drugs exist in this section"},
    ]
    result = _alaris(tmp_path, rows={"PCA Drugs": rows})
    _balanced(result.report)
    count = result.report.sheet("PCA Drugs")
    assert (count.rows_read, count.not_represented) == (2, 2)
    reasons = [u.reason for u in result.report.unrepresented]
    assert any("unknown dosing unit" in r for r in reasons)  # a row with no amount unit, no limits
    assert any("placeholder" in r for r in reasons)


def test_alaris_fluid_rate_unit_not_ml_per_h_is_reported(tmp_path: Path) -> None:
    result = _alaris(
        tmp_path, rows={"Fluids": [fluid_row(), fluid_row(**{"Fluid Name": "X", "Rate Units": "mL/min"})]}
    )
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == ("Fluids", FIRST_ALARIS_ROW + 1, f"{PROFILE} / X")
    assert skipped.reason == "rate unit 'mL/min' is not mL/h"
    assert result.report.sheet("Fluids").represented == 1


def test_alaris_fluid_disordered_rate_limits_are_reported(tmp_path: Path) -> None:
    bad = fluid_row(**{"Fluid Name": "X", "Rate Limits (mL/h) Soft Max": 1000})
    result = _alaris(tmp_path, rows={"Fluids": [fluid_row(), bad]})
    assert "soft_max 1000 is above hard_max 999" in _only_skip(result.report).reason


def test_alaris_advisory_missing_from_master_is_kept_as_name_with_note(tmp_path: Path) -> None:
    result = _alaris(tmp_path, rows={CONT: [cont_row(**{"Clinical Advisory": "Synthetic Caution"})]})
    (entry,) = [e for e in result.library.entries if e.id.startswith("synthetic-unit.cont.")]
    assert entry.advisory == "Synthetic Caution"
    assert any("'Synthetic Caution' is not in Master Clinical Advisories" in n for n in result.report.notes)
    assert result.report.unrepresented == ()


def test_alaris_advisory_in_master_gives_its_text_and_unused_ones_are_reported(tmp_path: Path) -> None:
    advisories = [
        {"Advisory Name": "Synthetic Caution", "Advisory Text": "Synthetic advisory text"},
        {"Advisory Name": "Synthetic Unused", "Advisory Text": "never referenced"},
    ]
    rows = {
        CONT: [cont_row(**{"Clinical Advisory": "Synthetic Caution"})],
        "Master Clinical Advisories": advisories,
    }
    result = _alaris(tmp_path, rows=rows)
    (entry,) = [e for e in result.library.entries if e.id.startswith("synthetic-unit.cont.")]
    assert entry.advisory == "Synthetic advisory text"
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == (
        "Master Clinical Advisories",
        FIRST_ALARIS_ROW + 1,
        "Synthetic Unused",
    )


def test_alaris_config_row_of_an_unlisted_profile_is_reported(tmp_path: Path) -> None:
    pump = alaris_rows()["Pump Config"][0]
    result = _alaris(tmp_path, rows={"Pump Config": [pump, {**pump, "Profile": "Ghost Unit"}]})
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == ("Pump Config", FIRST_ALARIS_ROW + 1, "Ghost Unit")
    assert skipped.reason == "profile is not listed in PC Unit Config"


def test_alaris_duplicate_profile_row_in_a_config_sheet_is_not_lost(tmp_path: Path) -> None:
    """Regression (alaris.py): rows are keyed by Profile in a dict, so the first of two rows
    for the same profile vanishes: neither represented nor reported (rows_read 1 for 2 rows)."""
    pump = alaris_rows()["Pump Config"][0]
    result = _alaris(tmp_path, rows={"Pump Config": [{**pump, "Maximum Rate (mL/h)": 100}, pump]})
    _balanced(result.report)
    count = result.report.sheet("Pump Config")
    assert (count.rows_read, count.not_represented) == (2, 1)


def test_alaris_fractional_auto_restart_attempts_is_not_truncated(tmp_path: Path) -> None:
    """Regression (alaris.py): 2.5 auto-restart attempts become 2 without a word."""
    pump = {**alaris_rows()["Pump Config"][0], "Auto-Restart Attempts": 2.5}
    with pytest.raises(LibraryFormatError):
        _alaris(tmp_path, rows={"Pump Config": [pump]})


def test_alaris_pca_configuration_is_held(tmp_path: Path) -> None:
    rows = {
        "PCA Config": [
            {
                "Profile": PROFILE,
                "Bolus Delivery Rate (mL/h)": 100,
                "Max Dose Limit": "Enabled",
                "Time Window (h)": 4,
            }
        ],
        "PCA Pause Protocol": [
            {
                "Profile": PROFILE,
                "PCA Pause Protocol Enabled": "Enabled",
                "PCA Pause Protocol": "Synthetic  pause",
            }
        ],
        "EtCO2 Config": [{"Profile": PROFILE, "PCA Pause Resp. Rate Initial Value (bpm)": 8}],
    }
    result = _alaris(tmp_path, rows=rows)
    pca = result.library.care_area("synthetic-unit").pca
    assert (pca.max_dose_window_h, pca.pause_enabled, pca.pause_message) == (4, True, "Synthetic pause")
    assert pca.pause_resp_rate_min_bpm == Decimal(8)
    _balanced(result.report)
    assert result.report.unrepresented == ()


def test_alaris_syringe_and_shared_config_rows_are_reported(tmp_path: Path) -> None:
    shared = [{"Profile": PROFILE}]
    result = _alaris(
        tmp_path,
        rows={
            "Syringe Config": shared,
            "Pump & Syringe Shared Config": shared,
            "PCA & Syringe Shared Config": shared,
        },
    )
    _balanced(result.report)
    assert {(u.sheet, u.row) for u in result.report.unrepresented} == {
        ("Syringe Config", FIRST_ALARIS_ROW),
        ("Pump & Syringe Shared Config", FIRST_ALARIS_ROW),
        ("PCA & Syringe Shared Config", FIRST_ALARIS_ROW),
    }


def test_alaris_master_drug_concentration_in_no_recognised_form_is_reported(tmp_path: Path) -> None:
    master = [*alaris_rows()["Master Drugs"], {"Drug Name": "synthamycin", "Concentration": "see pharmacy"}]
    skipped = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert (skipped.sheet, skipped.row) == ("Master Drugs", FIRST_ALARIS_ROW + 2)
    assert skipped.reason == "formulary concentration 'see pharmacy' is not in a recognised form"


def test_alaris_master_drug_concentration_with_unknown_unit_is_reported(tmp_path: Path) -> None:
    master = [
        *alaris_rows()["Master Drugs"],
        {"Drug Name": "synthamycin", "Concentration": "5 kcal / 100 mL"},
    ]
    skipped = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert skipped.reason == "unknown amount unit 'kcal' in 'kcal'"


def test_alaris_master_drug_concentration_used_by_no_entry_is_reported(tmp_path: Path) -> None:
    master = [*alaris_rows()["Master Drugs"], {"Drug Name": "synthamycin", "Concentration": "200 mg / 50 mL"}]
    skipped = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert skipped.item == "synthamycin 200 mg / 50 mL"
    assert "used by no profile entry" in skipped.reason


def test_alaris_master_custom_concentration_is_represented_only_when_an_entry_has_one(tmp_path: Path) -> None:
    master = [
        *alaris_rows()["Master Drugs"],
        {"Drug Name": "synthamycin", "Concentration": "--- mg / --- mL"},
    ]
    unused = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert unused.reason == "custom concentration of the formulary is used by no profile entry"
    custom = cont_row(**{"Therapy Name": "custom", AMOUNT: "- -", VOLUME: "- -"})
    used = _alaris(tmp_path, rows={"Master Drugs": master, CONT: [cont_row(), custom]})
    _balanced(used.report)
    assert used.report.unrepresented == ()


def test_alaris_master_drug_concentration_with_a_malformed_number_is_reported(tmp_path: Path) -> None:
    """Regression (alaris.py): '1.2.3' matches [\\d,.]+ and Decimal('1.2.3') raises a bare
    decimal.InvalidOperation out of read_alaris instead of reporting the Master Drugs row."""
    master = [
        *alaris_rows()["Master Drugs"],
        {"Drug Name": "synthamycin", "Concentration": "1.2.3 mg / 100 mL"},
    ]
    skipped = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert skipped.sheet == "Master Drugs"


def test_alaris_master_drug_concentration_with_a_custom_volume_only_is_reported(tmp_path: Path) -> None:
    """Regression (alaris.py): '100 mg / --- mL' (amount fixed, volume '---') raises a bare
    decimal.InvalidOperation out of read_alaris instead of reporting the Master Drugs row."""
    master = [
        *alaris_rows()["Master Drugs"],
        {"Drug Name": "synthamycin", "Concentration": "100 mg / --- mL"},
    ]
    skipped = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert skipped.sheet == "Master Drugs"


def test_alaris_master_drug_zero_concentration_is_reported(tmp_path: Path) -> None:
    """Regression (alaris.py): Concentration(0 mg, 100 mL) raises UnitError outside any try, so one
    Master Drugs row refuses the whole import with a message naming no sheet or row."""
    master = [*alaris_rows()["Master Drugs"], {"Drug Name": "synthamycin", "Concentration": "0 mg / 100 mL"}]
    skipped = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert skipped.sheet == "Master Drugs"


def test_alaris_master_drug_without_concentration_is_represented(tmp_path: Path) -> None:
    master = [*alaris_rows()["Master Drugs"], {"Drug Name": "synthamycin", "Concentration": None}]
    result = _alaris(tmp_path, rows={"Master Drugs": master})
    _balanced(result.report)
    assert result.report.sheet("Master Drugs").represented == 3


def test_alaris_profile_without_pump_config_gets_default_device_settings(tmp_path: Path) -> None:
    units = [*alaris_rows()["PC Unit Config"], {"Profile": "Second Unit", "Max Patient Weight (kg)": 50}]
    result = _alaris(tmp_path, rows={"PC Unit Config": units})
    second = result.library.care_area("second-unit")
    assert (second.max_rate_ml_per_h, second.device.max_rate_ml_per_h) == (None, None)
    assert second.weight_kg.limits == LimitSet(hard_max=Decimal(50))
    assert result.report.sheet("PC Unit Config").represented == 2


def test_alaris_unused_therapy_is_reported(tmp_path: Path) -> None:
    rows = {
        CONT: [cont_row(**{"Therapy Name": "Synthetic Therapy"})],
        "Master Therapies": [{"Therapy": "Synthetic Therapy"}, {"Therapy": "Unused Therapy"}],
    }
    skipped = _only_skip(_alaris(tmp_path, rows=rows).report)
    assert (skipped.sheet, skipped.row, skipped.item) == (
        "Master Therapies",
        FIRST_ALARIS_ROW + 1,
        "Unused Therapy",
    )


def test_alaris_channel_labels_are_held(tmp_path: Path) -> None:
    result = _alaris(
        tmp_path, rows={"Channel Labels": [{"Label A": "Synthetic A", "Label B": "Synthetic B"}]}
    )
    assert result.library.care_area("synthetic-unit").channel_labels == ("Synthetic A", "Synthetic B")
    assert result.report.sheet("Channel Labels").represented == 1
    assert not any("not used in this data set" in n for n in result.report.notes)


def test_alaris_excluded_syringe_is_reported(tmp_path: Path) -> None:
    syringes = [{"Syringe Type": "Synthetic 10 mL", "Included?": "True"}, {"Syringe Type": "Synthetic 60 mL"}]
    result = _alaris(tmp_path, rows={"Master Syringe List": syringes})
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.item) == ("Master Syringe List", "Synthetic 60 mL")
    assert result.library.syringes == ("Synthetic 10 mL",)


def test_alaris_syringe_list_without_a_syringe_type_column_is_refused(tmp_path: Path) -> None:
    """Regression (alaris.py): next(...) over the columns raises a bare StopIteration when
    no header ends with 'Syringe Type'."""
    columns = {**ALARIS_COLUMNS, "Master Syringe List": ("Line Item", "Syringe", "Included?")}
    rows = {"Master Syringe List": [{"Syringe": "Synthetic 10 mL", "Included?": "True"}]}
    with pytest.raises(LibraryFormatError):
        _alaris(tmp_path, rows=rows, columns=columns)


def test_alaris_duplicate_drug_rows_are_both_held(tmp_path: Path) -> None:
    result = _alaris(tmp_path, rows={CONT: [cont_row(), cont_row()]})
    _balanced(result.report)
    assert result.report.sheet(CONT).represented == 2
    (entry,) = [e for e in result.library.entries if e.id.startswith("synthetic-unit.cont.")]
    assert entry.concentrations == (Concentration(Decimal(100), AmountUnit.MG, Decimal(100)),) * 2


def test_alaris_duplicate_profile_row_in_a_config_sheet_holds_the_first(tmp_path: Path) -> None:
    pump = alaris_rows()["Pump Config"][0]
    result = _alaris(tmp_path, rows={"Pump Config": [{**pump, "Maximum Rate (mL/h)": 100}, pump]})
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == ("Pump Config", FIRST_ALARIS_ROW + 1, PROFILE)
    assert f"row {FIRST_ALARIS_ROW} is held" in skipped.reason
    assert result.library.care_area("synthetic-unit").max_rate_ml_per_h == Decimal(100)


def test_alaris_pump_config_error_names_sheet_row_and_profile(tmp_path: Path) -> None:
    pump = {**alaris_rows()["Pump Config"][0], "Maximum Rate (mL/h)": "fast"}
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, rows={"Pump Config": [pump]})
    assert caught.value.code == "library.format_number"
    assert caught.value.message.startswith(f"Pump Config row {FIRST_ALARIS_ROW} (profile {PROFILE!r}): ")
    assert "'Maximum Rate (mL/h)': 'fast' is not a number" in caught.value.message


def test_alaris_pc_unit_config_error_names_sheet_and_row(tmp_path: Path) -> None:
    unit = {**alaris_rows()["PC Unit Config"][0], "Max Patient BSA (m2)": -1}
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, rows={"PC Unit Config": [unit]})
    assert caught.value.message.startswith(f"PC Unit Config row {FIRST_ALARIS_ROW} ")


def test_alaris_negative_auto_restart_attempts_are_refused(tmp_path: Path) -> None:
    pump = {**alaris_rows()["Pump Config"][0], "Auto-Restart Attempts": -1}
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, rows={"Pump Config": [pump]})
    assert "'Auto-Restart Attempts': -1 is not a whole number" in caught.value.message


def _pca_config(window: object) -> dict[str, list[dict[str, object]]]:
    return {
        "PCA Config": [
            {
                "Profile": PROFILE,
                "Bolus Delivery Rate (mL/h)": 100,
                "Max Dose Limit": "Enabled",
                "Time Window (h)": window,
            }
        ]
    }


@pytest.mark.parametrize(("window", "reason"), [(13, "13 h is outside 1-12 h"), (0, "0 h is outside 1-12 h")])
def test_alaris_pca_time_window_outside_one_to_twelve_hours_is_reported(
    tmp_path: Path, window: int, reason: str
) -> None:
    result = _alaris(tmp_path, rows=_pca_config(window))
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == ("PCA Config", FIRST_ALARIS_ROW, PROFILE)
    assert reason in skipped.reason
    pca = result.library.care_area("synthetic-unit").pca
    assert (pca.max_dose_window_h, pca.bolus_delivery_rate_ml_per_h) == (None, None)


def test_alaris_fractional_pca_time_window_is_reported_not_truncated(tmp_path: Path) -> None:
    result = _alaris(tmp_path, rows=_pca_config(2.5))
    assert "'Time Window (h)': 2.5 is not a whole number" in _only_skip(result.report).reason
    assert result.library.care_area("synthetic-unit").pca.max_dose_window_h is None


def test_alaris_pca_pause_is_held_without_a_pca_config_row(tmp_path: Path) -> None:
    rows = {
        "PCA Pause Protocol": [
            {"Profile": PROFILE, "PCA Pause Protocol Enabled": "Enabled", "PCA Pause Protocol": "Synthetic"}
        ],
        "EtCO2 Config": [{"Profile": PROFILE, "PCA Pause Resp. Rate Initial Value (bpm)": 8}],
    }
    result = _alaris(tmp_path, rows=rows)
    pca = result.library.care_area("synthetic-unit").pca
    assert (pca.pause_enabled, pca.pause_message, pca.pause_resp_rate_min_bpm) == (
        True,
        "Synthetic",
        Decimal(8),
    )
    _balanced(result.report)
    assert result.report.unrepresented == ()


def test_alaris_duration_time_cell_with_seconds_is_reported(tmp_path: Path) -> None:
    skipped = _int_problem(tmp_path, **{"Duration Limits (hh:mm) Soft Max": datetime.time(1, 0, 30)})
    assert skipped.reason == "duration soft max: '01:00:30' carries seconds; hh:mm expected"


def test_alaris_advisory_of_a_refused_row_is_reported_as_unused(tmp_path: Path) -> None:
    bad = cont_row(
        **{"Drug Name": "synthadol", "Clinical Advisory": "Synthetic Caution", "Dosing Units": "kcal/h"}
    )
    rows = {
        CONT: [cont_row(), bad],
        "Master Clinical Advisories": [{"Advisory Name": "Synthetic Caution", "Advisory Text": "text"}],
    }
    result = _alaris(tmp_path, rows=rows)
    _balanced(result.report)
    assert {(u.sheet, u.item) for u in result.report.unrepresented} == {
        (CONT, f"{PROFILE} / synthadol"),
        ("Master Clinical Advisories", "Synthetic Caution"),
    }


def test_alaris_refused_fluid_row_leaves_no_drug(tmp_path: Path) -> None:
    bad = fluid_row(**{"Fluid Name": "Synthetic Lost Fluid", "Rate Units": "mL/min"})
    result = _alaris(tmp_path, rows={"Fluids": [fluid_row(), bad]})
    assert "Synthetic Lost Fluid" not in {d.generic_name for d in result.library.drugs}


def test_alaris_master_drug_concentration_with_a_custom_amount_only_is_reported(tmp_path: Path) -> None:
    master = [*alaris_rows()["Master Drugs"], {"Drug Name": "synthamycin", "Concentration": "--- mg / 50 mL"}]
    skipped = _only_skip(_alaris(tmp_path, rows={"Master Drugs": master}).report)
    assert (
        skipped.reason == "formulary concentration '--- mg / 50 mL' mixes a fixed and a custom ('---') part"
    )


def test_alaris_syringe_list_error_names_the_sheet(tmp_path: Path) -> None:
    columns = {**ALARIS_COLUMNS, "Master PCA Syringe List": ("Line Item", "Syringe", "Included?")}
    rows = {"Master PCA Syringe List": [{"Syringe": "Synthetic 10 mL", "Included?": "True"}]}
    with pytest.raises(LibraryFormatError) as caught:
        _alaris(tmp_path, rows=rows, columns=columns)
    assert caught.value.code == "library.format_columns"
    assert caught.value.message.startswith("Master PCA Syringe List has no '... Syringe Type' column")


# --- Baxter -------------------------------------------------------------------------------------


def _baxter_problem(tmp_path: Path, bad: list[object]) -> tuple[ImportResult, Unrepresented]:
    result = _baxter(tmp_path, areas=[BaxterArea(drugs=[baxter_drug_row(), bad])])
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row) == ("FullList", FIRST_BAXTER_DRUG_ROW + 1)
    assert len(result.library.entries) == 1
    assert [d.generic_name for d in result.library.drugs] == ["SYNTHAMYCIN"]
    return result, skipped


def test_baxter_synthetic_baseline_imports_every_row(tmp_path: Path) -> None:
    result = _baxter(tmp_path, discrete=[baxter_drug_row()])
    _balanced(result.report)
    assert result.report.unrepresented == ()
    assert (result.library.name, result.library.version) == ("SyntheticDrugLibrary", 3)
    assert "1234" not in (result.library.provenance.note or "")


def test_baxter_workbook_without_fulllist_is_refused(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "other.xlsx", {"Summary": [["synthetic"]]})
    with pytest.raises(LibraryFormatError) as caught:
        read_baxter(path)
    assert caught.value.code == "library.format_sheet"


def test_baxter_empty_fulllist_is_refused(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "empty.xlsx", {"FullList": []})
    with pytest.raises(LibraryFormatError) as caught:
        read_baxter(path)
    assert caught.value.code == "library.format_baxter"
    assert "no 'Care Area:' block" in caught.value.message


def test_baxter_header_block_without_version_is_refused(tmp_path: Path) -> None:
    header = {k: v for k, v in BAXTER_HEADER.items() if k != "Version"}
    with pytest.raises(LibraryFormatError) as caught:
        _baxter(tmp_path, header=header)
    assert caught.value.code == "library.format_baxter"
    assert "numeric 'Version'" in caught.value.message


def test_baxter_header_block_with_non_numeric_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        _baxter(tmp_path, header={**BAXTER_HEADER, "Version": "v3"})
    assert caught.value.code == "library.format_baxter"


def test_baxter_header_block_without_library_name_is_refused(tmp_path: Path) -> None:
    header = {k: v for k, v in BAXTER_HEADER.items() if k != "Library Name"}
    with pytest.raises(LibraryFormatError) as caught:
        _baxter(tmp_path, header=header)
    assert caught.value.code == "library.format_baxter"


def test_baxter_unparsable_patient_weight_limits_are_reported(tmp_path: Path) -> None:
    result = _baxter(tmp_path, areas=[BaxterArea(weights=("-", "heavy", "250 kg", "-"))])
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.row, skipped.item) == ("FullList", BAXTER_WEIGHTS_ROW, BAXTER_AREA)
    assert skipped.reason.startswith("patient weight limits: weight must look like")
    assert result.library.care_area("synthetic-ward").weight_kg.limits.is_empty
    assert len(result.library.entries) == 1


def test_baxter_disordered_patient_weight_limits_are_reported(tmp_path: Path) -> None:
    result = _baxter(tmp_path, areas=[BaxterArea(weights=("-", "300 kg", "250 kg", "-"))])
    skipped = _only_skip(result.report)
    assert skipped.row == BAXTER_WEIGHTS_ROW
    assert "soft_min 300 is above soft_max 250" in skipped.reason


def test_baxter_unknown_dose_mode_is_reported(tmp_path: Path) -> None:
    _, skipped = _baxter_problem(tmp_path, baxter_drug_row("SYNTHADOL", dose_mode="kcal/hr"))
    assert skipped.item == f"{BAXTER_AREA} / SYNTHADOL"
    assert skipped.reason == "unknown amount unit 'kcal' in 'kcal/hr'"


def test_baxter_non_numeric_dose_limit_is_reported(tmp_path: Path) -> None:
    _, skipped = _baxter_problem(tmp_path, baxter_drug_row("SYNTHADOL", dose=("-", 1, 5, "ten", 20)))
    assert skipped.reason == "dose/rate limit: 'ten' is not a number"


def test_baxter_disordered_dose_limits_are_reported(tmp_path: Path) -> None:
    _, skipped = _baxter_problem(tmp_path, baxter_drug_row("SYNTHADOL", dose=("-", 1, 5, 30, 20)))
    assert "soft_max 30 is above hard_max 20" in skipped.reason


def test_baxter_concentration_without_amount_and_volume_is_reported(tmp_path: Path) -> None:
    bad = baxter_drug_row("SYNTHADOL", amount="-", diluent_ml="-", conc="-")
    _, skipped = _baxter_problem(tmp_path, bad)
    assert skipped.reason == "concentration '-' without drug amount and diluent volume"


def test_baxter_amount_without_a_space_before_its_unit_is_reported(tmp_path: Path) -> None:
    _, skipped = _baxter_problem(tmp_path, baxter_drug_row("SYNTHADOL", amount="100mg"))
    assert skipped.reason == "drug amount: '100mg' is not a number"


def test_baxter_per_ml_concentration_text_is_read_when_amount_and_volume_are_blank(tmp_path: Path) -> None:
    row = baxter_drug_row(amount="-", diluent_ml="-", conc="2 mg/mL")
    result = _baxter(tmp_path, areas=[BaxterArea(drugs=[row])])
    assert result.report.unrepresented == ()
    (entry,) = result.library.entries
    assert entry.concentrations == (Concentration(Decimal(2), AmountUnit.MG, Decimal(1)),)


def test_baxter_variable_concentration_with_unknown_unit_is_reported(tmp_path: Path) -> None:
    bad = baxter_drug_row("SYNTHADOL", amount="-", diluent_ml="-", conc="Variable kcal/mL")
    _, skipped = _baxter_problem(tmp_path, bad)
    assert skipped.reason == "unknown amount unit 'kcal' in 'kcal'"


def test_baxter_variable_concentration_without_a_unit_is_reported(tmp_path: Path) -> None:
    """Regression (baxter.py): conc_text.split()[1] raises a bare IndexError for 'Variable' alone."""
    bad = baxter_drug_row("SYNTHADOL", amount="-", diluent_ml="-", conc="Variable")
    _baxter_problem(tmp_path, bad)


def test_baxter_bolus_limits_without_an_amount_unit_are_reported(tmp_path: Path) -> None:
    bad = baxter_drug_row("SYNTHADOL", bolus_unit="-", bolus=(1, 1, 1, 1, 1))
    _, skipped = _baxter_problem(tmp_path, bad)
    assert skipped.reason == "bolus limits without an amount unit"


def test_baxter_basic_row_with_non_numeric_rate_is_reported(tmp_path: Path) -> None:
    result = _baxter(tmp_path, areas=[BaxterArea(basic=("fast", "-", "-", "-", 999))])
    skipped = _only_skip(result.report)
    assert skipped.item == f"{BAXTER_AREA} / BASIC"
    assert skipped.reason == "BASIC rate: 'fast' is not a number"
    assert result.library.care_area("synthetic-ward").basic_infusion.rate_ml_per_h.limits.is_empty


def test_baxter_row_with_a_blank_drug_name_is_reported(tmp_path: Path) -> None:
    _, skipped = _baxter_problem(tmp_path, baxter_drug_row("")[:16])
    assert (skipped.item, skipped.reason) == ("(blank drug)", "row not recognised in the report")


def test_baxter_drug_row_before_the_first_care_area_is_reported(tmp_path: Path) -> None:
    """Regression (baxter.py): rows between the header block and the first 'Care Area:'
    that do not end with ':' are skipped without a report entry; the 'row before the first care
    area' branch (baxter.py:148-150) can never run because run() starts at the first care area."""
    result = _baxter(tmp_path, before_first_area=[baxter_drug_row("SYNTHALOST")])
    _balanced(result.report)
    assert [u.item for u in result.report.unrepresented] == ["SYNTHALOST"]


def test_baxter_load_time_row_in_min_sec_is_held_as_minutes(tmp_path: Path) -> None:
    drug = baxter_drug_row(bolus_unit="mg", load=(1, 2, 3, 4, 5))
    # Excel stores a 'min:sec' cell as h:mm: 01:00 is one minute, 02:30 two and a half.
    minutes_seconds = (
        datetime.time(1, 0),
        datetime.time(2, 30),
        datetime.timedelta(hours=3),
        datetime.time(4, 0),
        "-",
    )
    result = _baxter(
        tmp_path, areas=[BaxterArea(drugs=[drug, baxter_time_row("min:sec", load=minutes_seconds)])]
    )
    _balanced(result.report)
    assert result.report.unrepresented == ()
    (entry,) = result.library.entries
    assert entry.loading_duration_min.limits == LimitSet(
        hard_min=Decimal(1), soft_min=Decimal("2.5"), soft_max=Decimal(4)
    )
    assert entry.loading_duration_min.default == Decimal(3)


def test_baxter_load_time_row_in_seconds_is_converted_exactly(tmp_path: Path) -> None:
    """Regression (baxter.py): the 'sec' factor is Decimal(1) / Decimal(60), rounded to 28
    digits, so 30 s becomes 0.5000000000000000000000000001 min instead of 0.5."""
    drug = baxter_drug_row(bolus_unit="mg", load=(1, 2, 3, 4, 5))
    result = _baxter(
        tmp_path, areas=[BaxterArea(drugs=[drug, baxter_time_row("sec", load=(30, "-", 60, "-", 120))])]
    )
    (entry,) = result.library.entries
    assert entry.loading_duration_min.limits == LimitSet(hard_min=Decimal("0.5"), hard_max=Decimal(2))


def test_baxter_non_numeric_load_time_is_refused_with_our_error(tmp_path: Path) -> None:
    drug = baxter_drug_row(bolus_unit="mg", load=(1, 2, 3, 4, 5))
    time_row = baxter_time_row("min", load=("soon", 1, 1, 1, 1))
    with pytest.raises(LibraryFormatError) as caught:
        _baxter(tmp_path, areas=[BaxterArea(drugs=[drug, time_row])])
    assert caught.value.code == "library.format_number"


def test_baxter_discretelist_row_matching_no_fulllist_row_is_reported(tmp_path: Path) -> None:
    result = _baxter(tmp_path, discrete=[baxter_drug_row(), baxter_drug_row("SYNTHORPHAN")])
    skipped = _only_skip(result.report)
    assert (skipped.sheet, skipped.item) == ("DiscreteList", "SYNTHORPHAN")
    assert result.report.sheet("DiscreteList").represented == 1


def test_baxter_without_discretelist_reads_fulllist_only(tmp_path: Path) -> None:
    result = _baxter(tmp_path)
    assert [s.sheet for s in result.report.sheets] == ["FullList"]
    assert not any("DiscreteList" in n for n in result.report.notes)


def test_baxter_duplicate_drug_rows_are_both_held(tmp_path: Path) -> None:
    result = _baxter(tmp_path, areas=[BaxterArea(drugs=[baxter_drug_row(), baxter_drug_row()])])
    _balanced(result.report)
    assert result.report.unrepresented == ()
    (entry,) = result.library.entries
    assert len(entry.concentrations) == 2


def test_baxter_variable_concentration_without_a_unit_gives_the_reason(tmp_path: Path) -> None:
    bad = baxter_drug_row("SYNTHADOL", amount="-", diluent_ml="-", conc="Variable")
    _, skipped = _baxter_problem(tmp_path, bad)
    assert skipped.reason == "variable concentration 'Variable' names no amount unit"


def test_baxter_header_rows_and_the_title_are_not_reported(tmp_path: Path) -> None:
    result = _baxter(tmp_path, before_first_area=[baxter_drug_row("SYNTHALOST")])
    (skipped,) = result.report.unrepresented
    assert (skipped.sheet, skipped.row, skipped.reason) == (
        "FullList",
        len(BAXTER_HEADER) + 3,
        "row before the first care area is not a 'Name: value' header row",
    )
    assert "SYNTHALOST" not in {d.generic_name for d in result.library.drugs}


def _load_time_area(time_row: list[object], drug: list[object] | None = None) -> list[BaxterArea]:
    drug = drug or baxter_drug_row(bolus_unit="mg", load=(1, 2, 3, 4, 5))
    return [BaxterArea(drugs=[drug, time_row])]


def test_baxter_load_time_row_in_hours_is_held_as_minutes(tmp_path: Path) -> None:
    result = _baxter(tmp_path, areas=_load_time_area(baxter_time_row("hr", load=(0, "-", "0.5", "-", 2))))
    (entry,) = result.library.entries
    assert entry.loading_duration_min.limits == LimitSet(hard_min=Decimal(0), hard_max=Decimal(120))
    assert entry.loading_duration_min.default == Decimal(30)


def test_baxter_out_of_order_load_times_are_refused_naming_the_row(tmp_path: Path) -> None:
    time_row = baxter_time_row("min", load=(10, "-", "-", "-", 5))
    with pytest.raises(LibraryFormatError) as caught:
        _baxter(tmp_path, areas=_load_time_area(time_row))
    assert caught.value.code == "limits.order"
    assert caught.value.message.startswith(
        f"FullList row {FIRST_BAXTER_DRUG_ROW + 1}: load-dose time limits: "
    )


def test_baxter_non_numeric_load_time_error_names_the_row(tmp_path: Path) -> None:
    time_row = baxter_time_row("sec", load=("soon", 1, 1, 1, 1))
    with pytest.raises(LibraryFormatError) as caught:
        _baxter(tmp_path, areas=_load_time_area(time_row))
    assert caught.value.message == (
        f"FullList row {FIRST_BAXTER_DRUG_ROW + 1}: load-dose time limits: time limit: 'soon' is not a number"
    )


def test_baxter_negative_load_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        _baxter(tmp_path, areas=_load_time_area(baxter_time_row("sec", load=(-30, "-", "-", "-", 60))))
    assert caught.value.code == "library.format_number"
    assert "time limit: -30 is negative" in caught.value.message


def test_baxter_time_row_under_a_refused_drug_row_is_reported(tmp_path: Path) -> None:
    bad = baxter_drug_row("SYNTHADOL", dose_mode="kcal/hr", bolus_unit="mg", load=(1, 2, 3, 4, 5))
    result = _baxter(tmp_path, areas=_load_time_area(baxter_time_row("min", load=(1, 2, 3, 4, 5)), bad))
    _balanced(result.report)
    assert [(u.row, u.reason) for u in result.report.unrepresented] == [
        (FIRST_BAXTER_DRUG_ROW, "unknown amount unit 'kcal' in 'kcal/hr'"),
        (FIRST_BAXTER_DRUG_ROW + 1, "time row not under an imported drug row"),
    ]


# --- EHR mapping --------------------------------------------------------------------------------


@pytest.fixture
def synthetic_library(tmp_path: Path) -> DrugLibrary:
    return read_alaris(write_alaris(tmp_path / "library.xlsx")).library


def test_mapping_without_mapping_sheet_is_refused(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "map.xlsx", {"Sheet1": [["Primary", "Alias"]]})
    with pytest.raises(LibraryFormatError) as caught:
        read_ehr_mapping(path)
    assert caught.value.code == "library.format_sheet"


def test_mapping_empty_sheet_is_refused_listing_every_column(tmp_path: Path) -> None:
    path = write_mapping(tmp_path / "map.xlsx", [], columns=())
    with pytest.raises(LibraryFormatError) as caught:
        read_ehr_mapping(path)
    assert caught.value.code == "library.format_columns"
    assert caught.value.problems == ("Additive", "Diluent", "Primary", "Alias", "Comment", "Method")


def test_mapping_row_without_primary_is_reported(tmp_path: Path) -> None:
    path = write_mapping(tmp_path / "map.xlsx", [mapping_row(), mapping_row(Primary=None, Comment="orphan")])
    mappings, report = read_ehr_mapping(path)
    skipped = _only_skip(report)
    assert (skipped.sheet, skipped.row, skipped.item, skipped.reason) == (
        "Mapping File",
        3,
        "orphan",
        "no Primary order identifier",
    )
    assert len(mappings) == 1


def test_mapping_row_without_alias_is_reported(tmp_path: Path) -> None:
    path = write_mapping(tmp_path / "map.xlsx", [mapping_row(Alias=None, Method="WB"), mapping_row()])
    mappings, report = read_ehr_mapping(path)
    skipped = _only_skip(report)
    assert skipped.row == 2
    assert skipped.reason == "no Alias: the row names no library entry (method 'WB')"
    assert len(mappings) == 1


def test_mapping_alias_that_resolves_to_nothing_is_kept_with_a_note(
    tmp_path: Path, synthetic_library: DrugLibrary
) -> None:
    path = write_mapping(
        tmp_path / "map.xlsx", [mapping_row(), mapping_row(Primary="8000002", Alias="7777777")]
    )
    mappings, report = read_ehr_mapping(path, synthetic_library)
    _balanced(report)
    assert [m.alias for m in mappings] == ["9000001", "7777777"]
    assert report.notes == ("alias 7777777 (row 3) matches no drug or fluid of the library",)


def test_mapping_alias_resolves_by_suffixed_code_and_by_name(synthetic_library: DrugLibrary) -> None:
    by_code = resolve_alias(synthetic_library, "9000002")
    by_name = resolve_alias(synthetic_library, "Synthetic Fluid")
    assert by_code is not None and by_code.generic_name == "synthacillin"
    assert by_name is not None and by_name.generic_name == ".Synthetic Fluid"
    assert resolve_alias(synthetic_library, "900000") is None


def test_mapping_blank_rows_are_not_counted(tmp_path: Path) -> None:
    path = write_mapping(tmp_path / "map.xlsx", [mapping_row(), {}, mapping_row(Primary="8000002")])
    mappings, report = read_ehr_mapping(path)
    assert report.sheet("Mapping File").rows_read == 2
    assert len(mappings) == 2


def test_mapping_duplicate_rows_are_both_kept(tmp_path: Path) -> None:
    path = write_mapping(tmp_path / "map.xlsx", [mapping_row(), mapping_row()])
    mappings, report = read_ehr_mapping(path)
    _balanced(report)
    assert len(mappings) == 2 and mappings[0] == mappings[1]


# --- CLI boundary: refusals exit 2 with the code; a refused import writes nothing ----------------


def test_cli_refuses_a_workbook_of_no_known_export(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "budget.xlsx", {"Budget": [["item"]]})
    result = runner.invoke(app, ["library", "import", str(path)])
    assert result.exit_code == 2
    assert "error [library.format_unknown]" in result.stderr


def test_cli_refused_import_leaves_the_output_file_untouched(tmp_path: Path) -> None:
    properties = {k: v for k, v in ALARIS_PROPERTIES.items() if k != "Hospital Name"}
    source = write_alaris(tmp_path / "bad.xlsx", properties=properties)
    out = tmp_path / "library.json"
    out.write_text("previous library", encoding="utf-8")
    result = runner.invoke(app, ["library", "import", str(source), "-o", str(out)])
    assert result.exit_code == 2
    assert "error [library.format_properties]" in result.stderr
    assert out.read_text(encoding="utf-8") == "previous library"


def test_cli_reports_a_bad_row_with_sheet_row_and_reason(tmp_path: Path) -> None:
    rows = {CONT: [cont_row(), cont_row(**{"Drug Name": "synthadol", "Dosing Units": "kcal/h"})]}
    source = write_alaris(tmp_path / "rows.xlsx", rows=rows)
    result = runner.invoke(app, ["library", "import", str(source), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["unrepresented"] == [
        {
            "sheet": CONT,
            "row": FIRST_ALARIS_ROW + 1,
            "item": f"{PROFILE} / synthadol",
            "reason": "unknown amount unit 'kcal' in 'kcal/h'",
        }
    ]
