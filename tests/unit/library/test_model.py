"""The drug library model: integrity checks on construction, lookups and entry properties."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from smartpump.errors import LibraryError, LookupFailedError
from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    Bounds,
    CareArea,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    PCALimits,
    match_key,
)
from smartpump.units import Concentration, DoseUnit

D = Decimal


def drug(drug_id: str = "dopamine", **fields: object) -> Drug:
    return Drug(id=drug_id, generic_name=drug_id, **fields)  # type: ignore[arg-type]


def area(area_id: str = "icu", name: str = "Adult ICU") -> CareArea:
    return CareArea(id=area_id, name=name)


def entry(entry_id: str = "icu-dopamine", **fields: object) -> Entry:
    values: dict[str, object] = {
        "care_area_id": "icu",
        "drug_id": "dopamine",
        "dose": DoseLimits(unit=DoseUnit.parse("mcg/kg/min"), limits=LimitSet(hard_max=D(30))),
        "concentrations": (Concentration.parse("400 mg/250 mL"),),
    }
    values.update(fields)
    return Entry(id=entry_id, **values)  # type: ignore[arg-type]


def library(**fields: object) -> DrugLibrary:
    values: dict[str, object] = {
        "name": "model test library (synthetic)",
        "version": 1,
        "hospital_id": "hospital-example",
        "drugs": (drug(),),
        "care_areas": (area(), area("nicu", "Neonatal ICU")),
        "entries": (entry(),),
    }
    values.update(fields)
    return DrugLibrary(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("..IVF Maintenance", "ivf maintenance"),
        ("DOPamine", "dopamine"),
        ("  . heparin  sodium ", "heparin sodium"),
        ("ΣIGMA", "σigma"),
        ("Straße", "strasse"),
    ],
)
def test_match_key(name: str, key: str) -> None:
    assert match_key(name) == key


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"drugs": (drug(), drug())}, "library.duplicate_id"),
        ({"care_areas": (area(), area())}, "library.duplicate_id"),
        ({"entries": (entry(), entry())}, "library.duplicate_id"),
        ({"entries": (entry(drug_id="propofol"),)}, "library.reference"),
        ({"entries": (entry(care_area_id="burns"),)}, "library.reference"),
        ({"version": 0}, "library.version"),
        ({"version": -3}, "library.version"),
    ],
)
def test_library_refuses_broken_integrity(fields: dict[str, object], code: str) -> None:
    with pytest.raises(LibraryError) as caught:
        library(**fields)
    assert caught.value.code == code


def test_library_version_one_is_accepted() -> None:
    assert library(version=1).version == 1


@pytest.mark.parametrize("query", ["icu", "Adult ICU", "adult icu", "ADULT  ICU", "ICU"])
def test_care_area_by_id_or_case_insensitive_name(query: str) -> None:
    assert library().care_area(query).id == "icu"


def test_unknown_care_area_lists_candidates() -> None:
    with pytest.raises(LookupFailedError) as caught:
        library().care_area("burns")
    assert caught.value.code == "library.no_care_area"
    assert caught.value.candidates == ("icu", "nicu")


def test_care_area_name_matching_two_areas_is_refused() -> None:
    lib = library(care_areas=(area("icu", "ICU"), area("ICU-2", "icu")), entries=())
    assert lib.care_area("ICU-2").id == "ICU-2"
    with pytest.raises(LookupFailedError):
        lib.care_area("Icu")


def test_entry_and_drug_by_id() -> None:
    lib = library()
    assert lib.entry("icu-dopamine").drug_id == "dopamine"
    assert lib.drug("dopamine").generic_name == "dopamine"


@pytest.mark.parametrize(("method", "code"), [("entry", "library.no_entry"), ("drug", "library.no_drug")])
def test_unknown_entry_or_drug_is_refused(method: str, code: str) -> None:
    with pytest.raises(LookupFailedError) as caught:
        getattr(library(), method)("nope")
    assert caught.value.code == code


def test_entries_in_keeps_library_order_and_area() -> None:
    entries = (entry("b"), entry("x", care_area_id="nicu"), entry("a"))
    lib = library(entries=entries)
    assert [e.id for e in lib.entries_in("icu")] == ["b", "a"]
    assert [e.id for e in lib.entries_in("nicu")] == ["x"]
    assert list(lib.entries_in("none")) == []


def test_drug_names_and_shown_name() -> None:
    tall = drug(display_name="DOPamine", aliases=("Intropin",))
    assert tall.shown_name == "DOPamine"
    assert tall.names() == ("dopamine", "DOPamine", "Intropin")
    assert drug().shown_name == "dopamine"


@pytest.mark.parametrize(
    ("fields", "needs_weight"),
    [
        ({}, True),
        ({"dose": DoseLimits(unit=DoseUnit.parse("mg/h"))}, False),
        (
            {
                "dose": DoseLimits(unit=DoseUnit.parse("units/h")),
                "bolus": DoseLimits(unit=DoseUnit.parse("units/kg")),
            },
            True,
        ),
        (
            {
                "dose": DoseLimits(unit=DoseUnit.parse("mg/min")),
                "loading": DoseLimits(unit=DoseUnit.parse("mg/kg")),
            },
            True,
        ),
    ],
)
def test_entry_needs_weight_when_any_dose_is_per_kg(fields: dict[str, Any], needs_weight: bool) -> None:
    assert entry(**fields).needs_weight is needs_weight


def test_entry_needs_bsa_for_per_m2_doses() -> None:
    assert entry(dose=DoseLimits(unit=DoseUnit.parse("mg/m2/day"))).needs_bsa
    assert not entry().needs_bsa


@pytest.mark.parametrize(
    ("fields", "unprotected"),
    [
        ({}, False),
        ({"dose": DoseLimits(unit=DoseUnit.parse("mcg/kg/min"))}, True),
        (
            {
                "dose": DoseLimits(unit=DoseUnit.parse("mL/h")),
                "rate_ml_per_h": Bounds(limits=LimitSet(hard_max=D(500))),
            },
            False,
        ),
    ],
)
def test_entry_is_unprotected_without_dose_and_rate_limits(fields: dict[str, Any], unprotected: bool) -> None:
    assert entry(**fields).is_unprotected is unprotected


@pytest.mark.parametrize(
    ("text", "listed"),
    [
        ("400 mg/250 mL", True),
        ("0.4 g/250 mL", True),
        ("800 mg/500 mL", False),
        ("800 mg/250 mL", False),
        ("400 units/250 mL", False),
    ],
)
def test_entry_has_concentration_needs_same_strength_and_volume(text: str, listed: bool) -> None:
    assert entry().has_concentration(Concentration.parse(text)) is listed


def test_dosing_unit_is_the_dose_limits_unit() -> None:
    assert str(entry().dosing_unit) == "mcg/kg/min"


@pytest.mark.parametrize("window", [1, 4, 12, None])
def test_pca_window_within_one_to_twelve_hours_is_accepted(window: int | None) -> None:
    limits = PCALimits(demand_dose=DoseLimits(unit=DoseUnit.parse("mg")), max_dose_window_h=window)
    assert limits.max_dose_window_h == window


@pytest.mark.parametrize("window", [0, 13, -1, 24])
def test_pca_window_outside_one_to_twelve_hours_is_refused(window: int) -> None:
    with pytest.raises(LibraryError) as caught:
        PCALimits(demand_dose=DoseLimits(unit=DoseUnit.parse("mg")), max_dose_window_h=window)
    assert caught.value.code == "library.pca_window"
