"""Canonical JSON document of a DrugLibrary: exact numbers, schema validation, located errors, round trip."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.errors import LibraryFormatError
from smartpump.library.formats import json_format
from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    BasicInfusionPolicy,
    Bounds,
    CareArea,
    CustomConcentration,
    DeliveryMode,
    DeviceDefaults,
    DeviceType,
    DoseLimits,
    Drug,
    DrugLibrary,
    EhrMapping,
    Entry,
    EntryKind,
    LibraryStatus,
    PCALimits,
    PCASettings,
    Provenance,
    Route,
)
from smartpump.units import AmountUnit, Basis, Concentration, DoseUnit, TimeUnit

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"

# --- strategies (shared with the XLSX tests) -------------------------------------------------

SAFE_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
NAMES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
ID_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=8)
AMOUNTS = st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False, places=4)
POSITIVE = st.decimals(
    min_value=Decimal("0.0001"), max_value=10**5, allow_nan=False, allow_infinity=False, places=4
)
OPTIONAL_TEXT = st.none() | NAMES


@st.composite
def limit_sets(draw: st.DrawFn) -> LimitSet:
    values = sorted(draw(st.lists(AMOUNTS, min_size=4, max_size=4)))
    keep = draw(st.lists(st.booleans(), min_size=4, max_size=4))
    kinds = ("hard_min", "soft_min", "soft_max", "hard_max")
    return LimitSet(**{k: v for k, v, on in zip(kinds, values, keep, strict=True) if on})


BOUNDS = st.builds(Bounds, limits=limit_sets(), default=st.none() | AMOUNTS)
DOSE_UNITS = st.builds(
    DoseUnit,
    st.sampled_from([u for u in AmountUnit if u is not AmountUnit.ML]),
    st.sampled_from(list(Basis)),
    st.none() | st.sampled_from(list(TimeUnit)),
) | st.just(DoseUnit.parse("mL/h"))
DOSE_LIMITS = st.builds(DoseLimits, unit=DOSE_UNITS, limits=limit_sets(), default=st.none() | AMOUNTS)
OPTIONAL_DOSE = st.none() | DOSE_LIMITS
CONCENTRATIONS = st.builds(
    Concentration, POSITIVE, st.sampled_from([u for u in AmountUnit if u is not AmountUnit.ML]), POSITIVE
)
PCA = st.builds(
    PCALimits,
    demand_dose=DOSE_LIMITS,
    lockout_min=BOUNDS,
    basal=OPTIONAL_DOSE,
    loading_dose=OPTIONAL_DOSE,
    clinician_bolus=OPTIONAL_DOSE,
    max_dose=OPTIONAL_DOSE,
    max_dose_window_h=st.none() | st.integers(1, 12),
)
TEXTS = st.lists(NAMES, max_size=3).map(tuple)


def entries(entry_id: str, care_area_id: str, drug_id: str) -> st.SearchStrategy[Entry]:
    return st.builds(
        Entry,
        id=st.just(entry_id),
        care_area_id=st.just(care_area_id),
        drug_id=st.just(drug_id),
        dose=DOSE_LIMITS,
        kind=st.sampled_from(list(EntryKind)),
        mode=st.sampled_from(list(DeliveryMode)),
        therapy=OPTIONAL_TEXT,
        route=st.sampled_from(list(Route)),
        concentrations=st.lists(CONCENTRATIONS, max_size=3).map(tuple),
        custom_concentration=st.none()
        | st.builds(
            CustomConcentration,
            unit=st.sampled_from(list(AmountUnit)),
            limits=limit_sets(),
            default_volume_ml=st.none() | POSITIVE,
        ),
        rate_ml_per_h=BOUNDS,
        vtbi_ml=BOUNDS,
        duration_min=BOUNDS,
        bolus=OPTIONAL_DOSE,
        bolus_rate=OPTIONAL_DOSE,
        loading=OPTIONAL_DOSE,
        loading_duration_min=BOUNDS,
        pca=st.none() | PCA,
        devices=st.lists(st.sampled_from(list(DeviceType)), max_size=3).map(tuple),
        allows_secondary=st.booleans(),
        advisory=OPTIONAL_TEXT,
        ehr_codes=TEXTS,
        last_reviewed=OPTIONAL_TEXT,
        provenance=OPTIONAL_TEXT,
    )


CARE_AREA_FIELDS: dict[str, Any] = {
    "weight_kg": BOUNDS,
    "bsa_m2": BOUNDS,
    "max_rate_ml_per_h": st.none() | AMOUNTS,
    "bsa_resolution_m2": st.none() | POSITIVE,
    "basic_infusion": st.builds(
        BasicInfusionPolicy, allowed=st.booleans(), rate_ml_per_h=BOUNDS, advisory=OPTIONAL_TEXT
    ),
    "device": st.builds(
        DeviceDefaults,
        occlusion_pressure_mmhg=st.none() | AMOUNTS,
        max_occlusion_pressure_mmhg=st.none() | AMOUNTS,
        air_in_line_ul=st.none() | AMOUNTS,
        accumulated_air_in_line=st.booleans(),
        kvo_rate_ml_per_h=st.none() | AMOUNTS,
        auto_restart_attempts=st.none() | st.integers(0, 10),
        secondary_allowed=st.booleans(),
        max_rate_ml_per_h=st.none() | AMOUNTS,
        max_vtbi_ml=st.none() | AMOUNTS,
        tubing_change_h=st.none() | st.integers(0, 96),
    ),
    "pca": st.builds(
        PCASettings,
        bolus_delivery_rate_ml_per_h=st.none() | AMOUNTS,
        max_dose_window_h=st.none() | st.integers(1, 12),
        pause_enabled=st.booleans(),
        pause_spo2_min_percent=st.none() | AMOUNTS,
        pause_etco2_max_mmhg=st.none() | AMOUNTS,
        pause_resp_rate_min_bpm=st.none() | AMOUNTS,
        pause_message=OPTIONAL_TEXT,
    ),
    "channel_labels": TEXTS,
    "advisory": OPTIONAL_TEXT,
}


@st.composite
def libraries(draw: st.DrawFn) -> DrugLibrary:
    """Any valid DrugLibrary: every model field drawn, references consistent."""
    drug_ids = draw(st.lists(ID_TEXT, min_size=1, max_size=3, unique=True))
    area_ids = draw(st.lists(ID_TEXT, min_size=1, max_size=3, unique=True))
    drugs = tuple(
        Drug(
            id=drug_id,
            generic_name=draw(NAMES),
            display_name=draw(st.just("") | NAMES),
            aliases=draw(TEXTS),
            ehr_codes=draw(TEXTS),
            drug_class=draw(OPTIONAL_TEXT),
            is_high_alert=draw(st.booleans()),
        )
        for drug_id in drug_ids
    )
    areas = tuple(
        CareArea(id=area_id, name=draw(NAMES), **{k: draw(v) for k, v in CARE_AREA_FIELDS.items()})
        for area_id in area_ids
    )
    count = draw(st.integers(0, 4))
    entry_list = tuple(
        draw(entries(f"e{i}", draw(st.sampled_from(area_ids)), draw(st.sampled_from(drug_ids))))
        for i in range(count)
    )
    return DrugLibrary(
        name=draw(NAMES),
        version=draw(st.integers(1, 10**6)),
        hospital_id=draw(NAMES),
        drugs=drugs,
        care_areas=areas,
        entries=entry_list,
        status=draw(st.sampled_from(list(LibraryStatus))),
        provenance=Provenance(
            source=draw(SAFE_TEXT),
            imported_from=draw(OPTIONAL_TEXT),
            note=draw(OPTIONAL_TEXT),
            is_example=draw(st.booleans()),
        ),
        ehr_mappings=tuple(
            draw(
                st.lists(
                    st.builds(
                        EhrMapping,
                        order_code=NAMES,
                        alias=NAMES,
                        additive_code=OPTIONAL_TEXT,
                        diluent_code=OPTIONAL_TEXT,
                        comment=OPTIONAL_TEXT,
                        method=OPTIONAL_TEXT,
                    ),
                    max_size=2,
                )
            )
        ),
        syringes=draw(TEXTS),
    )


# --- helpers ---------------------------------------------------------------------------------


def small_library(**entry_changes: Any) -> DrugLibrary:
    fields: dict[str, Any] = {
        "concentrations": (Concentration(Decimal(400), AmountUnit.MG, Decimal(250)),),
        **entry_changes,
    }
    entry = Entry(
        id="icu.dopamine",
        care_area_id="ICU",
        drug_id="dopamine",
        dose=DoseLimits(
            unit=DoseUnit.parse("mcg/kg/min"),
            limits=LimitSet(soft_min=Decimal("0.01"), soft_max=Decimal(20), hard_max=Decimal(30)),
        ),
        **fields,
    )
    return DrugLibrary(
        name="test",
        version=3,
        hospital_id="h1",
        drugs=(Drug(id="dopamine", generic_name="dopamine", display_name="DOPamine", is_high_alert=True),),
        care_areas=(CareArea(id="ICU", name="Intensive care"),),
        entries=(entry,),
    )


def document(library: DrugLibrary) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json_format.dumps(library), parse_float=Decimal)
    return loaded


def problems_of(doc: Any) -> tuple[str, ...]:
    with pytest.raises(LibraryFormatError) as caught:
        json_format.from_document(doc)
    return caught.value.problems


# --- tests -----------------------------------------------------------------------------------


@given(libraries())
def test_round_trip_gives_back_the_same_library(library: DrugLibrary) -> None:
    assert json_format.loads(json_format.dumps(library)) == library


@given(libraries())
def test_canonical_bytes_round_trip_and_are_stable(library: DrugLibrary) -> None:
    data = json_format.canonical_bytes(library)
    again = json_format.loads(data.decode("utf-8"))
    assert again == library
    assert json_format.canonical_bytes(again) == data


@given(libraries())
def test_every_generated_document_validates_against_the_published_schema(library: DrugLibrary) -> None:
    jsonschema.Draft202012Validator(json_format.SCHEMA).validate(document(library))


def test_schema_is_draft_2020_12_and_itself_valid() -> None:
    assert json_format.SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(json_format.SCHEMA)


def test_decimals_are_written_exactly() -> None:
    text = json_format.dumps(small_library())
    assert '"soft_min": 0.01' in text
    assert "0.0100000" not in text


def test_numbers_are_read_back_as_decimals() -> None:
    library = json_format.loads(json_format.dumps(small_library()))
    soft_min = library.entries[0].dose.limits.soft_min
    assert isinstance(soft_min, Decimal) and soft_min == Decimal("0.01")
    assert isinstance(library.entries[0].concentrations[0].amount, Decimal)


def test_equal_values_give_equal_canonical_bytes() -> None:
    one = small_library()
    other = small_library(
        concentrations=(Concentration(Decimal("400.00"), AmountUnit.MG, Decimal("2.5E+2")),)
    )
    assert json_format.canonical_bytes(one) == json_format.canonical_bytes(other)


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    data = json_format.canonical_bytes(small_library())
    doc = json.loads(data)
    assert data == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert b"\n" not in data and b": " not in data


def test_document_shape_of_limits_units_and_concentrations() -> None:
    entry = document(small_library())["entries"][0]
    assert entry["dose"] == {
        "unit": "mcg/kg/min",
        "limits": {"soft_min": Decimal("0.01"), "soft_max": 20, "hard_max": 30},
    }
    assert entry["concentrations"] == [{"amount": 400, "unit": "mg", "volume_ml": 250}]


def test_absent_bound_is_omitted_not_zero() -> None:
    limits = document(small_library())["entries"][0]["dose"]["limits"]
    assert "hard_min" not in limits


def test_top_level_declares_format_and_schema_version() -> None:
    doc = document(small_library())
    assert doc["format"] == "smartpump.library/1"
    assert doc["schema_version"] == 1


def test_non_ascii_text_is_kept_as_utf8() -> None:
    library = small_library(advisory="µg – check")
    assert "µg – check".encode() in json_format.canonical_bytes(library)


def test_schema_errors_are_all_listed_with_their_path() -> None:
    doc = document(small_library())
    doc["entries"][0]["dose"]["unit"] = "mcg/kg/fortnight"
    doc["entries"][0]["dose"]["limits"]["soft_max"] = -1
    doc["drugs"][0]["colour"] = "red"
    problems = problems_of(doc)
    assert any(p.startswith("entries[0].dose.unit:") for p in problems)
    assert any(p.startswith("entries[0].dose.limits.soft_max:") for p in problems)
    assert any(p.startswith("drugs[0]:") and "colour" in p for p in problems)
    assert len(problems) == 3


def test_limit_order_error_is_wrapped_with_location() -> None:
    doc = document(small_library())
    doc["entries"][0]["dose"]["limits"] = {"soft_min": 5, "soft_max": 2}
    problems = problems_of(doc)
    assert problems[0].startswith("entries[0].dose.limits: soft_min 5 is above soft_max 2")


def test_unit_error_is_wrapped_with_location() -> None:
    doc = document(small_library())
    doc["entries"][0]["dose"]["unit"] = "mL/m2/h"
    assert problems_of(doc)[0].startswith("entries[0].dose.unit:")


def test_unknown_references_and_duplicate_ids_are_all_listed() -> None:
    doc = document(small_library())
    doc["entries"].append({**doc["entries"][0]})
    doc["entries"][1]["drug_id"] = "nope"
    doc["entries"][1]["care_area_id"] = "NOWHERE"
    problems = problems_of(doc)
    assert "entries[1].id: duplicate id 'icu.dopamine'" in problems
    assert "entries[1].drug_id: unknown drug 'nope'" in problems
    assert "entries[1].care_area_id: unknown care area 'NOWHERE'" in problems


def test_pca_window_outside_range_is_refused_by_schema() -> None:
    pca = PCALimits(demand_dose=DoseLimits(unit=DoseUnit.parse("mg")), max_dose_window_h=4)
    doc = document(small_library(pca=pca, mode=DeliveryMode.PCA))
    doc["entries"][0]["pca"]["max_dose_window_h"] = 13
    assert problems_of(doc)[0].startswith("entries[0].pca.max_dose_window_h:")


def test_float_numbers_in_a_document_are_refused() -> None:
    doc = document(small_library())
    doc["entries"][0]["dose"]["limits"]["soft_max"] = 20.5
    assert problems_of(doc)[0].startswith("entries[0].dose.limits.soft_max:")


def test_wrong_format_tag_is_refused() -> None:
    doc = document(small_library())
    doc["format"] = "other/9"
    assert problems_of(doc)[0].startswith("format:")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "line 1"),
        ('{"a": NaN}', "NaN"),
        ('{"a": 1, "a": 2}', "duplicate key"),
    ],
)
def test_malformed_json_is_refused_with_reason(text: str, fragment: str) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        json_format.loads(text)
    assert fragment in caught.value.message


def test_root_that_is_not_an_object_is_refused() -> None:
    assert problems_of([1, 2])[0].startswith("$:")


def test_library_version_below_one_is_refused() -> None:
    doc = document(small_library())
    doc["version"] = 0
    assert any(p.startswith("version:") for p in problems_of(doc))


def test_write_then_read_file(tmp_path: Path) -> None:
    path = tmp_path / "lib.json"
    json_format.write(small_library(), path)
    assert json_format.read(path) == small_library()
    assert path.read_text(encoding="utf-8").endswith("}\n")


def test_read_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(LibraryFormatError) as caught:
        json_format.read(tmp_path / "missing.json")
    assert caught.value.code == "library.unreadable"


def test_json_path_renders_indices_and_root() -> None:
    assert json_format.json_path(["entries", 12, "dose", "limits"]) == "entries[12].dose.limits"
    assert json_format.json_path([]) == "$"


def test_encode_json_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        json_format.encode_json({"x": object()})


def test_demo_library_is_valid_and_labelled_example() -> None:
    library = json_format.read(DEMO)
    assert library.provenance.is_example
    assert library.provenance.note == "EXAMPLE DATA - NOT FOR CLINICAL USE"
    assert (library.version, library.hospital_id) == (1, "demo-hospital")
    assert json_format.dumps(library) == DEMO.read_text(encoding="utf-8")
