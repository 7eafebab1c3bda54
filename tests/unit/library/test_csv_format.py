"""Pharmacist CSV: shared example import, PCA rows, every rejected row reported, escaping, round trip."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.errors import LibraryFormatError
from smartpump.library.formats import csv_format, json_format
from smartpump.library.model import DeliveryMode, DrugLibrary
from smartpump.units import DoseUnit

SETTINGS = Path(__file__).resolve().parents[3] / "examples" / "demo-care-areas.json"
HEADER = ",".join(csv_format.SHARED_COLUMNS)


def import_text(text: str, **kwargs: object) -> DrugLibrary:
    return csv_format.loads(text, hospital_id="h1", **kwargs)  # type: ignore[arg-type]


def problems(text: str, **kwargs: object) -> tuple[str, ...]:
    with pytest.raises(LibraryFormatError) as caught:
        csv_format.loads(text, **{"hospital_id": "h1", **kwargs})  # type: ignore[arg-type]
    return caught.value.problems


def row(**cells: str) -> str:
    base = {
        "care_area": "ICU",
        "drug": "dopamine",
        "concentration_amount": "400",
        "concentration_unit": "mg",
        "volume_ml": "250",
        "dosing_unit": "mcg/kg/min",
        "soft_min": "1",
        "soft_max": "20",
        "hard_min": "",
        "hard_max": "30",
        "bolus_allowed": "N",
        "high_alert": "Y",
        "source": "test",
        "limits_are_estimate": "false",
    }
    base.update(cells)
    buffer = io.StringIO()
    csv.writer(buffer).writerow([base[c] for c in csv_format.SHARED_COLUMNS])
    return buffer.getvalue()


def test_shared_csv_gives_69_entries_39_drugs_7_care_areas(example_csv: Path) -> None:
    with example_csv.open(encoding="utf-8", newline="") as handle:
        source_rows = list(csv.DictReader(handle))
    library = csv_format.read(example_csv, hospital_id="h1")
    assert len(source_rows) == 69
    assert len({r["drug"] for r in source_rows}) == 39
    assert (len(library.entries), len(library.drugs), len(library.care_areas)) == (69, 39, 7)
    assert library.provenance.imported_from == "example-drug-library.csv"


def test_shared_csv_pca_rows_become_pca_entries(example_csv: Path) -> None:
    library = csv_format.read(example_csv, hospital_id="h1")
    pca = [e for e in library.entries if e.mode is DeliveryMode.PCA]
    assert [e.id for e in pca] == ["PCA.morphine", "PCA.hydromorphone", "PCA.fentanyl"]
    fentanyl = library.entry("PCA.fentanyl")
    assert fentanyl.pca is not None
    assert fentanyl.pca.demand_dose.unit == DoseUnit.parse("mcg")
    assert fentanyl.dose.unit == DoseUnit.parse("mcg")
    assert (fentanyl.pca.demand_dose.limits.soft_max, fentanyl.pca.demand_dose.limits.hard_max) == (
        Decimal(20),
        Decimal(50),
    )
    assert fentanyl.pca.demand_dose.limits.soft_min is None


def test_shared_csv_blank_limits_stay_absent(example_csv: Path) -> None:
    library = csv_format.read(example_csv, hospital_id="h1")
    potassium = library.entry("ADULT_MEDSURG.potassium-chloride").dose.limits
    assert potassium.hard_max == Decimal(10)
    assert (potassium.hard_min, potassium.soft_min, potassium.soft_max) == (None, None, None)


def test_shared_csv_keeps_estimate_flag_and_source(example_csv: Path) -> None:
    library = csv_format.read(example_csv, hospital_id="h1")
    row_of = {r["entry_id"]: r for r in csv_format.rows(library)}
    assert row_of["ADULT_ICU.norepinephrine"]["limits_are_estimate"] == "true"
    assert row_of["ADULT_ICU.dopamine"]["limits_are_estimate"] == "false"
    assert row_of["ADULT_ICU.dopamine"]["source"].startswith("conc and unit S4S-A v1.01")


def test_export_then_import_round_trips(example_csv: Path) -> None:
    library = csv_format.read(example_csv, hospital_id="h1")
    again = csv_format.loads(
        csv_format.dumps(library), hospital_id="h1", imported_from="example-drug-library.csv"
    )
    assert again == library


def test_demo_library_round_trips_through_csv_with_its_settings(example_csv: Path) -> None:
    settings = csv_format.read_settings(SETTINGS)
    library = csv_format.read(example_csv, settings=settings)
    again = csv_format.loads(csv_format.dumps(library), settings=settings, imported_from=example_csv.name)
    assert again == library


def test_settings_add_care_areas_tall_man_names_and_pca_limits(example_csv: Path) -> None:
    library = csv_format.read(example_csv, settings=csv_format.read_settings(SETTINGS))
    assert library.drug("dopamine").display_name == "DOPamine"
    assert library.care_area("NICU").max_rate_ml_per_h == Decimal(25)
    morphine = library.entry("PCA.morphine").pca
    assert morphine is not None and morphine.max_dose is not None
    assert morphine.max_dose.limits.hard_max == Decimal(15)
    assert morphine.lockout_min.limits.hard_min == Decimal(5)
    assert morphine.demand_dose.limits.hard_max == Decimal(5)
    assert library.provenance.is_example and library.hospital_id == "demo-hospital"


def test_every_rejected_row_is_reported_with_its_number() -> None:
    text = HEADER + "\n" + row() + row(soft_min="5", soft_max="2") + row(dosing_unit="mcg/fortnight") + row()
    found = problems(text)
    assert any(p.startswith("row 3: limits: soft_min 5 is above soft_max 2") for p in found)
    assert any(p.startswith("row 4: dosing_unit:") for p in found)
    assert "row 5: duplicate entry_id 'ICU.dopamine'" not in found


@pytest.mark.parametrize(
    ("cells", "fragment"),
    [
        ({"care_area": ""}, "care_area is blank"),
        ({"soft_max": "lots"}, "soft_max:"),
        ({"bolus_allowed": "maybe"}, "bolus_allowed: must be Y or N"),
        ({"limits_are_estimate": "perhaps"}, "limits_are_estimate"),
        ({"volume_ml": ""}, "go together"),
        ({"dosing_unit": "mg/h/dose"}, "cannot have a time base"),
        ({"source": "[EST] sneaky"}, "marks estimated limits"),
        ({"hard_max": "-3"}, "must not be negative"),
        ({"drug": "!!!"}, "no usable id"),
    ],
)
def test_bad_cells_are_rejected_with_reason(cells: dict[str, str], fragment: str) -> None:
    found = problems(HEADER + "\n" + row(**cells))
    assert found and all(p.startswith("row 2: ") for p in found)
    assert any(fragment in p for p in found)


def test_extra_columns_are_validated() -> None:
    header = HEADER + ",mode,route,kind"
    text = header + "\n" + row().rstrip("\r\n") + ",pca,nasal,medication\n"
    found = problems(text)
    assert any("mode 'pca' does not fit" in p for p in found)
    assert any(p.startswith("row 2: route:") for p in found)


def test_missing_and_unknown_columns_are_listed() -> None:
    found = problems("care_area,drug,colour\nICU,dopamine,red\n")
    assert "header: missing column 'dosing_unit'" in found
    assert any(p.startswith("header: unknown column 'colour'") for p in found)


def test_row_with_too_many_cells_is_rejected() -> None:
    assert problems(HEADER + "\n" + row().rstrip("\r\n") + ",extra\n") == ("row 2: more cells than columns",)


def test_conflicting_drug_rows_are_rejected() -> None:
    text = HEADER + "\n" + row() + row(care_area="NICU", high_alert="N")
    assert any(p.startswith("row 3: drug 'dopamine' differs") for p in problems(text))


def test_duplicate_explicit_entry_ids_are_rejected() -> None:
    header = HEADER + ",entry_id"
    text = header + "\n" + row().rstrip("\r\n") + ",x\n" + row(care_area="NICU").rstrip("\r\n") + ",x\n"
    assert "row 3: duplicate entry_id 'x'" in problems(text)


def test_same_drug_twice_in_a_care_area_gets_distinct_ids() -> None:
    library = import_text(HEADER + "\n" + row() + row(dosing_unit="mcg/min"))
    assert [e.id for e in library.entries] == ["ICU.dopamine", "ICU.dopamine-2"]


def test_missing_hospital_id_is_refused() -> None:
    found = problems(HEADER + "\n" + row(), hospital_id=None)
    assert any("hospital id is needed" in p for p in found)


def test_formula_like_cells_are_escaped_on_export_and_restored_on_import() -> None:
    library = import_text(HEADER + "\n" + row(source='=HYPERLINK("http://x")', drug="+dopamine"))
    text = csv_format.dumps(library)
    assert "'=HYPERLINK" in text and "'+dopamine" in text
    assert csv_format.loads(text, hospital_id="h1", imported_from=None) == library


@given(st.text(max_size=8))
def test_escape_is_reversible(text: str) -> None:
    escaped = csv_format.escape_cell(text)
    assert csv_format.unescape_cell(escaped) == text
    assert escaped[:1] not in {"=", "+", "-", "@", "\t", "\r"}


def test_more_concentrations_and_extra_columns_round_trip() -> None:
    header = HEADER + ",therapy,more_concentrations,default_dose,display_name,care_area_name,advisory"
    text = (
        header
        + "\n"
        + row(bolus_allowed="Y").rstrip("\r\n")
        + ",renal,800 mg/250 mL,2,DOPamine,Intensive care,check\n"
    )
    library = import_text(text)
    entry = library.entries[0]
    assert len(entry.concentrations) == 2 and entry.therapy == "renal" and entry.id == "ICU.dopamine.renal"
    assert entry.bolus is not None and entry.bolus.unit == DoseUnit.parse("mcg/kg")
    assert csv_format.loads(csv_format.dumps(library), hospital_id="h1") == library


def test_more_concentrations_need_a_first_one() -> None:
    header = HEADER + ",more_concentrations"
    text = header + "\n" + row(concentration_amount="", concentration_unit="", volume_ml="").rstrip("\r\n")
    assert any("needs the first concentration" in p for p in problems(text + ",800 mg/250 mL\n"))


def test_settings_naming_unknown_drug_or_non_pca_entry_are_rejected(tmp_path: Path) -> None:
    settings = {
        "format": "smartpump.library-settings/1",
        "drugs": [{"id": "nope", "display_name": "NOPE"}],
        "pca": [{"entry_id": "ICU.dopamine", "max_dose_window_h": 4}],
    }
    loaded = csv_format.load_settings(json.dumps(settings))
    found = problems(HEADER + "\n" + row(), settings=loaded)
    assert "settings drugs: 'nope' is not a drug of the CSV" in found
    assert "settings pca[0]: 'ICU.dopamine' is not a PCA entry of the CSV" in found


def test_settings_conflicting_with_csv_are_rejected() -> None:
    settings = {
        "format": "smartpump.library-settings/1",
        "care_areas": [{"id": "ICU", "name": "Intensive care"}],
        "drugs": [{"id": "dopamine", "display_name": "DOPamine"}],
        "pca": [{"entry_id": "ICU.morphine", "loading_dose": {"unit": "mg"}}],
    }
    header = HEADER + ",display_name,care_area_name"
    text = (
        header
        + "\n"
        + row().rstrip("\r\n")
        + ",Dopamine,ICU\n"
        + row(drug="morphine", dosing_unit="mg/dose", soft_min="", soft_max="", hard_max="").rstrip("\r\n")
        + ",,\n"
    )
    found = problems(text, settings=csv_format.load_settings(json.dumps(settings)))
    assert any("display_name 'Dopamine' differs from settings 'DOPamine'" in p for p in found)
    assert any("care_area_name 'ICU' differs from settings" in p for p in found)
    assert any("loading dose is set but the CSV row does not allow a bolus" in p for p in found)


def test_settings_pca_limits_out_of_order_are_located() -> None:
    settings = {
        "format": "smartpump.library-settings/1",
        "pca": [
            {"entry_id": "ICU.morphine", "basal": {"unit": "mg/h", "limits": {"soft_max": 3, "hard_max": 2}}}
        ],
    }
    text = HEADER + "\n" + row(drug="morphine", dosing_unit="mg/dose", soft_min="", soft_max="", hard_max="")
    found = problems(text, settings=csv_format.load_settings(json.dumps(settings)))
    assert found[0].startswith("settings pca[0].basal.limits: soft_max 3 is above hard_max 2")


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"format": "smartpump.library-settings/1", "colour": 1}, "colour"),
        ({"format": "other"}, "format:"),
        (
            {
                "format": "smartpump.library-settings/1",
                "care_areas": [
                    {"id": "X", "name": "X", "weight_kg": {"limits": {"soft_min": 9, "soft_max": 1}}}
                ],
            },
            "care_areas[0].weight_kg.limits",
        ),
    ],
)
def test_bad_settings_files_are_refused(settings: dict[str, object], fragment: str) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        csv_format.load_settings(json.dumps(settings))
    assert any(fragment in p for p in caught.value.problems)


def test_not_held_lists_what_a_csv_export_loses(example_csv: Path) -> None:
    plain = csv_format.read(example_csv, hospital_id="h1")
    demo = csv_format.read(example_csv, settings=csv_format.read_settings(SETTINGS))
    assert csv_format.not_held(plain) == ()
    lost = csv_format.not_held(demo)
    assert "entry PCA.morphine: pca" in lost
    assert "care areas: patient limits and device/PCA settings" in lost


def test_not_held_names_drug_and_library_extras() -> None:
    from dataclasses import replace

    library = import_text(HEADER + "\n" + row())
    richer = replace(
        library, drugs=(replace(library.drugs[0], drug_class="inotrope"),), syringes=("BD 50 mL",)
    )
    assert csv_format.not_held(richer) == (
        "drugs: drug_class, aliases, ehr_codes",
        "library: ehr_mappings, syringes",
    )


def test_write_and_read_file(tmp_path: Path) -> None:
    library = import_text(HEADER + "\n" + row())
    path = tmp_path / "lib.csv"
    csv_format.write(library, path)
    assert csv_format.read(path, hospital_id="h1") == json_format.loads(
        json_format.dumps(
            csv_format.loads(path.read_text(encoding="utf-8"), hospital_id="h1", imported_from="lib.csv")
        )
    )


def test_unreadable_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        csv_format.read(tmp_path / "missing.csv", hospital_id="h1")
    assert caught.value.code == "library.unreadable"


def test_slug_makes_stable_ids() -> None:
    assert csv_format.slug("Insulin  Regular (U-100)") == "insulin-regular-u-100"


@pytest.mark.parametrize(
    ("unit", "mode"),
    [("mg/kg", DeliveryMode.INTERMITTENT), ("mL/h", DeliveryMode.RATE), ("mg/h", DeliveryMode.CONTINUOUS)],
)
def test_mode_defaults_from_the_dosing_unit(unit: str, mode: DeliveryMode) -> None:
    assert import_text(HEADER + "\n" + row(dosing_unit=unit)).entries[0].mode is mode


def test_display_name_and_care_area_name_agree_across_rows() -> None:
    header = HEADER + ",display_name,care_area_name"
    first = row().rstrip("\r\n") + ",,\n"
    second = row(soft_min="2").rstrip("\r\n") + ",DOPamine,Intensive care\n"
    third = row(soft_min="3").rstrip("\r\n") + ",Dopamine,ICU 2\n"
    library = import_text(header + "\n" + first + second)
    assert library.drug("dopamine").display_name == "DOPamine"
    assert library.care_area("ICU").name == "Intensive care"
    found = problems(header + "\n" + first + second + third)
    assert "row 4: display_name differs from row 3" in found
    assert "row 4: care_area_name differs from row 3" in found


def test_settings_pca_without_loading_keeps_the_csv_bolus_permission() -> None:
    settings = {
        "format": "smartpump.library-settings/1",
        "pca": [{"entry_id": "ICU.morphine", "max_dose_window_h": 4}],
    }
    text = HEADER + "\n" + row(drug="morphine", dosing_unit="mg/dose", bolus_allowed="Y")
    pca = import_text(text, settings=csv_format.load_settings(json.dumps(settings))).entries[0].pca
    assert pca is not None and pca.max_dose_window_h == 4
    assert pca.loading_dose is not None and pca.loading_dose.unit == DoseUnit.parse("mg")


def test_estimate_flag_without_source_round_trips() -> None:
    library = import_text(HEADER + "\n" + row(source="", limits_are_estimate="true"))
    assert library.entries[0].provenance == "[EST]"
    exported = csv_format.rows(library)[0]
    assert (exported["source"], exported["limits_are_estimate"]) == ("", "true")
