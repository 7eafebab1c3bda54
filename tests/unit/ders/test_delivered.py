"""Delivered equals checked: the verdict holds the dose the pump really delivers (rounded rate, volume
that holds a total dose, device limits) and offers deliverable alternatives instead of clamping."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.ders.check import check
from smartpump.ders.program import DeviceLimits, InfusionProgram, PatientParameters, ProgramKind, Verdict
from smartpump.ders.program import VerdictLevel as Level
from smartpump.errors import ProgramError
from smartpump.units import Concentration, DoseUnit, rate_to_dose, volume_to_dose
from tests.unit.ders import ICU_AREA, LIBRARY, pca_program, program

D = Decimal
DOPAMINE_400 = Concentration.parse("400 mg/250 mL")
MCG_KG_MIN = DoseUnit.parse("mcg/kg/min")
GRAMS = DoseUnit.parse("g")
VANCO = Concentration.parse("1 g/250 mL")
LVP = DeviceLimits(min_rate_ml_per_h=D("0.1"), max_rate_ml_per_h=D(999), max_vtbi_ml=D(9999))


def run(prog: InfusionProgram, device: DeviceLimits | None = None) -> Verdict:
    return check(LIBRARY, ICU_AREA, prog, device)


def same(value: Decimal | None, expected: Decimal) -> bool:
    """Equal to 38 significant digits: delivered doses are exact to the 40 digits of the unit math."""
    return value is not None and abs(value - expected) <= D("1e-38") * max(D(1), abs(expected))


def rules(verdict: Verdict) -> set[str]:
    return {a.rule for a in verdict.alerts}


ADULT_KG = D(70)


def dopamine_delivered(rate_ml_per_h: Decimal, weight_kg: Decimal = ADULT_KG) -> Decimal:
    return rate_to_dose(rate_ml_per_h, MCG_KG_MIN, DOPAMINE_400, weight_kg=weight_kg)


# --- continuous: the rounded rate ---------------------------------------------------------------------


def test_dose_on_the_hard_max_that_rounds_above_it_is_a_hard_stop_with_deliverable_rates() -> None:
    # 30 mcg/kg/min x 70 kg at 1.6 mg/mL = 78.75 mL/h -> the pump would run 78.8 = 30.019 mcg/kg/min
    verdict = run(program("icu-dopamine", dose=D(30)))
    assert verdict.rate_ml_per_h == D("78.8")
    assert verdict.dose_programmed == D(30)
    assert same(verdict.dose, dopamine_delivered(D("78.8")))
    assert verdict.level is Level.HARD
    (alert,) = verdict.alerts
    assert alert.rule == "ders.dose.hard_max"
    assert alert.value == verdict.dose
    (alternative,) = verdict.deliverable
    assert alternative.rate_ml_per_h == D("78.7")
    assert same(alternative.dose, dopamine_delivered(D("78.7")))
    assert alternative.dose < D(30)


def test_a_finer_pump_runs_the_hard_max_exactly() -> None:
    verdict = run(
        dataclasses.replace(program("icu-dopamine", dose=D(30)), rate_resolution_ml_per_h=D("0.01"))
    )
    assert verdict.rate_ml_per_h == D("78.75")
    assert verdict.dose == D(30)
    assert rules(verdict) == {"ders.dose.soft_max"}
    assert verdict.deliverable == ()


def test_a_typed_rate_is_checked_as_the_rate_the_pump_runs() -> None:
    # 78.76 mL/h typed on a 0.1 mL/h pump runs 78.8: the same verdict as the dose that gives 78.8
    verdict = run(program("icu-dopamine", rate_ml_per_h=D("78.76")))
    assert verdict.rate_ml_per_h == D("78.8")
    assert same(verdict.dose, dopamine_delivered(D("78.8")))
    assert rules(verdict) == {"ders.dose.hard_max"}


def test_rounding_down_below_a_soft_min_is_a_soft_alert_on_the_delivered_dose() -> None:
    # 2 mcg/kg/min (soft min) = 5.25 mL/h exactly: ok; 2.001 -> 5.25262 -> 5.3: ok; 2.0 at 0.1: ok
    assert run(program("icu-dopamine", dose=D(2))).level is Level.OK
    low = run(program("icu-dopamine", dose=D("2.01"), patient=PatientParameters(weight_kg=D(33))))
    # 2.01 x 33 x 60 / 1600 = 2.487375 mL/h -> 2.5 = 2.0202 mcg/kg/min: inside
    assert same(low.dose, dopamine_delivered(D("2.5"), D(33)))
    assert low.level is Level.OK


# --- total doses: the volume that holds them ------------------------------------------------------------


def test_an_intermittent_without_vtbi_runs_the_volume_that_holds_its_dose() -> None:
    verdict = run(program("icu-vancomycin", dose=D(1), duration_min=D(60)))
    assert verdict.vtbi_ml == D(250)
    assert verdict.dose == D(1)
    assert verdict.rate_ml_per_h == D(250)


def test_a_vtbi_that_disagrees_with_the_dose_is_checked_as_the_dose_it_holds() -> None:
    # 1 g ordered, but VTBI 1000 mL of 4 mg/mL = 4 g: hard (hard max 3 g), whatever the order says
    verdict = run(program("icu-vancomycin", dose=D(1), duration_min=D(120), vtbi_ml=D(1000)))
    assert verdict.dose_programmed == D(1)
    assert verdict.dose == D(4)
    assert verdict.vtbi_ml == D(1000)
    assert verdict.level is Level.HARD
    (alert,) = [a for a in verdict.alerts if a.parameter == "dose"]
    assert alert.rule == "ders.dose.hard_max"
    assert alert.value == D(4)
    # the rate gives the programmed volume over the programmed duration
    assert verdict.rate_ml_per_h == D(500)


def test_a_smaller_vtbi_delivers_less_and_says_so() -> None:
    verdict = run(program("icu-vancomycin", dose=D(1), duration_min=D(120), vtbi_ml=D(100)))
    assert verdict.dose == D("0.4")
    assert rules(verdict) == {"ders.dose.soft_min"}


def test_a_total_dose_volume_is_rounded_half_up_once_and_its_dose_checked() -> None:
    # amiodarone loading 100.00005 mg at 1.5 mg/mL = 66.6667 mL -> 66.7 mL at 0.1 mL = 100.05 mg
    verdict = run(program("icu-amiodarone", kind=ProgramKind.LOADING, dose=D(100), duration_min=D(20)))
    assert verdict.vtbi_ml == D("66.7")
    assert verdict.dose == D("100.05")
    assert verdict.level is Level.OK


def test_a_programmed_total_dose_above_the_hard_max_stays_refused_when_its_volume_rounds_onto_it() -> None:
    # 299.99 mg at 1.5 mg/mL = 199.99333 mL -> 200.0 mL = 300 mg (on the limit: inside)
    inside = run(program("icu-amiodarone", kind=ProgramKind.LOADING, dose=D("299.99"), duration_min=D(20)))
    assert inside.dose == D(300)
    assert "ders.loading_dose.hard_max" not in rules(inside)
    # on a 1 mL pump 300.6 mg = 200.4 mL -> 200 mL = 300 mg: still refused, on the dose as programmed
    coarse = dataclasses.replace(
        program("icu-amiodarone", kind=ProgramKind.LOADING, dose=D("300.6"), duration_min=D(20)),
        vtbi_resolution_ml=D(1),
    )
    verdict = run(coarse)
    assert verdict.dose == D(300)
    assert verdict.dose_programmed == D("300.6")
    assert rules(verdict) == {"ders.loading_dose.hard_max"}
    assert verdict.alerts[0].value == D("300.6")


def test_deliverable_volumes_are_offered_when_rounding_up_crosses_the_hard_max() -> None:
    # 300 mg at 1.8 mg/mL would be 166.67 mL; on a 0.1 mL pump 166.7 mL = 300.06 mg > 300
    prog = dataclasses.replace(
        program("icu-amiodarone", kind=ProgramKind.LOADING, dose=D(300), duration_min=D(20)),
        concentration=None,
    )
    entry = LIBRARY.entry("icu-amiodarone")
    library = dataclasses.replace(
        LIBRARY,
        entries=tuple(
            dataclasses.replace(e, concentrations=(Concentration.parse("450 mg/250 mL"),))
            if e is entry
            else e
            for e in LIBRARY.entries
        ),
    )
    verdict = check(library, ICU_AREA, prog)
    assert verdict.vtbi_ml == D("166.7")
    assert verdict.level is Level.HARD
    (alternative,) = verdict.deliverable
    assert alternative.vtbi_ml == D("166.6")
    assert alternative.dose == D("299.88")
    assert alternative.rate_ml_per_h == D("499.8")


def test_an_intermittent_given_as_a_rate_without_duration_or_vtbi_is_refused() -> None:
    prog = dataclasses.replace(program("icu-vancomycin", rate_ml_per_h=D(100)), duration_min=None)
    with pytest.raises(ProgramError) as caught:
        run(prog)
    assert caught.value.code == "program.vtbi_required"


# --- device limits are hard alerts --------------------------------------------------------------------


def test_device_limits_are_hard_alerts_in_the_verdict() -> None:
    syringe = DeviceLimits(
        min_rate_ml_per_h=D("0.01"),
        max_rate_ml_per_h=D(200),
        max_vtbi_ml=D(60),
        rate_cap_ml_per_h=D(150),
        container_left_ml=D(50),
    )
    fast = run(program("icu-ivf", rate_ml_per_h=D(250), vtbi_ml=D(70)), syringe)
    assert {
        "ders.device.rate.hard_max",
        "ders.device.rate_cap.hard_max",
        "ders.device.vtbi.hard_max",
        "ders.device.container.hard_max",
    } <= rules(fast)
    assert fast.level is Level.HARD
    capped = run(program("icu-ivf", rate_ml_per_h=D("150.1")), syringe)
    assert rules(capped) == {"ders.device.rate_cap.hard_max"}
    on_cap = run(program("icu-ivf", rate_ml_per_h=D(150), vtbi_ml=D(50)), syringe)
    assert not any(r.startswith("ders.device.") for r in rules(on_cap))


def test_a_rate_below_the_device_minimum_is_a_hard_alert_not_an_error() -> None:
    verdict = run(program("icu-ivf", rate_ml_per_h=D("0.04")), LVP)
    assert rules(verdict) >= {"ders.device.rate.hard_min"}
    assert verdict.level is Level.HARD


# --- PCA basal at the rate the pump runs ----------------------------------------------------------------


def test_pca_basal_is_checked_at_the_rate_the_pump_runs() -> None:
    # basal 2 mg/h (hard max) at 1 mg/mL = 2 mL/h exactly: inside
    assert "ders.pca.basal.hard_max" not in rules(run(pca_program(basal=D(2))))
    # basal 1.96 mg/h on a 0.1 mL/h pump runs 2.0 mL/h = 2 mg/h: on the limit, inside
    assert "ders.pca.basal.hard_max" not in rules(run(pca_program(basal=D("1.96"))))
    # on a 1 mL/h pump a 2.5 mg/h basal (programmed: soft) runs 3 mL/h = 3 mg/h: held as 3, hard
    coarse = dataclasses.replace(pca_program(basal=D("2.5")), rate_resolution_ml_per_h=D(1))
    verdict = run(coarse)
    assert verdict.rate_ml_per_h == D(3)
    assert [a.value for a in verdict.alerts if a.parameter == "pca.basal"] == [D(3)]


# --- the property -------------------------------------------------------------------------------------


@given(
    dose=st.decimals(min_value=D("0.5"), max_value=D(60), places=3),
    weight=st.decimals(min_value=D(30), max_value=D(150), places=1),
    resolution=st.sampled_from([D("0.1"), D("0.01"), D(1)]),
)
def test_a_continuous_program_that_may_start_never_delivers_above_the_hard_max(
    dose: Decimal, weight: Decimal, resolution: Decimal
) -> None:
    prog = dataclasses.replace(
        program("icu-dopamine", dose=dose, patient=PatientParameters(weight_kg=weight)),
        rate_resolution_ml_per_h=resolution,
    )
    verdict = run(prog, LVP)
    delivered = dopamine_delivered(verdict.rate_ml_per_h, weight)
    assert same(verdict.dose, delivered)
    if verdict.level is not Level.HARD:
        assert delivered <= D(30)
        assert verdict.rate_ml_per_h % resolution == 0


@given(
    dose=st.decimals(min_value=D("0.1"), max_value=D(5), places=4),
    vtbi=st.none() | st.decimals(min_value=D(1), max_value=D(1500), places=1),
    resolution=st.sampled_from([D("0.1"), D(1)]),
)
def test_an_intermittent_that_may_start_never_holds_more_than_the_hard_max(
    dose: Decimal, vtbi: Decimal | None, resolution: Decimal
) -> None:
    prog = dataclasses.replace(
        program("icu-vancomycin", dose=dose, duration_min=D(120), vtbi_ml=vtbi), vtbi_resolution_ml=resolution
    )
    verdict = run(prog, LVP)
    assert verdict.vtbi_ml is not None
    held = volume_to_dose(verdict.vtbi_ml, GRAMS, VANCO)
    assert verdict.dose == held
    if verdict.level is not Level.HARD:
        assert held <= D(3)
