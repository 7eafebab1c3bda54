"""The high-alert table: what it lists, how drug names match it, and how imports apply it (synthetic
drugs; the table is the packaged one)."""

from __future__ import annotations

import pytest

from smartpump.errors import LibraryFormatError
from smartpump.library.formats.high_alert_table import TABLE_FORMAT, high_alert_table, parse_table
from smartpump.library.high_alert import FLAGGED, KEPT_UNFLAGGED, apply_high_alert, tokens
from smartpump.library.model import EntryKind, Route
from tests.factories import make_drug, make_entry, make_library

TABLE = high_alert_table()


def _listings(name: str, **drug: object) -> set[str]:
    return {m.listing.id for m in TABLE.match(make_drug(id="d", generic_name=name, display_name="", **drug))}


def test_table_states_its_source_and_edition() -> None:
    assert TABLE.source.title == "ISMP List of High-Alert Medications in Acute Care Settings"
    assert TABLE.source.edition
    assert "ISMP" in str(TABLE.source)
    assert {listing.source for listing in TABLE.listings} == {"ISMP", "institutional"}


def test_tokens_split_letters_from_numbers_and_keep_percentages() -> None:
    assert tokens("0.45%NS+KCL10 mEq/L") == ("0.45%", "ns", "kcl", "10", "meq", "l")
    assert tokens("norEPINEPHrine") == ("norepinephrine",)


@pytest.mark.parametrize(
    ("name", "listing"),
    [
        ("HEPARIN SODIUM", "anticoagulants"),
        ("Levophed", "adrenergic_agonists_iv"),
        ("zz norepinephrine", "adrenergic_agonists_iv"),
        ("SUFENTA", "opioids"),
        ("PITOCIN", "oxytocin_iv"),
        ("mag OB maintenance", "magnesium_sulfate"),
        ("POTASSIUM central", "potassium_chloride_concentrate"),
        ("Potas Phos <=13.6", "potassium_phosphates"),
        ("3% Sodium Chloride", "sodium_chloride_hypertonic"),
        ("dextrose 50%", "dextrose_hypertonic"),
        ("DAUNOrubicin liposo", "liposomal_forms"),
        ("vecuronium", "neuromuscular_blockers"),
    ],
)
def test_drug_names_match_their_listing(name: str, listing: str) -> None:
    assert listing in _listings(name)


@pytest.mark.parametrize(
    "name",
    [
        "D5W+KCL 20 mEq/L",  # premixed potassium in a litre: not the concentrate
        "IV FLUIDS W/ KCL",
        "0.9% Normal Saline",  # not hypertonic
        "Dextrose 10%",  # below 20%
        "digoxin immune fab",  # the antidote, not digoxin
        "naloxone",
        "ceFAZolin",
    ],
)
def test_names_that_are_not_high_alert_do_not_match(name: str) -> None:
    assert _listings(name) == set()


def test_norepinephrine_is_not_taken_for_epinephrine() -> None:
    (match,) = TABLE.match(make_drug(id="d", generic_name="NORepinephrine", display_name=""))
    assert match.matched == "norepinephrine"


def test_potassium_acetate_is_an_institutional_addition_not_an_ismp_listing() -> None:
    (match,) = TABLE.match(make_drug(id="d", generic_name="potassium acetate", display_name=""))
    assert match.listing.source == "institutional"
    assert "potassium_chloride_concentrate" not in _listings("potassium acetate")


def test_class_route_and_kind_match_without_a_listed_name() -> None:
    assert "opioids" in _listings("drug X", drug_class="Opioid")
    drug = make_drug(id="d", generic_name="bupivacaine", display_name="")
    epidural = make_entry(drug_id="d", route=Route.EPIDURAL)
    assert {m.listing.id for m in TABLE.match(drug, [epidural])} == {"epidural_intrathecal"}
    nutrition = make_entry(drug_id="d", kind=EntryKind.PARENTERAL_NUTRITION)
    assert {m.listing.id for m in TABLE.match(drug, [nutrition])} == {"parenteral_nutrition"}


def _library_with(*names: str, high_alert: bool = False):  # type: ignore[no-untyped-def]
    drugs = tuple(
        make_drug(id=f"d{i}", generic_name=n, display_name="", is_high_alert=high_alert)
        for i, n in enumerate(names)
    )
    entries = tuple(make_entry(id=f"e{i}", drug_id=d.id) for i, d in enumerate(drugs))
    return make_library(drugs=drugs, entries=entries)


def test_vendor_import_flags_listed_drugs_and_reports_each() -> None:
    library, flags = apply_high_alert(_library_with("heparin", "ceFAZolin"), TABLE, source_has_flags=False)
    assert [(f.drug_id, f.action) for f in flags] == [("d0", FLAGGED)]
    assert library.drug("d0").is_high_alert
    assert not library.drug("d1").is_high_alert
    assert "anticoagulants" in flags[0].reasons


def test_a_source_with_flags_keeps_them_and_reports_the_disagreement() -> None:
    source = _library_with("heparin")
    library, flags = apply_high_alert(source, TABLE, source_has_flags=True)
    assert library is source
    assert [(f.drug_id, f.action) for f in flags] == [("d0", KEPT_UNFLAGGED)]
    assert not library.drug("d0").is_high_alert


def test_drugs_already_high_alert_are_left_alone() -> None:
    source = _library_with("heparin", high_alert=True)
    assert apply_high_alert(source, TABLE, source_has_flags=False) == (source, ())


def test_a_malformed_table_is_refused_with_its_code() -> None:
    with pytest.raises(LibraryFormatError) as caught:
        parse_table({"format": "other"})
    assert caught.value.code == "library.high_alert_table"
    document = {
        "format": TABLE_FORMAT,
        "source": {"title": "t", "publisher": "p", "edition": "e", "transcribed": "x"},
        "listings": [],
        "medications": [{"name": "heparin", "listings": ["nope"]}],
    }
    with pytest.raises(LibraryFormatError, match="unknown listings"):
        parse_table(document)
