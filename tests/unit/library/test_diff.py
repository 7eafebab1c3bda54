"""Library diff: matching by meaning, limit factors and flags, every section, deterministic order."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from smartpump.library.diff import Change, ChangeKind, Section, diff, format_value
from smartpump.library.model import (
    CustomConcentration,
    DeviceDefaults,
    DrugLibrary,
    EhrMapping,
    LibraryStatus,
    Provenance,
)
from smartpump.units import AmountUnit
from tests import vendor_libraries
from tests.factories import (
    bounds,
    concentration,
    dose_limits,
    limit_set,
    make_care_area,
    make_drug,
    make_entry,
    make_library,
)


def _only(changes: tuple[Change, ...], parameter: str) -> Change:
    (change,) = [c for c in changes if c.parameter == parameter]
    return change


def test_identical_libraries_have_no_changes() -> None:
    result = diff(make_library(), make_library())
    assert result.changes == ()
    assert result.summary().flagged == 0


def test_renumbered_entries_drugs_and_care_areas_show_no_change() -> None:
    old = make_library()
    new = make_library(
        drugs=(make_drug(id="D-77"),),
        care_areas=(make_care_area(id="CA-3"),),
        entries=(make_entry(id="RS-0042", drug_id="D-77", care_area_id="CA-3"),),
    )
    assert diff(old, new).changes == ()


def test_concentration_respelled_in_other_unit_matches_the_same_entry() -> None:
    old = make_library()
    respelled = (concentration("0.4 g/250 mL"), concentration("800 mg/250 mL"))
    new = make_library(entries=(make_entry(id="other-id", concentrations=respelled),))
    changes = diff(old, new).changes
    assert {c.kind for c in changes} == {ChangeKind.ADDED, ChangeKind.REMOVED}
    assert all(c.parameter.startswith("concentrations[") for c in changes)
    assert diff(old, new).summary().entries_added == 0


def test_limit_change_reports_old_new_and_factor() -> None:
    new = make_library(
        entries=(
            make_entry(
                dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_min=2, soft_max=25, hard_max=30)
            ),
        )
    )
    change = _only(diff(make_library(), new).changes, "dose.soft_max")
    assert change.kind is ChangeKind.CHANGED
    assert change.section is Section.ENTRY
    assert (change.old, change.new) == (Decimal(20), Decimal(25))
    assert change.factor == Decimal("1.25")
    assert not change.flagged
    assert change.is_limit


@pytest.mark.parametrize(
    ("hard_max", "flagged"),
    [(60, False), ("60.01", True), (15, False), ("14.99", True)],
    ids=["x2-exactly", "above-x2", "x0.5-exactly", "below-x0.5"],
)
def test_limit_factor_beyond_two_or_below_half_is_flagged(hard_max: str | int, flagged: bool) -> None:
    entry = make_entry(
        dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_min=2, soft_max=14, hard_max=hard_max)
    )
    base = make_library(
        entries=(
            make_entry(
                dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_min=2, soft_max=14, hard_max=30)
            ),
        )
    )
    change = _only(diff(base, make_library(entries=(entry,))).changes, "dose.hard_max")
    assert change.flagged is flagged


def test_removed_hard_max_is_flagged() -> None:
    new = make_library(entries=(make_entry(rate_ml_per_h=bounds()),))
    change = _only(diff(make_library(), new).changes, "rate_ml_per_h.hard_max")
    assert change.kind is ChangeKind.REMOVED
    assert (change.old, change.new, change.factor) == (Decimal(500), None, None)
    assert change.flagged


def test_added_limit_is_flagged() -> None:
    new = make_library(entries=(make_entry(vtbi_ml=bounds(hard_max=1000)),))
    change = _only(diff(make_library(), new).changes, "vtbi_ml.hard_max")
    assert change.kind is ChangeKind.ADDED
    assert change.flagged


def test_limit_raised_from_zero_is_flagged() -> None:
    old = make_library(entries=(make_entry(rate_ml_per_h=bounds(hard_min=0, hard_max=500)),))
    new = make_library(entries=(make_entry(rate_ml_per_h=bounds(hard_min=1, hard_max=500)),))
    change = _only(diff(old, new).changes, "rate_ml_per_h.hard_min")
    assert change.factor is None
    assert change.flagged


def test_default_change_has_factor_but_is_not_a_limit() -> None:
    new = make_library(
        entries=(
            make_entry(
                dose=dose_limits("mcg/kg/min", default=15, hard_min=1, soft_min=2, soft_max=20, hard_max=30)
            ),
        )
    )
    change = _only(diff(make_library(), new).changes, "dose.default")
    assert change.factor == Decimal(3)
    assert not change.is_limit
    assert not change.flagged


def test_dosing_unit_change_matches_by_id_and_is_flagged() -> None:
    new = make_library(entries=(make_entry(dose=dose_limits("mcg/min", hard_max=30)),))
    result = diff(make_library(), new)
    change = _only(result.changes, "dose.unit")
    assert (change.old, change.new) == ("mcg/kg/min", "mcg/min")
    assert change.flagged
    assert result.summary().entries_changed == 1


def test_entry_added_and_removed() -> None:
    old = make_library()
    added = make_entry(id="icu-dopamine-renal", therapy="renal")
    new = make_library(entries=(added,))
    result = diff(old, new)
    kinds = [(c.kind, c.parameter) for c in result.changes]
    assert kinds == [(ChangeKind.REMOVED, "entry"), (ChangeKind.ADDED, "entry")]
    assert result.changes[1].new == "entry:icu-dopamine-renal (Adult ICU / DOPamine / renal / mcg/kg/min)"
    assert result.changes[1].is_whole_object
    summary = result.summary()
    assert (summary.entries_added, summary.entries_removed, summary.entries_changed) == (1, 1, 0)


def test_duplicate_meaning_entries_pair_by_id_first() -> None:
    first, second = make_entry(id="a"), make_entry(id="b", rate_ml_per_h=bounds(hard_max=400))
    old = make_library(entries=(first, second))
    new = make_library(entries=(second, first))
    assert diff(old, new).changes == ()


def test_drug_changes_are_reported() -> None:
    new_drug = make_drug(display_name="DOPamine HCl", aliases=("Intropin",), is_high_alert=False)
    result = diff(make_library(), make_library(drugs=(new_drug,)))
    assert [c.parameter for c in result.changes] == ["display_name", "aliases", "is_high_alert"]
    assert all(c.section is Section.DRUG for c in result.changes)
    assert _only(result.changes, "is_high_alert").flagged
    assert _only(result.changes, "aliases").kind is ChangeKind.ADDED
    assert not _only(result.changes, "display_name").flagged
    assert result.summary().drugs_changed == 1


def test_drug_renamed_with_same_id_matches_by_id() -> None:
    new = make_library(drugs=(make_drug(generic_name="dopamine hydrochloride"),))
    change = _only(diff(make_library(), new).changes, "generic_name")
    assert (change.old, change.new) == ("dopamine", "dopamine hydrochloride")


def test_drug_added() -> None:
    new = make_library(drugs=(make_drug(), make_drug(id="heparin", generic_name="heparin", display_name="")))
    result = diff(make_library(), new)
    (change,) = result.changes
    assert (change.kind, change.section, change.new) == (
        ChangeKind.ADDED,
        Section.DRUG,
        "drug:heparin (heparin)",
    )
    assert result.summary().drugs_added == 1


def test_care_area_setting_changes_are_reported() -> None:
    area = make_care_area(
        max_rate_ml_per_h=Decimal(450),
        weight_kg=bounds(hard_min="0.5", soft_min=30, soft_max=200, hard_max=250),
        device=DeviceDefaults(kvo_rate_ml_per_h=Decimal(5)),
    )
    result = diff(make_library(), make_library(care_areas=(area,)))
    assert [c.parameter for c in result.changes] == [
        "weight_kg.hard_max",
        "max_rate_ml_per_h",
        "device.kvo_rate_ml_per_h",
    ]
    assert _only(result.changes, "max_rate_ml_per_h").is_limit
    assert _only(result.changes, "max_rate_ml_per_h").flagged  # 999 -> 450 is below x0.5
    assert not _only(result.changes, "weight_kg.hard_max").flagged
    assert result.summary().care_areas_changed == 1


def test_care_area_renamed_with_same_id_matches_by_id() -> None:
    new = make_library(care_areas=(make_care_area(name="Adult Critical Care"),))
    result = diff(make_library(), new)
    assert [c.parameter for c in result.changes] == ["name"]
    assert result.summary().entries_changed == 0


def test_care_area_removed_with_its_entries() -> None:
    old = make_library(
        care_areas=(make_care_area(), make_care_area(id="ccu", name="Cardiac CU")),
        entries=(make_entry(), make_entry(id="ccu-dopamine", care_area_id="ccu")),
    )
    summary = diff(old, make_library()).summary()
    assert (summary.care_areas_removed, summary.entries_removed) == (1, 1)


def test_library_metadata_changes_are_reported() -> None:
    new = make_library(
        version=2,
        status=LibraryStatus.APPROVED,
        provenance=Provenance(source="pharmacy", is_example=True),
        ehr_mappings=(EhrMapping(order_code="ORD-1", alias="dopamine", method="pump"),),
    )
    result = diff(make_library(), new)
    params = [c.parameter for c in result.changes]
    assert params == ["version", "status", "provenance.source", "provenance.note", "ehr_mappings[ORD-1]"]
    assert _only(result.changes, "ehr_mappings[ORD-1]").new == "dopamine, method=pump"
    assert _only(result.changes, "version").factor is None
    assert (result.old_version, result.new_version) == (1, 2)
    assert result.summary().library_changes == 5


def test_repeated_ehr_order_codes_are_kept_apart() -> None:
    mappings = (EhrMapping(order_code="ORD-1", alias="a"), EhrMapping(order_code="ORD-1", alias="b"))
    result = diff(make_library(), make_library(ehr_mappings=mappings))
    assert [c.parameter for c in result.changes] == ["ehr_mappings[ORD-1]", "ehr_mappings[ORD-1#2]"]


def test_custom_concentration_limits_are_compared() -> None:
    def custom(hard_min: str) -> CustomConcentration:
        return CustomConcentration(unit=AmountUnit.MG, limits=limit_set(hard_min=hard_min, hard_max=4))

    old = make_library(entries=(make_entry(custom_concentration=custom("0.8")),))
    new = make_library(entries=(make_entry(custom_concentration=custom("0.2")),))
    change = _only(diff(old, new).changes, "custom_concentration.hard_min")
    assert change.factor == Decimal("0.25")
    assert change.flagged


def test_changes_come_in_section_order_and_are_deterministic() -> None:
    old = make_library()
    new = make_library(
        version=3,
        drugs=(make_drug(is_high_alert=False), make_drug(id="heparin", generic_name="heparin")),
        care_areas=(make_care_area(max_rate_ml_per_h=Decimal(900)),),
        entries=(make_entry(rate_ml_per_h=bounds(hard_max=450)), make_entry(id="z", therapy="renal")),
    )
    result = diff(old, new)
    sections = [c.section for c in result.changes]
    assert sections == sorted(sections, key=list(Section).index)
    assert diff(old, new) == result


def test_entries_sort_by_care_area_then_drug() -> None:
    drugs = (make_drug(), make_drug(id="amiodarone", generic_name="amiodarone"))
    new = make_library(
        drugs=drugs,
        entries=(
            make_entry(),
            make_entry(id="zz", drug_id="amiodarone"),
            make_entry(id="aa", therapy="renal"),
        ),
    )
    added = [c.new for c in diff(make_library(drugs=drugs), new).changes]
    assert [str(a).split(" ")[0] for a in added] == ["entry:zz", "entry:aa"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (True, "yes"), (False, "no"), (Decimal("2.50"), "2.5"), (3, "3"), ("mg", "mg")],
)
def test_format_value(value: Decimal | int | bool | str | None, text: str) -> None:
    assert format_value(value) == text


def test_removed_parameters_keep_their_place_in_model_order() -> None:
    old = make_library(drugs=(make_drug(aliases=("Intropin",), ehr_codes=("RX1",)),))
    new = make_library(drugs=(make_drug(drug_class="inotrope"),))
    changes = diff(old, new).changes
    assert [(c.parameter, c.kind) for c in changes] == [
        ("aliases", ChangeKind.REMOVED),
        ("ehr_codes", ChangeKind.REMOVED),
        ("drug_class", ChangeKind.CHANGED),
    ]


# --- real vendor data (BD Alaris exports, ../shared/data/vendor-libraries) ------------------


def _alaris(version: int) -> DrugLibrary:
    return vendor_libraries.alaris(version).library


def test_renumbering_a_real_library_shows_no_change() -> None:
    library = _alaris(66)
    renumbered = replace(
        library,
        entries=tuple(replace(e, id=f"vendor-{n}") for n, e in enumerate(reversed(library.entries))),
    )
    assert diff(library, renumbered).changes == ()


def test_real_alaris_v65_to_v66_counts_match_the_entry_ids() -> None:
    old, new = _alaris(65), _alaris(66)
    old_ids, new_ids = {e.id for e in old.entries}, {e.id for e in new.entries}
    summary = diff(old, new).summary()
    assert summary.entries_added == len(new_ids - old_ids) > 0
    assert summary.entries_removed == len(old_ids - new_ids)
