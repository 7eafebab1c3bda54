"""Export to the two vendor layouts the importer reads, checked by re-import equality: the real BD Alaris
v66 and Baxter v14 libraries come back equal field by field; the demo library's losses are exactly the
values each layout has no place for, every one of them listed."""

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
from smartpump.library.formats.vendor_roundtrip import describe, losses
from smartpump.library.model import Bounds, DeliveryMode, DrugLibrary
from tests.conftest import shared_file
from tests.factories import dose_limits, limit_set, make_care_area, make_entry, make_library

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
    "entry",  # PCA entries: the importer does not read PCA rows
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


def test_real_alaris_v66_comes_back_equal(tmp_path: Path) -> None:
    original = read_alaris(shared_file("vendor-libraries", "alaris-guardrails-dataset-v66.xlsx")).library
    back = _via_alaris(original, tmp_path)
    assert losses(original, back) == ()
    assert (len(back.entries), len(back.drugs), len(back.care_areas)) == (
        len(original.entries),
        len(original.drugs),
        len(original.care_areas),
    )


def test_real_baxter_v14_comes_back_equal(tmp_path: Path) -> None:
    original = read_baxter(shared_file("vendor-libraries", "baxter-sigma-library-v14.xlsx")).library
    back = _via_baxter(original, tmp_path)
    assert losses(original, back) == ()
    assert len(back.entries) == len(original.entries)


def test_demo_through_alaris_loses_only_what_the_layout_cannot_hold(
    demo: DrugLibrary, tmp_path: Path
) -> None:
    found = losses(demo, _via_alaris(demo, tmp_path))
    assert {c.parameter for c in found} == ALARIS_NOT_CARRIED
    lost_entries = [c for c in found if c.parameter == "entry"]
    assert len(lost_entries) == sum(e.mode is DeliveryMode.PCA for e in demo.entries) == 3
    assert all("Adult PCA /" in c.where for c in lost_entries)
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
