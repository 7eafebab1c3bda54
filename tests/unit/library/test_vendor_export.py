"""Export to the two vendor layouts the importer reads, checked by re-import equality: the real BD Alaris
v66 and Baxter v14 libraries come back equal field by field; the demo library's losses are exactly the
values each layout has no place for, every one of them listed; PCA entries go through the Alaris PCA Drugs
sheet, and the entries written and re-imported are counted per delivery mode."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from smartpump.errors import LibraryFormatError
from smartpump.library.formats import alaris_export, baxter_export, json_format
from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.formats.detect import ImportFormat, detect_format
from smartpump.library.formats.vendor_roundtrip import describe, entry_counts, losses
from smartpump.library.model import (
    Bounds,
    CustomConcentration,
    DeliveryMode,
    DrugLibrary,
    PCALimits,
    PCASettings,
)
from tests import vendor_libraries
from tests.factories import concentration, dose_limits, limit_set, make_care_area, make_entry, make_library

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"

# What the Alaris report has no column or sheet for, as found on the demo library.
ALARIS_NOT_CARRIED = {
    "name",  # the version is carried as ' v<n>' in the data-set name
    "generic_name",  # one drug-name column: the Tall Man name comes back as the generic name too
    "is_high_alert",  # no flag: the ISMP table decides on import
    "devices",  # 'any device' comes back as pump and syringe
    "weight_kg.soft_min",
    "weight_kg.soft_max",
    "basic_infusion.rate_ml_per_h.hard_min",
    "basic_infusion.rate_ml_per_h.hard_max",
    "basic_infusion.allowed",
    "bsa_resolution_m2",
    "pca.pause_spo2_min_percent",
    "pca.pause_etco2_max_mmhg",
    "dose.hard_min",
    "pca.max_dose_window_h",  # the window is the profile's (PCA Config), not the entry's
}
BAXTER_NOT_CARRIED = {
    "hospital_id",
    "generic_name",
    "is_high_alert",
    "drug",  # a drug whose only entries are PCA
    "entry",
    "bsa_m2.hard_max",
    "bsa_resolution_m2",
    "max_rate_ml_per_h",
    "basic_infusion.allowed",
    "basic_infusion.advisory",
    "device.air_in_line_ul",
    "device.kvo_rate_ml_per_h",
    "device.max_rate_ml_per_h",
    "device.max_vtbi_ml",
    "pca.bolus_delivery_rate_ml_per_h",
    "pca.max_dose_window_h",
    "pca.pause_enabled",
    "pca.pause_spo2_min_percent",
    "pca.pause_etco2_max_mmhg",
    "pca.pause_resp_rate_min_bpm",
    "pca.pause_message",
}


@pytest.fixture(scope="module")
def demo() -> DrugLibrary:
    return json_format.read(DEMO)


def _via_alaris(library: DrugLibrary, tmp_path: Path) -> DrugLibrary:
    path = tmp_path / "alaris.xlsx"
    alaris_export.write_alaris(library, path)
    assert detect_format(path) is ImportFormat.ALARIS_XLSX
    return read_alaris(path).library


def _via_baxter(library: DrugLibrary, tmp_path: Path) -> DrugLibrary:
    path = tmp_path / "baxter.xlsx"
    baxter_export.write_baxter(library, path)
    assert detect_format(path) is ImportFormat.BAXTER_XLSX
    return read_baxter(path).library


@pytest.fixture(scope="module")
def alaris_round_trip(tmp_path_factory: pytest.TempPathFactory) -> tuple[DrugLibrary, DrugLibrary]:
    """The real BD Alaris v66 library and what comes back from its own export (written once per module)."""
    original = vendor_libraries.alaris(66).library
    return original, _via_alaris(original, tmp_path_factory.mktemp("alaris"))


@pytest.fixture(scope="module")
def baxter_round_trip(tmp_path_factory: pytest.TempPathFactory) -> tuple[DrugLibrary, DrugLibrary]:
    """The real Baxter Sigma v14 library and what comes back from its own export (written once per module)."""
    original = vendor_libraries.baxter().library
    return original, _via_baxter(original, tmp_path_factory.mktemp("baxter"))


def test_real_alaris_v66_comes_back_equal(alaris_round_trip: tuple[DrugLibrary, DrugLibrary]) -> None:
    original, back = alaris_round_trip
    assert losses(original, back) == ()
    assert (len(back.entries), len(back.drugs), len(back.care_areas)) == (
        len(original.entries),
        len(original.drugs),
        len(original.care_areas),
    )


def test_real_baxter_v14_comes_back_equal(baxter_round_trip: tuple[DrugLibrary, DrugLibrary]) -> None:
    original, back = baxter_round_trip
    assert losses(original, back) == ()
    assert len(back.entries) == len(original.entries)


def test_demo_through_alaris_loses_only_what_the_layout_cannot_hold(
    demo: DrugLibrary, tmp_path: Path
) -> None:
    found = losses(demo, _via_alaris(demo, tmp_path))
    assert {c.parameter for c in found} == ALARIS_NOT_CARRIED
    windows = {c.where.split(" (", 1)[1].rstrip(")") for c in found if c.parameter == "pca.max_dose_window_h"}
    pca_area = demo.care_area("PCA")
    assert windows == {
        f"Adult PCA / {demo.drug(e.drug_id).shown_name} / {e.dose.unit}"
        for e in demo.entries
        if e.pca is not None and e.pca.max_dose_window_h != pca_area.pca.max_dose_window_h
    }
    hard_minima = [c for c in found if c.parameter == "dose.hard_min"]
    assert len(hard_minima) == sum(e.pca is None and e.dose.limits.hard_min is not None for e in demo.entries)


def test_demo_through_baxter_loses_only_what_the_layout_cannot_hold(
    demo: DrugLibrary, tmp_path: Path
) -> None:
    found = losses(demo, _via_baxter(demo, tmp_path))
    assert {c.parameter for c in found} == BAXTER_NOT_CARRIED


def test_every_loss_reads_as_one_line() -> None:
    library = make_library(
        entries=(make_entry(dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_max=20, hard_max=30)),)
    )
    changed = replace(
        library,
        entries=(make_entry(dose=dose_limits("mcg/kg/min", default=5, soft_max=20, hard_max=30)),),
    )
    (only,) = [c for c in losses(library, changed) if c.parameter == "dose.hard_min"]
    assert describe(only) == "entry:icu-dopamine (Adult ICU / DOPamine / mcg/kg/min): dose.hard_min 1 -> -"


def test_limits_written_as_cells_come_back_exactly(tmp_path: Path) -> None:
    odd = make_entry(
        dose=dose_limits("mcg/kg/min", default="0.07", soft_min="0.1", soft_max="2.333", hard_max=30)
    )
    library = make_library(care_areas=(make_care_area(),), entries=(odd,))
    back = _via_alaris(library, tmp_path)
    (entry,) = back.entries
    assert entry.dose.limits == limit_set(soft_min="0.1", soft_max="2.333", hard_max=30)
    assert entry.dose.default == Decimal("0.07")


def test_a_duration_in_fractions_of_a_minute_is_refused_not_rounded(tmp_path: Path) -> None:
    entry = make_entry(
        dose=dose_limits("mg", soft_max=2, hard_max=4),
        mode=DeliveryMode.INTERMITTENT,
        duration_min=Bounds(limits=limit_set(soft_min="2.5")),
    )
    library = make_library(entries=(entry,))
    with pytest.raises(LibraryFormatError) as raised:
        alaris_export.dumps(library)
    assert raised.value.code == "library.export_duration"
    assert "2.5 min is not a whole number of minutes" in raised.value.message


@pytest.mark.parametrize(("write", "read"), [(_via_alaris, "alaris.xlsx"), (_via_baxter, "baxter.xlsx")])
def test_a_name_that_looks_like_a_formula_is_written_as_text_and_comes_back(
    write: Any, read: str, tmp_path: Path
) -> None:
    formula = '=HYPERLINK("http://example.invalid","dopamine")'
    library = make_library(
        drugs=(replace(make_library().drugs[0], generic_name=formula, display_name=""),),
        care_areas=(make_care_area(),),
    )
    back = write(library, tmp_path)
    assert back.drugs[0].shown_name == formula
    workbook = load_workbook(tmp_path / read)
    cells = [c for sheet in workbook.worksheets for row in sheet.iter_rows() for c in row]
    written = [c for c in cells if c.value == formula]
    assert written and all(c.data_type == "s" for c in written)


def test_demo_pca_entries_are_written_to_the_pca_drugs_sheet_and_all_come_back(
    demo: DrugLibrary, tmp_path: Path
) -> None:
    back = _via_alaris(demo, tmp_path)
    counts = entry_counts(demo, back)
    assert counts["pca"] == (3, 3)
    assert all(written == reimported for written, reimported in counts.values()), counts
    sheet = load_workbook(tmp_path / "alaris.xlsx")["PCA Drugs"]
    assert sorted(str(r[2]) for r in sheet.iter_rows(min_row=3, values_only=True)) == [
        "HYDROmorphone",
        "fentaNYL",
        "morphine",
    ]


def test_a_full_pca_entry_comes_back_exactly_through_alaris(tmp_path: Path) -> None:
    pca = PCALimits(
        demand_dose=dose_limits("mg", default="1", soft_min="0.5", soft_max=2, hard_max=3),
        lockout_min=Bounds(limits=limit_set(hard_min=5, soft_min=6, soft_max=20), default=Decimal(10)),
        basal=dose_limits("mg/h", default=0, soft_max=1, hard_max=2),
        loading_dose=dose_limits("mg", soft_max=3, hard_max=5),
        clinician_bolus=dose_limits("mg", soft_min=1, soft_max=2, hard_max=4),
        max_dose=dose_limits("mg", default=8, soft_max=10, hard_max=12),
        max_dose_window_h=4,
    )
    entry = make_entry(
        id="pca-morphine",
        mode=DeliveryMode.PCA,
        dose=pca.demand_dose,
        pca=pca,
        concentrations=(),
        custom_concentration=CustomConcentration(
            unit=pca.demand_dose.unit.amount, limits=limit_set(hard_min=1)
        ),
        rate_ml_per_h=Bounds(),
        devices=(),
    )
    area = make_care_area(pca=PCASettings(max_dose_window_h=4, pause_enabled=True))
    library = make_library(care_areas=(area,), entries=(entry,))
    back = _via_alaris(library, tmp_path)
    (returned,) = back.entries
    assert returned.pca == pca
    assert returned.custom_concentration == entry.custom_concentration
    assert [c.parameter for c in losses(library, back) if c.where.startswith("entry:")] == []


def test_an_alaris_pca_row_without_pca_dose_limits_is_reported_not_imported(tmp_path: Path) -> None:
    entry = make_entry(
        id="pca-morphine",
        mode=DeliveryMode.PCA,
        dose=dose_limits("mg", soft_max=2, hard_max=3),
        pca=PCALimits(demand_dose=dose_limits("mg", soft_max=2, hard_max=3)),
        concentrations=(concentration("30 mg/30 mL"),),
        rate_ml_per_h=Bounds(),
    )
    path = tmp_path / "alaris.xlsx"
    alaris_export.write_alaris(make_library(entries=(entry,)), path)
    workbook = load_workbook(path)
    sheet = workbook["PCA Drugs"]
    for column in range(17, 21):  # PCA Dose Limits soft min .. initial value
        sheet.cell(row=3, column=column).value = None
    workbook.save(path)
    result = read_alaris(path)
    assert result.library.entries == ()
    (skipped,) = [u for u in result.report.unrepresented if u.sheet == "PCA Drugs"]
    assert "without PCA dose limits" in skipped.reason


@pytest.mark.parametrize("round_trip", ["alaris_round_trip", "baxter_round_trip"])
def test_real_exports_come_back_with_every_entry_of_every_mode(
    round_trip: str, request: pytest.FixtureRequest
) -> None:
    original, back = request.getfixturevalue(round_trip)
    counts = entry_counts(original, back)
    assert all(written == back for written, back in counts.values()), counts
    assert sum(written for written, _ in counts.values()) == len(original.entries)


def test_baxter_lists_intermittent_and_pca_entries_as_not_coming_back(
    demo: DrugLibrary, tmp_path: Path
) -> None:
    # Sigma Spectrum reports carry continuous and rate rows only: no layout is made up for the others.
    intermittent = make_entry(
        id="icu-kcl",
        mode=DeliveryMode.INTERMITTENT,
        dose=dose_limits("mEq", soft_max=20, hard_max=40),
        concentrations=(concentration("10 mEq/100 mL"),),
        duration_min=Bounds(limits=limit_set(soft_min=60)),
        rate_ml_per_h=Bounds(),
    )
    library = replace(
        demo, entries=(*demo.entries, replace(intermittent, care_area_id="ADULT_ICU", drug_id="dopamine"))
    )
    back = _via_baxter(library, tmp_path)
    counts = entry_counts(library, back)
    assert counts["intermittent"] == (1, 0)
    assert counts["pca"] == (3, 0)
    assert counts["continuous"][0] == counts["continuous"][1] > 0
    lost = [c for c in losses(library, back) if c.parameter == "entry"]
    assert len(lost) == 4
