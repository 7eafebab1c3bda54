"""Lint rules: each fires on the problem it names and stays silent on a clean library."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from smartpump.library.lint import (
    LOOK_ALIKE_PAIRS,
    RULES,
    RULES_BY_ID,
    Finding,
    LintOptions,
    RateRange,
    Severity,
    has_errors,
    lint,
)
from smartpump.library.model import (
    CustomConcentration,
    DeliveryMode,
    DeviceDefaults,
    DeviceType,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    PCALimits,
)
from smartpump.units import AmountUnit
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


def _fired(library: DrugLibrary, rule: str) -> list[Finding]:
    return [f for f in lint(library) if f.rule == rule]


def _with_drug(
    generic: str, display: str = "", *, high_alert: bool = False, drug_id: str | None = None
) -> Drug:
    return make_drug(
        id=drug_id or generic, generic_name=generic, display_name=display, is_high_alert=high_alert
    )


def _pca_entry(**overrides: object) -> Entry:
    fields: dict[str, object] = {
        "id": "icu-morphine-pca",
        "drug_id": "morphine",
        "mode": DeliveryMode.PCA,
        "dose": dose_limits("mg/h", hard_max=2),
        "concentrations": (concentration("1 mg/1 mL"),),
        "pca": PCALimits(
            demand_dose=dose_limits("mg", hard_max="1.5"),
            lockout_min=bounds(hard_min=6, hard_max=20),
            max_dose=dose_limits("mg", hard_max=10),
            max_dose_window_h=4,
        ),
    }
    fields.update(overrides)
    return make_entry(**fields)


def _pca_library(entry: object) -> DrugLibrary:
    return make_library(
        drugs=(make_drug(), _with_drug("morphine", high_alert=True)), entries=(make_entry(), entry)
    )


# --- the table ------------------------------------------------------------------------------


def test_rule_ids_are_unique_and_dotted() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert all(rule_id.startswith("lint.") for rule_id in ids)
    assert set(RULES_BY_ID) == set(ids)


@pytest.mark.parametrize("rule", [rule.id for rule in RULES])
def test_clean_library_yields_no_finding_of_rule(rule: str) -> None:
    assert _fired(make_library(), rule) == []


def test_lint_is_deterministic() -> None:
    library = make_library(drugs=(make_drug(display_name=""), _with_drug("dobutamine")), entries=())
    assert lint(library) == lint(library)


def test_has_errors_only_for_error_severity() -> None:
    warning = Finding(rule="lint.unprotected", severity=Severity.WARNING, where="entry:x", message="m")
    error = Finding(rule="lint.duplicate_entry", severity=Severity.ERROR, where="entry:x", message="m")
    assert not has_errors([warning])
    assert has_errors([warning, error])


def test_severities_rank_errors_first() -> None:
    assert sorted(Severity, key=lambda s: s.rank) == [Severity.ERROR, Severity.WARNING, Severity.INFO]


# --- lint.units.concentration_dimension -----------------------------------------------------


def test_mg_dose_with_units_concentration_is_an_error() -> None:
    entry = make_entry(
        dose=dose_limits("mg/h", hard_max=10), concentrations=(concentration("25000 units/250 mL"),)
    )
    (finding,) = _fired(make_library(entries=(entry,)), "lint.units.concentration_dimension")
    assert finding.severity is Severity.ERROR
    assert finding.where == "entry:icu-dopamine"
    assert "25000 units/250 mL" in finding.message


def test_custom_concentration_of_other_dimension_is_an_error() -> None:
    custom = CustomConcentration(unit=AmountUnit.UNITS, limits=limit_set(hard_min=1, hard_max=100))
    entry = make_entry(custom_concentration=custom)
    (finding,) = _fired(make_library(entries=(entry,)), "lint.units.concentration_dimension")
    assert "custom concentration" in finding.message


def test_bolus_in_other_dimension_than_concentration_is_an_error() -> None:
    entry = make_entry(bolus=dose_limits("units/kg", hard_max=80))
    findings = _fired(make_library(entries=(entry,)), "lint.units.concentration_dimension")
    assert len(findings) == 2  # both listed concentrations are in mg


def test_ml_entry_with_mixed_concentration_kinds_is_an_error() -> None:
    entry = make_entry(
        dose=dose_limits("mL/h", hard_max=200),
        concentrations=(concentration("400 mg/250 mL"), concentration("100 units/100 mL")),
    )
    (finding,) = _fired(make_library(entries=(entry,)), "lint.units.concentration_dimension")
    assert "different kinds" in finding.message


def test_ml_entry_with_one_concentration_kind_is_clean() -> None:
    entry = make_entry(dose=dose_limits("mL/h", hard_max=200))
    assert _fired(make_library(entries=(entry,)), "lint.units.concentration_dimension") == []


def test_g_dose_with_mg_concentration_is_clean() -> None:
    entry = make_entry(dose=dose_limits("g/h", hard_max=1))
    assert _fired(make_library(entries=(entry,)), "lint.units.concentration_dimension") == []


# --- lint.weight / lint.bsa care-area limits ------------------------------------------------


def test_weight_based_entry_without_care_area_weight_limits_warns() -> None:
    library = make_library(care_areas=(make_care_area(weight_kg=bounds(soft_max=150)),))
    (finding,) = _fired(library, "lint.weight.care_area_limits")
    assert finding.severity is Severity.WARNING
    assert finding.where == "care_area:icu"


def test_weight_hard_min_alone_counts_as_limits() -> None:
    library = make_library(care_areas=(make_care_area(weight_kg=bounds(hard_min=1)),))
    assert _fired(library, "lint.weight.care_area_limits") == []


def test_care_area_without_weight_based_entries_needs_no_weight_limits() -> None:
    entry = make_entry(dose=dose_limits("mcg/min", hard_max=100))
    library = make_library(care_areas=(make_care_area(weight_kg=bounds()),), entries=(entry,))
    assert _fired(library, "lint.weight.care_area_limits") == []


def test_weight_warning_names_at_most_three_entries() -> None:
    entries = tuple(make_entry(id=f"e{i}", therapy=f"t{i}") for i in range(5))
    library = make_library(care_areas=(make_care_area(weight_kg=bounds()),), entries=entries)
    (finding,) = _fired(library, "lint.weight.care_area_limits")
    assert "5 weight-based entries" in finding.message
    assert "and 2 more" in finding.message


def test_bsa_based_entry_without_care_area_bsa_limits_warns() -> None:
    entry = make_entry(dose=dose_limits("mg/m2/day", hard_max=100))
    library = make_library(care_areas=(make_care_area(bsa_m2=bounds()),), entries=(entry,))
    (finding,) = _fired(library, "lint.bsa.care_area_limits")
    assert finding.where == "care_area:icu"


# --- lint.high_alert.no_hard_max ------------------------------------------------------------


def test_high_alert_entry_without_dose_hard_max_is_an_error() -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", soft_max=20))
    (finding,) = _fired(make_library(entries=(entry,)), "lint.high_alert.no_hard_max")
    assert finding.severity is Severity.ERROR
    assert "ISMP" in finding.message


def test_non_high_alert_entry_without_hard_max_is_not_this_error() -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", soft_max=20))
    library = make_library(drugs=(make_drug(is_high_alert=False),), entries=(entry,))
    assert _fired(library, "lint.high_alert.no_hard_max") == []


def test_pca_demand_dose_hard_max_satisfies_high_alert_rule() -> None:
    entry = _pca_entry(dose=dose_limits("mg/h"))
    assert _fired(_pca_library(entry), "lint.high_alert.no_hard_max") == []


def test_pca_entry_without_any_hard_max_is_an_error() -> None:
    pca = PCALimits(demand_dose=dose_limits("mg", soft_max=1), lockout_min=bounds(hard_min=6))
    entry = _pca_entry(dose=dose_limits("mg/h", soft_max=1), pca=pca)
    assert len(_fired(_pca_library(entry), "lint.high_alert.no_hard_max")) == 1


# --- lint.duplicate_entry -------------------------------------------------------------------


def test_same_drug_therapy_unit_and_concentration_is_a_duplicate() -> None:
    twin = make_entry(id="icu-dopamine-2", concentrations=(concentration("0.8 g/250 mL"),))
    (finding,) = _fired(make_library(entries=(make_entry(), twin)), "lint.duplicate_entry")
    assert finding.severity is Severity.ERROR
    assert finding.where == "entry:icu-dopamine-2"
    assert "'icu-dopamine'" in finding.message


def test_same_strength_in_another_container_volume_is_not_a_duplicate() -> None:
    # Alaris lists albumin 25% as 5 g/20 mL, 12.5 g/50 mL and 25 g/100 mL: three choices, not duplicates
    other = make_entry(id="icu-dopamine-2", concentrations=(concentration("1600 mg/1000 mL"),))
    assert _fired(make_library(entries=(make_entry(), other)), "lint.duplicate_entry") == []


def test_entries_without_concentrations_overlap() -> None:
    first = make_entry(id="a", concentrations=(), dose=dose_limits("mL/h", hard_max=100))
    second = make_entry(id="b", concentrations=(), dose=dose_limits("mL/h", hard_max=200))
    assert len(_fired(make_library(entries=(first, second)), "lint.duplicate_entry")) == 1


def test_therapy_names_compare_case_insensitively() -> None:
    first = make_entry(id="a", therapy="Renal")
    second = make_entry(id="b", therapy="renal")
    assert len(_fired(make_library(entries=(first, second)), "lint.duplicate_entry")) == 1


@pytest.mark.parametrize(
    "override",
    [
        {"therapy": "renal"},
        {"dose": dose_limits("mcg/min", hard_max=500)},
        {"concentrations": (concentration("200 mg/250 mL"),)},
    ],
    ids=["other-therapy", "other-unit", "other-concentration"],
)
def test_entries_differing_in_a_key_part_are_not_duplicates(override: dict[str, object]) -> None:
    other = make_entry(id="other", **override)
    assert _fired(make_library(entries=(make_entry(), other)), "lint.duplicate_entry") == []


def test_same_entry_in_two_care_areas_is_not_a_duplicate() -> None:
    library = make_library(
        care_areas=(make_care_area(), make_care_area(id="ccu", name="Cardiac CU")),
        entries=(make_entry(), make_entry(id="ccu-dopamine", care_area_id="ccu")),
    )
    assert _fired(library, "lint.duplicate_entry") == []


# --- lint.tall_man.missing ------------------------------------------------------------------


def test_look_alike_pair_without_tall_man_warns_for_each_member() -> None:
    drugs = (make_drug(display_name=""), _with_drug("dobutamine"))
    findings = _fired(make_library(drugs=drugs), "lint.tall_man.missing")
    assert {f.where for f in findings} == {"drug:dopamine", "drug:dobutamine"}
    assert all(f.severity is Severity.WARNING for f in findings)
    assert any("DOBUTamine" in f.message for f in findings)


def test_display_name_differing_only_by_capital_first_letter_is_not_tall_man() -> None:
    drugs = (make_drug(display_name="Dopamine"), _with_drug("dobutamine", "DOBUTamine"))
    (finding,) = _fired(make_library(drugs=drugs), "lint.tall_man.missing")
    assert finding.where == "drug:dopamine"


def test_all_capitals_is_not_tall_man() -> None:
    drugs = (make_drug(display_name="DOPAMINE"), _with_drug("dobutamine", "DOBUTamine"))
    assert len(_fired(make_library(drugs=drugs), "lint.tall_man.missing")) == 1


def test_one_member_alone_needs_no_tall_man() -> None:
    library = make_library(drugs=(make_drug(display_name=""),))
    assert _fired(library, "lint.tall_man.missing") == []


def test_member_without_recommended_tall_man_letters_is_exempt() -> None:
    drugs = (make_drug(), _with_drug("hydromorphone", "HYDROmorphone"), _with_drug("morphine"))
    assert _fired(make_library(drugs=drugs), "lint.tall_man.missing") == []


def test_drug_in_two_pairs_is_reported_once() -> None:
    drugs: tuple[Drug, ...] = (make_drug(), _with_drug("epinephrine"), _with_drug("ephedrine", "ePHEDrine"))
    drugs += (_with_drug("norepinephrine", "NORepinephrine"),)
    (finding,) = _fired(make_library(drugs=drugs), "lint.tall_man.missing")
    assert finding.where == "drug:epinephrine"


def test_look_alike_table_spells_each_pair_differently() -> None:
    for first, second in LOOK_ALIKE_PAIRS:
        assert first.lower() != second.lower()


# --- lint.rate.beyond_care_area_max / lint.dose.unreachable ---------------------------------


def test_rate_hard_max_above_care_area_max_rate_is_an_error() -> None:
    entry = make_entry(rate_ml_per_h=bounds(soft_max=900, hard_max=1200))
    (finding,) = _fired(make_library(entries=(entry,)), "lint.rate.beyond_care_area_max")
    assert finding.severity is Severity.ERROR
    assert "1200" in finding.message


def test_rate_limit_equal_to_care_area_max_is_clean() -> None:
    entry = make_entry(rate_ml_per_h=bounds(hard_max=999))
    assert _fired(make_library(entries=(entry,)), "lint.rate.beyond_care_area_max") == []


def test_ml_per_h_dose_limit_above_care_area_max_is_an_error() -> None:
    entry = make_entry(dose=dose_limits("mL/h", hard_max=1000), concentrations=())
    assert len(_fired(make_library(entries=(entry,)), "lint.rate.beyond_care_area_max")) == 1


def test_device_max_rate_applies_when_lower() -> None:
    area = make_care_area(device=DeviceDefaults(max_rate_ml_per_h=Decimal(400)))
    assert len(_fired(make_library(care_areas=(area,)), "lint.rate.beyond_care_area_max")) == 1


def test_no_care_area_max_rate_means_no_rate_finding() -> None:
    area = make_care_area(max_rate_ml_per_h=None)
    entry = make_entry(rate_ml_per_h=bounds(hard_max=5000))
    assert _fired(make_library(care_areas=(area,), entries=(entry,)), "lint.rate.beyond_care_area_max") == []


def test_dose_hard_max_needing_rate_above_care_area_max_warns() -> None:
    # 60 mcg/kg/min x 350 kg x 60 min/h = 1260 mg/h; at 1.6 mg/mL that is 787.5 mL/h > 500 mL/h
    area = make_care_area(max_rate_ml_per_h=Decimal(500))
    entry = make_entry(
        dose=dose_limits("mcg/kg/min", hard_max=60),
        rate_ml_per_h=bounds(),
        concentrations=(concentration("400 mg/250 mL"), concentration("800 mg/250 mL")),
    )
    (finding,) = _fired(make_library(care_areas=(area,), entries=(entry,)), "lint.dose.unreachable")
    assert finding.severity is Severity.WARNING
    assert "787.5 mL/h" in finding.message
    assert "400 mg/250 mL" in finding.message


def test_dose_reachable_at_exactly_the_max_rate_is_clean() -> None:
    # 30 mcg/kg/min x 350 kg at 1.6 mg/mL needs 393.75 mL/h
    area = make_care_area(max_rate_ml_per_h=Decimal("393.75"))
    entry = make_entry(rate_ml_per_h=bounds())
    assert _fired(make_library(care_areas=(area,), entries=(entry,)), "lint.dose.unreachable") == []


def test_unreachable_needs_a_max_weight() -> None:
    area = make_care_area(max_rate_ml_per_h=Decimal(10), weight_kg=bounds(hard_min=1))
    entry = make_entry(rate_ml_per_h=bounds())
    assert _fired(make_library(care_areas=(area,), entries=(entry,)), "lint.dose.unreachable") == []


def test_unreachable_uses_bsa_for_bsa_units() -> None:
    # 100 mg/m2/h x 4 m2 = 400 mg/h; at 1.6 mg/mL that is 250 mL/h > 200 mL/h
    area = make_care_area(max_rate_ml_per_h=Decimal(200))
    entry = make_entry(dose=dose_limits("mg/m2/h", hard_max=100), rate_ml_per_h=bounds())
    (finding,) = _fired(make_library(care_areas=(area,), entries=(entry,)), "lint.dose.unreachable")
    assert "250 mL/h" in finding.message


def test_unreachable_without_basis_needs_no_patient_size() -> None:
    # 2000 mg/h at 1.6 mg/mL is 1250 mL/h > 999 mL/h
    entry = make_entry(dose=dose_limits("mg/h", hard_max=2000), rate_ml_per_h=bounds())
    (finding,) = _fired(make_library(entries=(entry,)), "lint.dose.unreachable")
    assert "largest patient" not in finding.message


def test_total_doses_are_not_checked_for_reachability() -> None:
    entry = make_entry(dose=dose_limits("mg", hard_max=100000), rate_ml_per_h=bounds())
    assert _fired(make_library(entries=(entry,)), "lint.dose.unreachable") == []


# --- lint.unprotected / lint.limits.missing_hard_max ----------------------------------------


def test_entry_without_dose_and_rate_limits_is_unprotected() -> None:
    entry = make_entry(dose=DoseLimits(unit=make_entry().dosing_unit), rate_ml_per_h=bounds())
    library = make_library(drugs=(make_drug(is_high_alert=False),), entries=(entry,))
    (finding,) = _fired(library, "lint.unprotected")
    assert finding.severity is Severity.WARNING
    assert _fired(library, "lint.limits.missing_hard_max") == []


def test_entry_with_only_rate_limits_is_protected() -> None:
    entry = make_entry(dose=DoseLimits(unit=make_entry().dosing_unit))
    library = make_library(drugs=(make_drug(is_high_alert=False),), entries=(entry,))
    assert _fired(library, "lint.unprotected") == []


def test_pca_demand_limits_protect_an_entry() -> None:
    entry = _pca_entry(dose=dose_limits("mg/h"))
    assert _fired(_pca_library(entry), "lint.unprotected") == []


def test_non_high_alert_entry_without_hard_max_gets_info() -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", soft_max=20))
    library = make_library(drugs=(make_drug(is_high_alert=False),), entries=(entry,))
    (finding,) = _fired(library, "lint.limits.missing_hard_max")
    assert finding.severity is Severity.INFO


def test_high_alert_entry_without_hard_max_gets_no_info_finding() -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", soft_max=20))
    assert _fired(make_library(entries=(entry,)), "lint.limits.missing_hard_max") == []


# --- lint.custom_concentration.no_hard_min --------------------------------------------------


def test_custom_concentration_without_hard_min_is_an_error() -> None:
    custom = CustomConcentration(unit=AmountUnit.MG, limits=limit_set(soft_min=1, hard_max=4))
    entry = make_entry(custom_concentration=custom)
    (finding,) = _fired(make_library(entries=(entry,)), "lint.custom_concentration.no_hard_min")
    assert finding.severity is Severity.ERROR


def test_custom_concentration_with_hard_min_is_clean() -> None:
    custom = CustomConcentration(unit=AmountUnit.MG, limits=limit_set(hard_min="0.8", hard_max=4))
    entry = make_entry(custom_concentration=custom)
    assert _fired(make_library(entries=(entry,)), "lint.custom_concentration.no_hard_min") == []


# --- lint.pca.missing_limits ----------------------------------------------------------------


def test_complete_pca_entry_is_clean() -> None:
    assert _fired(_pca_library(_pca_entry()), "lint.pca.missing_limits") == []


def test_pca_without_lockout_limits_warns() -> None:
    pca = PCALimits(demand_dose=dose_limits("mg", hard_max=1), max_dose=dose_limits("mg", hard_max=10))
    (finding,) = _fired(_pca_library(_pca_entry(pca=pca)), "lint.pca.missing_limits")
    assert finding.severity is Severity.WARNING
    assert "lockout limits" in finding.message
    assert "max-dose" not in finding.message


def test_pca_without_max_dose_limits_warns() -> None:
    pca = PCALimits(demand_dose=dose_limits("mg", hard_max=1), lockout_min=bounds(hard_min=6))
    (finding,) = _fired(_pca_library(_pca_entry(pca=pca)), "lint.pca.missing_limits")
    assert "max-dose limits" in finding.message


def test_pca_mode_without_pca_limits_warns_for_both() -> None:
    (finding,) = _fired(_pca_library(_pca_entry(pca=None)), "lint.pca.missing_limits")
    assert "lockout limits or max-dose limits" in finding.message


def test_non_high_alert_entry_with_hard_max_gets_no_info_finding() -> None:
    library = make_library(drugs=(make_drug(is_high_alert=False),))
    assert _fired(library, "lint.limits.missing_hard_max") == []


# --- lint.custom_concentration.no_hard_max --------------------------------------------------


def test_custom_concentration_without_hard_max_is_an_error_that_names_the_soft_max() -> None:
    custom = CustomConcentration(unit=AmountUnit.MEQ, limits=limit_set(hard_min="0.01", soft_max="0.46"))
    entry = make_entry(custom_concentration=custom)
    (finding,) = _fired(make_library(entries=(entry,)), "lint.custom_concentration.no_hard_max")
    assert finding.severity is Severity.ERROR
    assert "soft max of 0.46 mEq/mL" in finding.message


def test_custom_concentration_with_hard_max_is_clean() -> None:
    custom = CustomConcentration(unit=AmountUnit.MG, limits=limit_set(hard_min="0.8", hard_max=4))
    entry = make_entry(custom_concentration=custom)
    assert _fired(make_library(entries=(entry,)), "lint.custom_concentration.no_hard_max") == []


# --- lint.units.magnitude --------------------------------------------------------------------


def _bivalirudin(entry_id: str, therapy: str, unit: str, soft_max: str, hard_max: str):  # type: ignore[no-untyped-def]
    return make_entry(
        id=entry_id,
        drug_id="bivalirudin",
        therapy=therapy,
        dose=dose_limits(unit, soft_min="0.1", soft_max=soft_max, hard_max=hard_max),
        concentrations=(concentration("250 mg/50 mL"),),
    )


def _bivalirudin_library(*entries: object) -> DrugLibrary:
    return make_library(drugs=(_with_drug("bivalirudin", high_alert=True),), entries=entries)


def test_an_entry_in_mcg_where_the_drugs_others_use_mg_with_the_same_numbers_is_a_unit_slip() -> None:
    library = _bivalirudin_library(
        _bivalirudin("std", "standard", "mg/kg/h", "1.8", "2"),
        _bivalirudin("renal", "renal", "mg/kg/h", "1.2", "1.4"),
        _bivalirudin("esrd", "ESRD", "mcg/kg/h", "1.2", "1.4"),
    )
    (finding,) = _fired(library, "lint.units.magnitude")
    assert finding.where == "entry:esrd"
    assert finding.severity is Severity.ERROR
    assert "mg/kg/h" in finding.message and "1429x below" in finding.message


def test_mixed_units_with_consistent_magnitudes_are_clean() -> None:
    library = _bivalirudin_library(
        _bivalirudin("std", "standard", "mg/kg/h", "1.8", "2"),
        _bivalirudin("mcg", "other", "mcg/kg/h", "1500", "1750"),
    )
    assert _fired(library, "lint.units.magnitude") == []


# --- lint.dose.unreachable_low / pump rate ranges ---------------------------------------------


PUMP = LintOptions(
    rate_ranges=(
        RateRange(
            device_type=DeviceType.LARGE_VOLUME, min_ml_per_h=Decimal("0.1"), max_ml_per_h=Decimal(999)
        ),
    )
)


def test_a_soft_min_below_the_pumps_minimum_rate_is_reported_with_the_rate_it_needs() -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", soft_min="0.001", soft_max=20, hard_max=30))
    library = make_library(entries=(entry,))
    (finding,) = [f for f in lint(library, PUMP) if f.rule == "lint.dose.unreachable_low"]
    # 0.001 mcg/kg/min x 30 kg (weight soft min) x 60 / 1600 mcg/mL (400 mg/250 mL) = 0.001125 mL/h
    assert "needs 0.001125 mL/h" in finding.message
    assert finding.severity is Severity.WARNING
    assert _fired(library, "lint.dose.unreachable_low") == []  # no pump ranges given: silent


def test_reachable_low_doses_are_clean() -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", soft_min=2, soft_max=20, hard_max=30))
    care_area = make_care_area(weight_kg=bounds(hard_min=40, hard_max=200))
    library = make_library(care_areas=(care_area,), entries=(entry,))
    assert [f for f in lint(library, PUMP) if f.rule == "lint.dose.unreachable_low"] == []


def test_the_pumps_maximum_rate_bounds_the_high_end_too() -> None:
    small = LintOptions(
        rate_ranges=(
            RateRange(
                device_type=DeviceType.LARGE_VOLUME, min_ml_per_h=Decimal("0.1"), max_ml_per_h=Decimal(100)
            ),
        )
    )
    (finding,) = [f for f in lint(make_library(), small) if f.rule == "lint.dose.unreachable"]
    assert "pump's maximum rate 100 mL/h" in finding.message


# --- lint.intermittent.unbounded_speed -----------------------------------------------------------


def _kcl_intermittent(**overrides: Any) -> DrugLibrary:
    fields: dict[str, Any] = {
        "mode": DeliveryMode.INTERMITTENT,
        "dose": dose_limits("mEq", hard_max=40),
        "concentrations": (concentration("10 mEq/100 mL"),),
        "duration_min": bounds(soft_min=60),
    }
    fields.update(overrides)
    return make_library(drugs=(make_drug(is_high_alert=True),), entries=(make_entry(**fields),))


def test_a_high_alert_intermittent_with_only_a_soft_duration_warns() -> None:
    # the case: KCl 40 mEq over 25 min passed with a duration soft alert only
    (finding,) = _fired(_kcl_intermittent(), "lint.intermittent.unbounded_speed")
    assert finding.severity is Severity.WARNING
    assert "no dose-rate hard max and no duration hard min" in finding.message


@pytest.mark.parametrize(
    "overrides",
    [
        {"dose_rate": dose_limits("mEq/h", hard_max=20)},
        {"duration_min": bounds(hard_min=120)},
        {"dose": dose_limits("mEq/h", hard_max=20), "duration_min": bounds()},
    ],
)
def test_a_dose_rate_hard_max_or_a_duration_hard_min_or_a_rate_unit_bounds_the_speed(
    overrides: dict[str, Any],
) -> None:
    assert _fired(_kcl_intermittent(**overrides), "lint.intermittent.unbounded_speed") == []


def test_a_dose_rate_with_only_a_soft_max_still_warns() -> None:
    library = _kcl_intermittent(dose_rate=dose_limits("mEq/h", soft_max=10))
    assert len(_fired(library, "lint.intermittent.unbounded_speed")) == 1
