"""find_entry: names (generic, Tall Man, alias, sort dots, case), filters, ambiguity and no match."""

from __future__ import annotations

import pytest

from smartpump.ders.select import describe, find_entry
from smartpump.errors import LookupFailedError
from smartpump.units import Concentration, DoseUnit
from tests.unit.ders import ICU, LIBRARY


def lookup_error(drug: str, **filters: object) -> LookupFailedError:
    with pytest.raises(LookupFailedError) as caught:
        find_entry(LIBRARY, ICU, drug, **filters)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    ("name", "entry_id"),
    [
        ("vancomycin", "icu-vancomycin"),
        ("VANCOMYCIN", "icu-vancomycin"),
        ("amiodarone", "icu-amiodarone"),
        ("5-FU", "icu-fluorouracil"),
        ("5-fu", "icu-fluorouracil"),
        ("..IVF Maintenance", "icu-ivf"),
        ("IVF Maintenance", "icu-ivf"),
        ("ivf   maintenance", "icu-ivf"),
        ("milrinone", "icu-milrinone"),
        ("morphine", "icu-morphine-pca"),
    ],
)
def test_finds_the_single_entry_by_any_name(name: str, entry_id: str) -> None:
    assert find_entry(LIBRARY, ICU, name).id == entry_id


def test_finds_by_tall_man_display_name_and_therapy() -> None:
    assert find_entry(LIBRARY, ICU, "DOPamine", therapy="cardiac").id == "icu-dopamine"


def test_finds_by_alias_and_concentration() -> None:
    found = find_entry(LIBRARY, ICU, "levophed", concentration=Concentration.parse("4 mg/250 mL"))
    assert found.id == "icu-norepinephrine"


def test_care_area_may_be_named_by_its_name() -> None:
    assert find_entry(LIBRARY, "adult icu", "vancomycin").id == "icu-vancomycin"


@pytest.mark.parametrize(
    ("therapy", "entry_id"), [("cardiac", "icu-dopamine"), ("RENAL", "icu-dopamine-renal")]
)
def test_therapy_filter_selects_the_entry(therapy: str, entry_id: str) -> None:
    assert find_entry(LIBRARY, ICU, "dopamine", therapy=therapy).id == entry_id


def test_unknown_therapy_is_no_entry() -> None:
    error = lookup_error("dopamine", therapy="sepsis")
    assert error.code == "library.no_entry"
    assert error.candidates == ()


@pytest.mark.parametrize(
    ("text", "entry_id"),
    [
        ("4 mg/250 mL", "icu-norepinephrine"),
        ("4000 mcg/250 mL", "icu-norepinephrine"),
        ("8 mg/250 mL", "icu-norepinephrine-double"),
        ("16 mg/250 mL", "icu-norepinephrine"),
    ],
)
def test_concentration_filter_prefers_listed_over_custom(text: str, entry_id: str) -> None:
    assert find_entry(LIBRARY, ICU, "norepinephrine", concentration=Concentration.parse(text)).id == entry_id


def test_concentration_of_another_dimension_matches_nothing() -> None:
    error = lookup_error("norepinephrine", concentration=Concentration.parse("4 units/250 mL"))
    assert error.code == "library.no_entry"
    assert "4 mg/250 mL" not in error.message
    assert "0.016 units/mL" in error.message


@pytest.mark.parametrize(
    ("unit", "entry_id"),
    [
        ("units/kg/h", "icu-heparin"),
        ("units/h", "icu-heparin-fixed"),
        ("milliunits/kg/h", "icu-heparin"),
        ("units/kg/min", "icu-heparin"),
        ("milliunits/min", "icu-heparin-fixed"),
    ],
)
def test_dose_unit_filter_prefers_exact_then_convertible(unit: str, entry_id: str) -> None:
    assert find_entry(LIBRARY, ICU, "heparin", dose_unit=DoseUnit.parse(unit)).id == entry_id


def test_dose_unit_that_converts_to_no_entry_is_no_entry() -> None:
    error = lookup_error("heparin", dose_unit=DoseUnit.parse("units/m2/h"))
    assert error.code == "library.no_entry"
    assert "unit units/m2/h" in error.message


def test_ambiguous_request_lists_every_candidate() -> None:
    error = lookup_error("heparin")
    assert error.code == "library.ambiguous_entry"
    assert error.candidates == (
        "HEPARIN | ACS | 25000 units/250 mL | units/kg/h (icu-heparin)",
        "HEPARIN | DVT | 25000 units/250 mL | units/h (icu-heparin-fixed)",
    )
    assert "2 entries" in error.message


def test_candidate_description_names_custom_concentrations() -> None:
    text = describe(LIBRARY, LIBRARY.entry("icu-norepinephrine"))
    assert text == "NORepinephrine | - | 4 mg/250 mL, custom mg/mL | mcg/min (icu-norepinephrine)"


def test_candidate_description_without_concentrations_uses_dashes() -> None:
    assert describe(LIBRARY, LIBRARY.entry("icu-ivf")) == "..IVF Maintenance | - | - | mL/h (icu-ivf)"


def test_ambiguous_on_the_same_concentration_across_entries() -> None:
    error = lookup_error("dopamine", concentration=Concentration.parse("400 mg/250 mL"))
    assert error.code == "library.ambiguous_entry"
    assert [c.rsplit("(", 1)[1] for c in error.candidates] == ["icu-dopamine)", "icu-dopamine-renal)"]
    assert "concentration 1.6 mg/mL" in error.message


def test_unknown_drug_is_no_entry_with_the_area_drugs_as_candidates() -> None:
    error = lookup_error("propofol")
    assert error.code == "library.no_entry"
    assert "propofol" in error.message
    assert "DOPamine" in error.candidates
    assert "vancomycin" in error.candidates


def test_drug_of_another_care_area_is_not_found() -> None:
    # Dopamine exists in 'peds' too, but only ICU entries are candidates in the ICU.
    found = find_entry(LIBRARY, "peds", "dopamine")
    assert found.id == "peds-dopamine"


def test_unknown_care_area_is_refused() -> None:
    with pytest.raises(LookupFailedError) as caught:
        find_entry(LIBRARY, "burns", "dopamine")
    assert caught.value.code == "library.no_care_area"
