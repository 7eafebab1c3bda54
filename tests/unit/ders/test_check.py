"""check(): verdicts at every limit edge, exact rates, program refusals and DERS-04 decimal errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Context, Decimal, localcontext
from typing import Any

import pytest

from smartpump.ders.check import check
from smartpump.ders.program import (
    InfusionProgram,
    PatientParameters,
    ProgramKind,
    Verdict,
    VerdictLevel,
)
from smartpump.errors import ProgramError
from smartpump.library.limits import LimitKind
from smartpump.library.model import Route
from smartpump.units import Concentration, DoseUnit
from tests.unit.ders import (
    ICU_AREA,
    LIBRARY,
    PEDS_AREA,
    TYPICAL_DOSES,
    pca_program,
    program,
)
from tests.unit.ders import dose as dose_limits

D = Decimal
STEP = D("0.0001")
RATE_STEP = D("0.1")


FINE = D("0.000001")


def run(prog: InfusionProgram, area: Any = ICU_AREA) -> Verdict:
    return check(LIBRARY, area, prog)


def run_fine(prog: InfusionProgram) -> Verdict:
    """Check on a pump fine enough (1e-6 mL/h and mL) that rounding does not move the delivered dose
    across a limit: the limit-edge semantics of DERS itself."""
    return run(dataclasses.replace(prog, rate_resolution_ml_per_h=FINE, vtbi_resolution_ml=FINE))


def rules_of(verdict: Verdict) -> set[str]:
    return {a.rule for a in verdict.alerts}


def alerts_for(verdict: Verdict, parameter: str) -> list[Any]:
    return [a for a in verdict.alerts if a.parameter == parameter]


def close(value: Decimal, expected: Decimal) -> bool:
    """Equal to 25 significant digits (the expectation is computed in the default 28-digit context)."""
    return abs(value - expected) <= D("1e-25") * max(D(1), abs(expected))


def near(value: Decimal, expected: Decimal) -> bool:
    """Equal within the 1e-6 mL/h and mL steps of ``run_fine`` (relative 1e-8)."""
    return abs(value - expected) <= D("1e-8") * max(D(1), abs(expected))


def refused(prog: InfusionProgram, area: Any = ICU_AREA) -> str:
    with pytest.raises(ProgramError) as caught:
        run(prog, area)
    return caught.value.code


# --- limit edges: (id, program for a value, parameter, kind, limit, step beyond) ----------------------

Builder = Callable[[Decimal], InfusionProgram]


def _dopamine(value: Decimal) -> InfusionProgram:
    return program("icu-dopamine", dose=value)


def _heparin(value: Decimal) -> InfusionProgram:
    return program("icu-heparin", dose=value)


def _fluid_rate(value: Decimal) -> InfusionProgram:
    return program("icu-ivf", rate_ml_per_h=value)


def _fluid_vtbi(value: Decimal) -> InfusionProgram:
    return program("icu-ivf", rate_ml_per_h=D(100), vtbi_ml=value)


def _vanco_duration(value: Decimal) -> InfusionProgram:
    return program("icu-vancomycin", dose=D(1), duration_min=value)


def _vanco_dose(value: Decimal) -> InfusionProgram:
    return program("icu-vancomycin", dose=value, duration_min=D(120))


def _custom_conc(value: Decimal) -> InfusionProgram:
    return program(
        "icu-norepinephrine",
        dose=D(5),
        concentration=Concentration(amount=value, unit=Concentration.parse("1 mg/mL").unit, volume_ml=D(1)),
    )


def _bolus_dose(value: Decimal) -> InfusionProgram:
    return program("icu-heparin", kind=ProgramKind.BOLUS, dose=value, duration_min=D(10))


def _bolus_rate(value: Decimal) -> InfusionProgram:
    return program("icu-heparin", kind=ProgramKind.BOLUS, rate_ml_per_h=value, duration_min=D(2))


def _loading_dose(value: Decimal) -> InfusionProgram:
    return program("icu-amiodarone", kind=ProgramKind.LOADING, dose=value, duration_min=D(20))


def _loading_duration(value: Decimal) -> InfusionProgram:
    return program("icu-amiodarone", kind=ProgramKind.LOADING, dose=D(120), duration_min=value)


def _weight(value: Decimal) -> InfusionProgram:
    return program("icu-dopamine", dose=D(5), patient=PatientParameters(weight_kg=value))


def _bsa(value: Decimal) -> InfusionProgram:
    return program("icu-fluorouracil", dose=D(800), patient=PatientParameters(bsa_m2=value))


def _care_area_rate(value: Decimal) -> InfusionProgram:
    return program("icu-milrinone", rate_ml_per_h=value)


def _care_area_vtbi(value: Decimal) -> InfusionProgram:
    return program("icu-milrinone", dose=D("0.5"), vtbi_ml=value)


def _basic_rate(value: Decimal) -> InfusionProgram:
    return InfusionProgram(entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=value)


def _pca(field: str) -> Builder:
    return lambda value: pca_program(**{field: value})


EDGES: list[tuple[str, Builder, str, LimitKind, str, Decimal]] = [
    ("dose-soft_min", _dopamine, "dose", LimitKind.SOFT_MIN, "2", STEP),
    ("dose-soft_max", _dopamine, "dose", LimitKind.SOFT_MAX, "20", STEP),
    ("dose-hard_max", _dopamine, "dose", LimitKind.HARD_MAX, "30", STEP),
    ("dose-hard_min", _heparin, "dose", LimitKind.HARD_MIN, "5", STEP),
    ("dose-intermittent-soft_min", _vanco_dose, "dose", LimitKind.SOFT_MIN, "0.5", STEP),
    ("dose-intermittent-hard_max", _vanco_dose, "dose", LimitKind.HARD_MAX, "3", STEP),
    ("rate-soft_min", _fluid_rate, "rate", LimitKind.SOFT_MIN, "10", RATE_STEP),
    ("rate-soft_max", _fluid_rate, "rate", LimitKind.SOFT_MAX, "250", RATE_STEP),
    ("rate-hard_max", _fluid_rate, "rate", LimitKind.HARD_MAX, "500", RATE_STEP),
    ("vtbi-soft_max", _fluid_vtbi, "vtbi", LimitKind.SOFT_MAX, "1000", STEP),
    ("vtbi-hard_max", _fluid_vtbi, "vtbi", LimitKind.HARD_MAX, "2000", STEP),
    ("duration-hard_min", _vanco_duration, "duration", LimitKind.HARD_MIN, "60", STEP),
    ("duration-soft_min", _vanco_duration, "duration", LimitKind.SOFT_MIN, "90", STEP),
    ("duration-soft_max", _vanco_duration, "duration", LimitKind.SOFT_MAX, "180", STEP),
    ("duration-hard_max", _vanco_duration, "duration", LimitKind.HARD_MAX, "240", STEP),
    ("concentration-hard_min", _custom_conc, "concentration", LimitKind.HARD_MIN, "0.008", STEP / 100),
    ("concentration-soft_min", _custom_conc, "concentration", LimitKind.SOFT_MIN, "0.016", STEP / 100),
    ("concentration-soft_max", _custom_conc, "concentration", LimitKind.SOFT_MAX, "0.064", STEP / 100),
    ("bolus_dose-soft_max", _bolus_dose, "bolus_dose", LimitKind.SOFT_MAX, "80", STEP),
    ("bolus_dose-hard_max", _bolus_dose, "bolus_dose", LimitKind.HARD_MAX, "100", STEP),
    ("bolus_rate-soft_max", _bolus_rate, "bolus_rate", LimitKind.SOFT_MAX, "600", RATE_STEP),
    ("bolus_rate-hard_max", _bolus_rate, "bolus_rate", LimitKind.HARD_MAX, "900", RATE_STEP),
    ("loading_dose-soft_min", _loading_dose, "loading_dose", LimitKind.SOFT_MIN, "100", STEP),
    ("loading_dose-soft_max", _loading_dose, "loading_dose", LimitKind.SOFT_MAX, "150", STEP),
    ("loading_dose-hard_max", _loading_dose, "loading_dose", LimitKind.HARD_MAX, "300", STEP),
    ("loading_duration-hard_min", _loading_duration, "loading_duration", LimitKind.HARD_MIN, "10", STEP),
    ("loading_duration-soft_min", _loading_duration, "loading_duration", LimitKind.SOFT_MIN, "15", STEP),
    ("loading_duration-soft_max", _loading_duration, "loading_duration", LimitKind.SOFT_MAX, "30", STEP),
    ("loading_duration-hard_max", _loading_duration, "loading_duration", LimitKind.HARD_MAX, "60", STEP),
    ("pca.demand_dose-hard_min", _pca("demand_dose"), "pca.demand_dose", LimitKind.HARD_MIN, "0.1", STEP),
    ("pca.demand_dose-soft_max", _pca("demand_dose"), "pca.demand_dose", LimitKind.SOFT_MAX, "2", STEP),
    ("pca.demand_dose-hard_max", _pca("demand_dose"), "pca.demand_dose", LimitKind.HARD_MAX, "3", STEP),
    ("pca.lockout-hard_min", _pca("lockout_min"), "pca.lockout", LimitKind.HARD_MIN, "5", STEP),
    ("pca.lockout-soft_min", _pca("lockout_min"), "pca.lockout", LimitKind.SOFT_MIN, "6", STEP),
    ("pca.lockout-soft_max", _pca("lockout_min"), "pca.lockout", LimitKind.SOFT_MAX, "20", STEP),
    ("pca.lockout-hard_max", _pca("lockout_min"), "pca.lockout", LimitKind.HARD_MAX, "60", STEP),
    ("pca.basal-soft_max", _pca("basal"), "pca.basal", LimitKind.SOFT_MAX, "1", STEP),
    ("pca.basal-hard_max", _pca("basal"), "pca.basal", LimitKind.HARD_MAX, "2", STEP),
    ("pca.loading_dose-soft_max", _pca("loading_dose"), "pca.loading_dose", LimitKind.SOFT_MAX, "5", STEP),
    ("pca.loading_dose-hard_max", _pca("loading_dose"), "pca.loading_dose", LimitKind.HARD_MAX, "10", STEP),
    ("pca.max_dose-soft_max", _pca("max_dose"), "pca.max_dose", LimitKind.SOFT_MAX, "20", STEP),
    ("pca.max_dose-hard_max", _pca("max_dose"), "pca.max_dose", LimitKind.HARD_MAX, "30", STEP),
    ("patient_weight-hard_min", _weight, "patient_weight", LimitKind.HARD_MIN, "0.5", STEP),
    ("patient_weight-soft_min", _weight, "patient_weight", LimitKind.SOFT_MIN, "30", STEP),
    ("patient_weight-soft_max", _weight, "patient_weight", LimitKind.SOFT_MAX, "200", STEP),
    ("patient_weight-hard_max", _weight, "patient_weight", LimitKind.HARD_MAX, "350", STEP),
    ("patient_bsa-hard_min", _bsa, "patient_bsa", LimitKind.HARD_MIN, "0.2", STEP),
    ("patient_bsa-soft_max", _bsa, "patient_bsa", LimitKind.SOFT_MAX, "2.5", STEP),
    ("patient_bsa-hard_max", _bsa, "patient_bsa", LimitKind.HARD_MAX, "3", STEP),
    ("care_area.max_rate", _care_area_rate, "care_area.max_rate", LimitKind.HARD_MAX, "999", RATE_STEP),
    ("care_area.max_vtbi", _care_area_vtbi, "care_area.max_vtbi", LimitKind.HARD_MAX, "4000", STEP),
    ("basic.rate-soft_max", _basic_rate, "basic.rate", LimitKind.SOFT_MAX, "200", RATE_STEP),
    ("basic.rate-hard_max", _basic_rate, "basic.rate", LimitKind.HARD_MAX, "500", RATE_STEP),
]
EDGE_IDS = [e[0] for e in EDGES]


@pytest.mark.parametrize(("name", "build", "parameter", "kind", "limit", "step"), EDGES, ids=EDGE_IDS)
def test_value_exactly_on_a_limit_raises_no_alert_for_that_limit(
    name: str, build: Builder, parameter: str, kind: LimitKind, limit: str, step: Decimal
) -> None:
    verdict = run_fine(build(D(limit)))
    assert f"ders.{parameter}.{kind.value}" not in rules_of(verdict)
    assert all(a.level is VerdictLevel.SOFT for a in alerts_for(verdict, parameter))


@pytest.mark.parametrize(("name", "build", "parameter", "kind", "limit", "step"), EDGES, ids=EDGE_IDS)
def test_one_step_beyond_a_limit_raises_that_limits_alert(
    name: str, build: Builder, parameter: str, kind: LimitKind, limit: str, step: Decimal
) -> None:
    beyond = D(limit) + step if kind.is_max else D(limit) - step
    verdict = run_fine(build(beyond))
    found = alerts_for(verdict, parameter)
    assert [a.rule for a in found] == [f"ders.{parameter}.{kind.value}"]
    alert = found[0]
    expected_level = VerdictLevel.HARD if kind.is_hard else VerdictLevel.SOFT
    assert alert.level is expected_level
    assert alert.limit_kind is kind
    assert alert.limit == D(limit)
    assert near(alert.value, beyond)
    assert alert.factor is not None
    assert near(alert.factor, beyond / D(limit) if kind.is_max else D(limit) / beyond)
    assert verdict.level.rank >= expected_level.rank


@pytest.mark.parametrize(
    ("dose", "level"),
    [
        ("2", VerdictLevel.OK),
        ("20", VerdictLevel.OK),
        ("20.0001", VerdictLevel.SOFT),
        ("30.0001", VerdictLevel.HARD),
    ],
)
def test_dose_verdict_level_follows_the_most_severe_limit_crossed(dose: str, level: VerdictLevel) -> None:
    assert run(program("icu-dopamine", dose=D(dose))).level is level


def test_dose_beyond_hard_max_gives_one_alert_with_unit_and_factor() -> None:
    verdict = run(program("icu-dopamine", dose=D(45)))
    assert len(verdict.alerts) == 1
    alert = verdict.alerts[0]
    assert alert.rule == "ders.dose.hard_max"
    assert alert.parameter == "dose"
    assert alert.unit == "mcg/kg/min"
    assert alert.limit == D(30)
    assert alert.value == D(45)
    assert alert.factor == D("1.5")


def test_dose_below_min_factor_is_limit_over_value() -> None:
    verdict = run_fine(program("icu-dopamine", dose=D("0.5")))
    (alert,) = verdict.alerts
    assert alert.rule == "ders.dose.soft_min"
    assert alert.factor == D(4)


def test_dose_below_min_holds_the_delivered_dose_when_rounding_lowers_it() -> None:
    # 0.5 mcg/kg/min x 70 kg at 1.6 mg/mL = 1.3125 mL/h -> runs 1.3 mL/h = 0.4952... mcg/kg/min
    verdict = run(program("icu-dopamine", dose=D("0.5")))
    (alert,) = verdict.alerts
    assert alert.rule == "ders.dose.soft_min"
    assert alert.value == verdict.dose
    assert verdict.dose is not None
    assert close(verdict.dose, D("1.3") * D(1600) / D(60) / D(70))


def test_hard_alert_dominates_a_soft_alert_in_the_verdict() -> None:
    verdict = run(program("icu-dopamine", dose=D(25), patient=PatientParameters(weight_kg=D(400))))
    assert rules_of(verdict) == {"ders.dose.soft_max", "ders.patient_weight.hard_max"}
    assert verdict.level is VerdictLevel.HARD
    assert not verdict.may_start


def test_soft_verdict_may_not_start_without_override() -> None:
    verdict = run(program("icu-dopamine", dose=D(25)))
    assert verdict.level is VerdictLevel.SOFT
    assert not verdict.may_start


def test_ok_verdict_may_start_and_has_no_alerts() -> None:
    verdict = run(program("icu-dopamine", dose=D(5)))
    assert verdict.level is VerdictLevel.OK
    assert verdict.alerts == ()
    assert verdict.may_start


def test_care_area_max_rate_is_hard_even_without_entry_rate_limits() -> None:
    verdict = run(program("icu-milrinone", rate_ml_per_h=D(1000)))
    assert rules_of(verdict) == {"ders.care_area.max_rate.hard_max"}
    assert verdict.level is VerdictLevel.HARD


def test_device_max_rate_applies_when_lower_than_care_area_max() -> None:
    area = dataclasses.replace(
        ICU_AREA, device=dataclasses.replace(ICU_AREA.device, max_rate_ml_per_h=D(300))
    )
    verdict = run(program("icu-milrinone", rate_ml_per_h=D("300.1")), area)
    (alert,) = verdict.alerts
    assert alert.rule == "ders.care_area.max_rate.hard_max"
    assert alert.limit == D(300)


def test_care_area_max_vtbi_is_hard() -> None:
    verdict = run(program("icu-milrinone", dose=D("0.5"), vtbi_ml=D(5000)))
    assert rules_of(verdict) == {"ders.care_area.max_vtbi.hard_max"}
    assert verdict.level is VerdictLevel.HARD


def test_fluid_rate_beyond_both_entry_and_care_area_max_gives_both_hard_alerts() -> None:
    verdict = run(program("icu-ivf", rate_ml_per_h=D(1200)))
    assert rules_of(verdict) == {"ders.rate.hard_max", "ders.care_area.max_rate.hard_max"}


# --- exact rates and rounding -------------------------------------------------------------------------


def test_dose_gives_exact_and_rounded_rate_readme_case() -> None:
    verdict = run(program("icu-dopamine", dose=D(5), concentration=Concentration.parse("400 mg/250 mL")))
    assert verdict.rate_ml_per_h_exact == D("13.125")
    assert verdict.rate_ml_per_h == D("13.1")
    assert verdict.dose_programmed == D(5)
    assert verdict.dose is not None
    assert close(verdict.dose, D("13.1") * D(1600) / D(60) / D(70))
    assert verdict.dose_unit == "mcg/kg/min"


def test_rate_is_rounded_half_up_to_a_finer_resolution() -> None:
    verdict = run(
        program(
            "icu-dopamine",
            dose=D(5),
            concentration=Concentration.parse("400 mg/250 mL"),
            rate_resolution_ml_per_h=D("0.01"),
        )
    )
    assert verdict.rate_ml_per_h == D("13.13")
    assert verdict.rate_ml_per_h_exact == D("13.125")


def test_rate_limits_hold_the_rounded_rate() -> None:
    assert rules_of(run(_fluid_rate(D("500.04")))) == {"ders.rate.soft_max"}
    assert rules_of(run(_fluid_rate(D("500.05")))) == {"ders.rate.hard_max"}


def test_rate_given_computes_the_exact_dose_and_checks_it() -> None:
    # 50 mL/h of 1.6 mg/mL = 80 mg/h = 1333.33 mcg/min; / 70 kg = 19.047619... mcg/kg/min
    verdict = run(
        program("icu-dopamine", rate_ml_per_h=D(50), concentration=Concentration.parse("400 mg/250 mL"))
    )
    assert verdict.dose is not None
    assert close(verdict.dose, D(80000) / D(60) / D(70))
    assert verdict.level is VerdictLevel.OK
    over = run(
        program("icu-dopamine", rate_ml_per_h=D(60), concentration=Concentration.parse("400 mg/250 mL"))
    )
    assert [a.rule for a in over.alerts] == ["ders.dose.soft_max"]
    assert close(over.alerts[0].value, D(96000) / D(60) / D(70))


def test_rate_given_for_a_total_dose_entry_with_duration_computes_the_dose() -> None:
    # 250 mL/h of 4 mg/mL for 60 min = 1000 mg = 1 g
    verdict = run(program("icu-vancomycin", rate_ml_per_h=D(250), duration_min=D(60)))
    assert verdict.dose == D(1)


def test_rate_given_for_a_total_dose_entry_without_duration_needs_a_vtbi_to_end() -> None:
    prog = dataclasses.replace(program("icu-vancomycin", rate_ml_per_h=D(250)), duration_min=None)
    assert refused(prog) == "program.vtbi_required"


def test_rate_and_vtbi_for_a_total_dose_entry_checks_the_dose_the_volume_holds() -> None:
    # 250 mL of 4 mg/mL = 1 g, whatever the rate
    prog = dataclasses.replace(
        program("icu-vancomycin", rate_ml_per_h=D(250), vtbi_ml=D(250)), duration_min=None
    )
    verdict = run(prog)
    assert verdict.dose == D(1)
    assert verdict.vtbi_ml == D(250)
    assert verdict.rate_ml_per_h == D(250)


def test_intermittent_dose_over_duration_gives_the_rate() -> None:
    # 1 g at 4 mg/mL = 250 mL, over 120 min = 125 mL/h
    verdict = run(program("icu-vancomycin", dose=D(1), duration_min=D(120)))
    assert verdict.rate_ml_per_h_exact == D(125)


@pytest.mark.parametrize(
    ("given", "value", "expected"),
    [
        ("mg/kg/min", "0.005", "5"),
        ("mcg/kg/h", "300", "5"),
        ("mg/kg/h", "0.3", "5"),
        ("ng/kg/min", "5000", "5"),
        ("mcg/kg/min", "5", "5"),
    ],
)
def test_exactly_convertible_dose_units_are_accepted(given: str, value: str, expected: str) -> None:
    verdict = run(program("icu-dopamine", dose=D(value), dose_unit=DoseUnit.parse(given)))
    assert verdict.dose_programmed == D(expected)
    assert verdict.dose_unit == "mcg/kg/min"
    assert verdict.rate_ml_per_h_exact == D("13.125")


@pytest.mark.parametrize("given", ["mcg/min", "mcg/kg", "units/kg/min", "mcg/m2/min", "mL/h"])
def test_shape_changing_dose_units_are_refused(given: str) -> None:
    prog = program("icu-dopamine", dose=D(5), dose_unit=DoseUnit.parse(given))
    assert refused(prog) == "program.unit_mismatch"


def test_bsa_is_rounded_to_the_care_area_resolution_when_set() -> None:
    area = dataclasses.replace(ICU_AREA, bsa_resolution_m2=D("0.01"))
    patient = PatientParameters(weight_kg=D(70), height_cm=D(170))
    verdict = run(program("icu-fluorouracil", dose=D(800), patient=patient), area)
    assert verdict.bsa_m2 == D("1.82")


def test_bsa_is_unrounded_without_a_care_area_resolution() -> None:
    patient = PatientParameters(weight_kg=D(64), height_cm=D(225))
    verdict = run(program("icu-fluorouracil", dose=D(800), patient=patient))
    assert verdict.bsa_m2 == D(2)
    unrounded = run(
        program("icu-fluorouracil", dose=D(800), patient=PatientParameters(weight_kg=D(70), height_cm=D(170)))
    )
    assert unrounded.bsa_m2 is not None
    assert close(unrounded.bsa_m2 * unrounded.bsa_m2, D(70) * D(170) / D(3600))
    assert unrounded.bsa_m2 != D("1.82")


def test_bsa_dose_rate_uses_the_bsa() -> None:
    # 1200 mg/m2/day x 2 m2 = 2400 mg/day = 100 mg/h at 50 mg/mL = 2 mL/h
    verdict = run(program("icu-fluorouracil", dose=D(1200), patient=PatientParameters(bsa_m2=D(2))))
    assert verdict.rate_ml_per_h_exact == D(2)
    assert verdict.rate_ml_per_h == D(2)


def test_unprotected_entry_is_flagged() -> None:
    verdict = run(program("icu-milrinone", dose=D(1)))
    assert verdict.is_unprotected
    assert verdict.level is VerdictLevel.OK


def test_protected_entry_is_not_flagged_unprotected() -> None:
    assert not run(program("icu-dopamine", dose=D(5))).is_unprotected


# --- basic infusions ----------------------------------------------------------------------------------


def test_basic_infusion_is_allowed_and_unprotected_where_the_policy_allows() -> None:
    verdict = run(_basic_rate(D(100)))
    assert verdict.level is VerdictLevel.OK
    assert verdict.is_unprotected
    assert verdict.entry_id is None
    assert verdict.dose is None
    assert verdict.rate_ml_per_h == D(100)


def test_basic_infusion_is_refused_where_the_policy_forbids() -> None:
    assert refused(_basic_rate(D(100)), PEDS_AREA) == "program.basic_not_allowed"


def test_basic_infusion_needs_a_rate() -> None:
    assert refused(InfusionProgram(entry_id=None, kind=ProgramKind.BASIC)) == "program.rate_required"


def test_program_without_entry_must_say_it_is_basic() -> None:
    with pytest.raises(ProgramError) as caught:
        run(InfusionProgram(entry_id=None, rate_ml_per_h=D(600)))
    assert caught.value.code == "program.mode_mismatch"


def test_basic_program_naming_an_entry_is_refused() -> None:
    with pytest.raises(ProgramError) as caught:
        run(InfusionProgram(entry_id="icu-dopamine", kind=ProgramKind.BASIC, rate_ml_per_h=D(10)))
    assert caught.value.code == "program.mode_mismatch"


def test_basic_infusion_is_held_to_the_care_area_max_rate_and_vtbi() -> None:
    verdict = run(
        InfusionProgram(entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=D(1000), vtbi_ml=D(4001))
    )
    assert rules_of(verdict) == {
        "ders.basic.rate.hard_max",
        "ders.care_area.max_rate.hard_max",
        "ders.care_area.max_vtbi.hard_max",
    }


# --- refusals -----------------------------------------------------------------------------------------


def test_weight_based_entry_without_weight_is_refused() -> None:
    assert (
        refused(program("icu-dopamine", dose=D(5), patient=PatientParameters())) == "program.weight_required"
    )


def test_weight_based_bolus_without_weight_is_refused() -> None:
    prog = program(
        "icu-heparin", kind=ProgramKind.BOLUS, dose=D(80), duration_min=D(10), patient=PatientParameters()
    )
    assert refused(prog) == "program.weight_required"


def test_bsa_entry_without_bsa_is_refused() -> None:
    prog = program("icu-fluorouracil", dose=D(800), patient=PatientParameters(weight_kg=D(70)))
    assert refused(prog) == "program.bsa_required"


def test_route_mismatch_is_refused() -> None:
    assert refused(program("icu-dopamine", dose=D(5), route=Route.EPIDURAL)) == "program.route_mismatch"


def test_entry_of_another_care_area_is_refused() -> None:
    assert refused(program("peds-dopamine", dose=D(5))) == "program.care_area_mismatch"


def test_entry_with_several_concentrations_needs_one_chosen() -> None:
    with pytest.raises(ProgramError) as caught:
        run(dataclasses.replace(program("icu-dopamine", dose=D(5)), concentration=None))
    assert caught.value.code == "program.concentration_required"
    assert "400 mg/250 mL" in caught.value.message
    assert "800 mg/250 mL" in caught.value.message


def test_single_concentration_entry_needs_no_concentration() -> None:
    # 25000 units/250 mL = 100 units/mL; 18 units/kg/h x 70 kg = 1260 units/h = 12.6 mL/h
    assert run(program("icu-heparin", dose=D(18))).rate_ml_per_h_exact == D("12.6")


def test_listed_concentration_in_other_units_is_accepted_as_listed() -> None:
    verdict = run(program("icu-dopamine", dose=D(5), concentration=Concentration.parse("0.4 g/250 mL")))
    assert verdict.rate_ml_per_h_exact == D("13.125")
    assert alerts_for(verdict, "concentration") == []


def test_concentration_not_in_entry_is_refused_without_custom() -> None:
    prog = program("icu-dopamine", dose=D(5), concentration=Concentration.parse("200 mg/250 mL"))
    assert refused(prog) == "program.concentration_not_in_entry"


def test_concentration_of_another_dimension_is_refused_even_with_custom() -> None:
    prog = program("icu-norepinephrine", dose=D(5), concentration=Concentration.parse("4 units/250 mL"))
    assert refused(prog) == "program.concentration_not_in_entry"


def test_custom_concentration_is_accepted_and_checked() -> None:
    verdict = run(program("icu-norepinephrine", dose=D(5), concentration=Concentration.parse("16 mg/250 mL")))
    assert verdict.level is VerdictLevel.OK
    # 5 mcg/min = 0.3 mg/h at 0.064 mg/mL
    assert verdict.rate_ml_per_h_exact == D("0.3") / D("0.064")


def test_total_dose_without_duration_is_refused() -> None:
    prog = dataclasses.replace(program("icu-vancomycin", dose=D(1)), duration_min=None)
    assert refused(prog) == "program.duration_required"


def test_bolus_on_an_entry_without_bolus_is_refused() -> None:
    prog = program(
        "icu-dopamine", kind=ProgramKind.BOLUS, dose=D(5), concentration=Concentration.parse("400 mg/250 mL")
    )
    assert refused(prog) == "program.bolus_not_allowed"


def test_loading_on_an_entry_without_loading_is_refused() -> None:
    assert (
        refused(program("icu-heparin", kind=ProgramKind.LOADING, dose=D(5))) == "program.loading_not_allowed"
    )


def test_pca_program_without_settings_is_refused() -> None:
    assert refused(program("icu-morphine-pca", kind=ProgramKind.PCA)) == "program.pca_required"


def test_pca_basal_on_entry_without_basal_limits_is_refused() -> None:
    entry = LIBRARY.entry("icu-morphine-pca")
    assert entry.pca is not None
    no_basal = dataclasses.replace(entry, pca=dataclasses.replace(entry.pca, basal=None))
    library = dataclasses.replace(
        LIBRARY, entries=tuple(no_basal if e.id == entry.id else e for e in LIBRARY.entries)
    )
    with pytest.raises(ProgramError) as caught:
        check(library, ICU_AREA, pca_program(basal=D(1)))
    assert caught.value.code == "program.basal_not_allowed"


def test_pca_basal_gives_the_continuous_rate() -> None:
    # 0.5 mg/h at 1 mg/mL = 0.5 mL/h; no basal -> 0 mL/h
    assert run(pca_program(basal=D("0.5"))).rate_ml_per_h_exact == D("0.5")
    assert run(pca_program()).rate_ml_per_h == D(0)
    assert run(pca_program(basal=D(0))).rate_ml_per_h == D(0)


def test_pca_verdict_dose_is_the_demand_dose() -> None:
    verdict = run(pca_program(demand_dose=D("1.5")))
    assert verdict.dose == D("1.5")
    assert verdict.dose_unit == "mg"
    assert verdict.level is VerdictLevel.OK


def test_pca_settings_on_a_continuous_entry_are_refused() -> None:
    prog = program("icu-heparin", kind=ProgramKind.PCA, pca=pca_program().pca)
    assert refused(prog) == "program.mode_mismatch"


@pytest.mark.parametrize(
    ("entry_id", "kind"),
    [
        ("icu-dopamine", ProgramKind.INTERMITTENT),
        ("icu-vancomycin", ProgramKind.CONTINUOUS),
        ("icu-morphine-pca", ProgramKind.CONTINUOUS),
    ],
)
def test_program_kind_that_does_not_fit_the_entry_mode_is_refused(entry_id: str, kind: ProgramKind) -> None:
    prog = program(
        entry_id, kind=kind, dose=D(1), duration_min=D(60), concentration=Concentration.parse("400 mg/250 mL")
    )
    assert refused(prog) == "program.mode_mismatch"


def test_program_without_dose_or_rate_is_refused() -> None:
    assert refused(program("icu-heparin")) == "program.dose_required"


def test_rate_that_rounds_to_zero_is_a_hard_device_alert() -> None:
    prog = program("icu-heparin", dose=D(5), patient=PatientParameters(weight_kg=D("0.5")))
    # 5 units/kg/h x 0.5 kg = 2.5 units/h = 0.025 mL/h -> 0.0 at 0.1 mL/h: the pump cannot run it
    verdict = run(prog)
    assert verdict.level is VerdictLevel.HARD
    (alert,) = alerts_for(verdict, "device.rate")
    assert alert.rule == "ders.device.rate.hard_min"
    assert alert.value == D("0.025")
    assert alert.limit == D("0.1")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("rate_ml_per_h", D(0), "program.not_positive"),
        ("rate_ml_per_h", D(-5), "program.not_positive"),
        ("rate_ml_per_h", D("NaN"), "program.invalid_number"),
        ("dose", D(0), "program.not_positive"),
        ("dose", D(-5), "program.not_positive"),
        ("dose", D("NaN"), "program.invalid_number"),
        ("vtbi_ml", D(0), "program.not_positive"),
        ("vtbi_ml", D(-5), "program.not_positive"),
        ("vtbi_ml", D("NaN"), "program.invalid_number"),
    ],
    ids=lambda v: str(v),
)
def test_non_positive_or_non_numeric_program_values_are_refused(
    field: str, value: Decimal, code: str
) -> None:
    fields: dict[str, Any] = {"dose": D(18)}
    fields[field] = value
    if field == "rate_ml_per_h":
        del fields["dose"]
    assert refused(program("icu-heparin", **fields)) == code


@pytest.mark.parametrize(
    ("patient", "code"),
    [
        (PatientParameters(weight_kg=D(0)), "program.not_positive"),
        (PatientParameters(weight_kg=D(-70)), "program.not_positive"),
        (PatientParameters(weight_kg=D("NaN")), "program.invalid_number"),
        (PatientParameters(weight_kg=D(70), bsa_m2=D(0)), "program.not_positive"),
        (PatientParameters(weight_kg=D(70), height_cm=D(-1)), "program.not_positive"),
    ],
)
def test_invalid_patient_values_are_refused(patient: PatientParameters, code: str) -> None:
    assert refused(program("icu-heparin", dose=D(18), patient=patient)) == code


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("duration_min", D(0), "program.not_positive"),
        ("duration_min", D("NaN"), "program.invalid_number"),
    ],
)
def test_invalid_duration_is_refused(field: str, value: Decimal, code: str) -> None:
    assert refused(program("icu-vancomycin", dose=D(1), **{field: value})) == code


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("demand_dose", D(0), "program.not_positive"),
        ("lockout_min", D(-1), "program.not_positive"),
        ("demand_dose", D("NaN"), "program.invalid_number"),
    ],
)
def test_invalid_pca_values_are_refused(field: str, value: Decimal, code: str) -> None:
    assert refused(pca_program(**{field: value})) == code


# --- DERS-04: decimal-point and unit errors never come back ok ---------------------------------------


def _program_for(entry_id: str, value: Decimal, **extra: Any) -> InfusionProgram:
    if entry_id == "icu-ivf":
        return program(entry_id, rate_ml_per_h=value)
    conc = LIBRARY.entry(entry_id).concentrations[0]
    return program(entry_id, dose=value, concentration=conc, **extra)


def _entry_limits(entry_id: str) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    entry = LIBRARY.entry(entry_id)
    limit_set = entry.rate_ml_per_h.limits if entry.dose.limits.is_empty else entry.dose.limits
    low = limit_set.soft_min if limit_set.soft_min is not None else limit_set.hard_min
    return low, limit_set.soft_max, limit_set.hard_max


@pytest.mark.parametrize("entry_id", sorted(TYPICAL_DOSES))
def test_typical_dose_is_ok(entry_id: str) -> None:
    assert run(_program_for(entry_id, TYPICAL_DOSES[entry_id])).level is VerdictLevel.OK


@pytest.mark.parametrize("multiplier", [10, 100])
@pytest.mark.parametrize("entry_id", sorted(TYPICAL_DOSES))
def test_ten_and_hundred_fold_overdose_is_never_ok(entry_id: str, multiplier: int) -> None:
    value = TYPICAL_DOSES[entry_id] * multiplier
    _, _, hard_max = _entry_limits(entry_id)
    verdict = run(_program_for(entry_id, value))
    expected = VerdictLevel.HARD if hard_max is not None and value > hard_max else VerdictLevel.SOFT
    assert verdict.level is expected


@pytest.mark.parametrize("divisor", [10, 100])
@pytest.mark.parametrize("entry_id", sorted(e for e in TYPICAL_DOSES if _entry_limits(e)[0] is not None))
def test_ten_and_hundred_fold_underdose_alerts_when_a_minimum_exists(entry_id: str, divisor: int) -> None:
    verdict = run(
        _program_for(entry_id, TYPICAL_DOSES[entry_id] / divisor, rate_resolution_ml_per_h=D("0.001"))
    )
    assert verdict.level is not VerdictLevel.OK
    assert any(a.limit_kind in (LimitKind.SOFT_MIN, LimitKind.HARD_MIN) for a in verdict.alerts)


@pytest.mark.parametrize("entry_id", ["icu-dopamine", "icu-dopamine-renal", "icu-norepinephrine"])
def test_mcg_dose_entered_as_mg_is_hard(entry_id: str) -> None:
    entry_unit = LIBRARY.entry(entry_id).dosing_unit
    mg_unit = DoseUnit.parse(str(entry_unit).replace("mcg", "mg", 1))
    verdict = run(_program_for(entry_id, TYPICAL_DOSES[entry_id], dose_unit=mg_unit))
    assert verdict.level is VerdictLevel.HARD
    assert verdict.dose == TYPICAL_DOSES[entry_id] * 1000


def _pca_library_with_basal(unit: str) -> Any:
    entry = LIBRARY.entry("icu-morphine-pca")
    assert entry.pca is not None
    changed = dataclasses.replace(
        entry, pca=dataclasses.replace(entry.pca, basal=dose_limits(unit, hard_max=1))
    )
    return dataclasses.replace(
        LIBRARY, entries=tuple(changed if e.id == entry.id else e for e in LIBRARY.entries)
    )


def test_weight_based_pca_basal_without_weight_is_refused() -> None:
    library = _pca_library_with_basal("mg/kg/h")
    prog = dataclasses.replace(pca_program(basal=D("0.01")), patient=PatientParameters())
    with pytest.raises(ProgramError) as caught:
        check(library, ICU_AREA, prog)
    assert caught.value.code == "program.weight_required"


def test_weight_based_pca_basal_gives_the_rate() -> None:
    # 0.01 mg/kg/h x 70 kg = 0.7 mg/h at 1 mg/mL
    verdict = check(_pca_library_with_basal("mg/kg/h"), ICU_AREA, pca_program(basal=D("0.01")))
    assert verdict.rate_ml_per_h_exact == D("0.7")


def test_negative_pca_basal_is_refused() -> None:
    assert refused(pca_program(basal=D(-1))) == "program.not_positive"


def test_total_dose_in_another_mass_unit_is_converted() -> None:
    verdict = run(program("icu-vancomycin", dose=D(1500), dose_unit=DoseUnit.parse("mg"), duration_min=D(90)))
    assert verdict.dose == D("1.5")
    # 1500 mg at 4 mg/mL = 375 mL over 1.5 h
    assert verdict.rate_ml_per_h_exact == D(250)


def test_verdict_does_not_depend_on_the_callers_decimal_context() -> None:
    prog = program(
        "icu-dopamine",
        dose=D("1234.5678"),
        dose_unit=DoseUnit.parse("mcg/kg/h"),
        concentration=Concentration.parse("800 mg/250 mL"),
        rate_resolution_ml_per_h=D("0.01"),
    )
    expected = run(prog)
    with localcontext(Context(prec=4)):
        assert run(prog) == expected


# --- IV fluids: one value, one alert ----------------------------------------------------------------


def _fluid_library_with_dose_limits() -> Any:
    """The ICU fluid dosed in mL/h with the same limits on dose and rate (as an Alaris import holds it)."""
    fluid = LIBRARY.entry("icu-ivf")
    same = dose_limits("mL/h", soft_min=10, soft_max=250, hard_max=500)
    entries = tuple(dataclasses.replace(e, dose=same) if e.id == fluid.id else e for e in LIBRARY.entries)
    return dataclasses.replace(LIBRARY, entries=entries)


def test_iv_fluid_dosed_in_ml_per_h_alerts_once_not_as_dose_and_rate() -> None:
    library = _fluid_library_with_dose_limits()
    verdict = check(library, ICU_AREA, program("icu-ivf", rate_ml_per_h=D(300)))
    assert rules_of(verdict) == {"ders.dose.soft_max"}
    (alert,) = verdict.alerts
    assert (alert.value, alert.unit) == (D(300), "mL/h")
    hard = check(library, ICU_AREA, program("icu-ivf", rate_ml_per_h=D(600)))
    assert rules_of(hard) == {"ders.dose.hard_max"}


def test_rate_limits_that_differ_from_ml_per_h_dose_limits_still_alert() -> None:
    fluid = LIBRARY.entry("icu-ivf")
    tighter = dataclasses.replace(fluid, dose=dose_limits("mL/h", soft_max=400))
    library = dataclasses.replace(
        LIBRARY, entries=tuple(tighter if e.id == fluid.id else e for e in LIBRARY.entries)
    )
    verdict = check(library, ICU_AREA, program("icu-ivf", rate_ml_per_h=D(300)))
    assert rules_of(verdict) == {"ders.rate.soft_max"}
