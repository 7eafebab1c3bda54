"""Delivered equals checked (issue 13) on every non-PCA path of the pump: device limits are hard alerts
in the verdict, a therapy runs the verdict's rate and volume, a titration keeps the running drug,
concentration, kind and patient, the patient's parameters belong to the pump, and a bolus or
piggyback is bound to what the channel runs. Each test names the defect it prevents."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from smartpump.clock import ManualClock
from smartpump.ders.program import NO_PATIENT, InfusionProgram, PatientParameters, VerdictLevel
from smartpump.errors import PumpError
from smartpump.pump import ChannelState, EventType, OverrideReason, Pump, PumpModel, Step
from smartpump.units import Concentration, DoseUnit, rate_to_dose, volume_to_dose
from tests.unit.pump.delivered import (
    KG_70,
    bolus,
    delivered_library,
    delivered_pump,
    gentamicin,
    heparin,
    insulin,
    kcl,
    labetalol,
    vancomycin,
)
from tests.unit.pump.library import basic, dopamine, morphine_pca, start

D = Decimal
DOPAMINE_400 = Concentration.parse("400 mg/250 mL")
VANCOMYCIN = Concentration.parse("1000 mg/250 mL")
MCG_KG_MIN = DoseUnit.parse("mcg/kg/min")


def _refused_program(pump: Pump, cid: str, program: InfusionProgram) -> PumpError:
    """Program on a channel and expect a refusal that is also logged as program.refused."""
    with pytest.raises(PumpError) as refused:
        pump.program(cid, program)
    logged = pump.events.of_type(EventType.PROGRAM_REFUSED)[-1]
    assert (logged.channel, logged.data["code"]) == (cid, refused.value.code)
    return refused.value


def _dopamine_by_rate(rate: str) -> InfusionProgram:
    """Dopamine 400 mg/250 mL programmed as a rate, for the patient on the pump."""
    return InfusionProgram(entry_id="icu-dopamine", rate_ml_per_h=D(rate), concentration=DOPAMINE_400)


def _close(value: Decimal | None, expected: Decimal) -> bool:
    return value is not None and abs(value - expected) <= D("1e-30")


# --- device limits are hard alerts in the verdict --------------------------------------------------------


def test_a_rate_below_the_resolution_is_a_hard_device_alert_not_an_invalid_request() -> None:
    # defect: a dose below the pump's resolution was refused as invalid instead of shown as a hard limit
    pump, _ = delivered_pump()
    verdict = pump.program("A", basic("0.04"))
    assert verdict.level is VerdictLevel.HARD and verdict.rate_ml_per_h == 0
    [alert] = verdict.alerts
    assert (alert.rule, alert.value, alert.limit) == ("ders.device.rate.hard_min", D("0.04"), D("0.1"))
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.hard_stop" and "ders.device.rate.hard_min" in refused.value.message


def test_a_dose_on_the_hard_max_that_rounds_above_it_is_a_hard_stop_with_the_deliverable_rates() -> None:
    # defect: 30 mcg/kg/min (the hard max) ran at 78.8 mL/h = 30.02 mcg/kg/min with a soft verdict
    pump, _ = delivered_pump()
    verdict = pump.program("A", dopamine("30"))
    assert verdict.level is VerdictLevel.HARD and verdict.rate_ml_per_h == D("78.8")
    assert _close(verdict.dose, rate_to_dose(D("78.8"), MCG_KG_MIN, DOPAMINE_400, weight_kg=D(70)))
    checked = pump.events.of_type(EventType.PROGRAM_CHECKED)[-1].data
    assert checked["dose_programmed"] == D(30) and checked["dose"] == verdict.dose
    deliverable = checked["deliverable"]
    assert isinstance(deliverable, list)
    assert [d["rate_ml_per_h"] for d in deliverable] == [D("78.7")]
    with pytest.raises(PumpError):
        pump.confirm("A")
    assert pump.events.of_type(EventType.INFUSION_STARTED) == []


@pytest.mark.parametrize(
    ("model", "vtbi_ml", "resolution_ml"),
    [(PumpModel.LVP, D("25.3"), D("0.1")), (PumpModel.SYRINGE, D("25.25"), D("0.01"))],
)
def test_the_volume_that_holds_a_dose_is_rounded_to_the_models_vtbi_step(
    model: PumpModel, vtbi_ml: Decimal, resolution_ml: Decimal
) -> None:
    # defect: the pump checked volumes at 0.1 mL whatever its own VTBI step (101 mg = 25.25 mL)
    pump, _ = delivered_pump(model)
    verdict = pump.program("A", vancomycin("101"))
    pending = pump.channel("A").pending
    assert pending is not None and pending.program.vtbi_resolution_ml == resolution_ml
    assert verdict.vtbi_ml == vtbi_ml


def test_a_programmed_vtbi_finer_than_the_models_step_is_refused() -> None:
    # defect: a VTBI the pump cannot measure out would run as another volume
    pump, _ = delivered_pump()
    assert _refused_program(pump, "A", basic("100", vtbi="12.34")).code == "pump.vtbi_resolution"


def test_a_multistep_rate_the_pump_cannot_run_exactly_is_refused() -> None:
    # defect: a step rate was checked rounded but run as typed
    pump, _ = delivered_pump()
    steps = (Step(rate_ml_per_h=D("10.04"), volume_ml=D(5)), Step(rate_ml_per_h=D(20), volume_ml=D(10)))
    with pytest.raises(PumpError) as refused:
        pump.program("A", basic("10", vtbi=None), steps=steps)
    assert refused.value.code == "pump.rate_resolution"


def test_an_entry_for_another_kind_of_pump_is_still_refused() -> None:
    pump, _ = delivered_pump()
    assert _refused_program(pump, "A", morphine_pca()).code == "pump.device_not_allowed"


# --- the therapy runs the verdict ------------------------------------------------------------------------


def test_an_intermittent_without_vtbi_stops_after_the_volume_that_holds_its_dose() -> None:
    # defect: vancomycin 1000 mg over 60 min without a VTBI ran on (3000 mg after 3 h)
    pump, clock = delivered_pump()
    verdict = pump.program("A", vancomycin("1000"))
    assert (verdict.vtbi_ml, verdict.rate_ml_per_h) == (D(250), D(250))
    pump.confirm("A")
    pump.start("A")
    assert pump.events.of_type(EventType.INFUSION_STARTED)[-1].data["vtbi_ml"] == D(250)
    clock.advance(3 * 3600)
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.infused_ml == D(250)
    assert pump.channel("A").state is ChannelState.KVO
    assert volume_to_dose(therapy.infused_ml, DoseUnit.parse("mg"), VANCOMYCIN) == D(1000)
    started = pump.events.of_type(EventType.INFUSION_STARTED)[-1].ts
    completed = pump.events.of_type(EventType.INFUSION_COMPLETED)[-1].ts
    assert (completed - started).total_seconds() == 3600


def test_kcl_with_a_vtbi_holding_ten_times_its_dose_is_a_hard_stop() -> None:
    # defect: KCl 10 mEq with VTBI 1000 mL was ok and infused 100 mEq (hard max 41)
    pump, _ = delivered_pump()
    verdict = pump.program("A", kcl("10", vtbi="1000", minutes="600"))
    assert verdict.level is VerdictLevel.HARD
    [alert] = verdict.alerts
    assert (alert.rule, alert.value) == ("ders.dose.hard_max", D(100))
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.hard_stop"
    pump.reprogram("A", kcl("10"))
    pump.confirm("A")
    pump.start("A")
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.vtbi_ml == D(100)


def test_a_multistep_program_runs_its_steps_total_and_starts_at_the_first_step() -> None:
    # defect: a later step's worse verdict replaced the first step's rate at the start
    pump, clock = delivered_pump()
    steps = (Step(rate_ml_per_h=D(100), volume_ml=D(50)), Step(rate_ml_per_h=D(600), volume_ml=D(50)))
    verdict = pump.program("A", basic("100", vtbi=None), steps=steps)
    assert verdict.level is VerdictLevel.SOFT and verdict.rate_ml_per_h == D(100)
    assert {a.rule: a.value for a in verdict.alerts} == {"ders.basic.rate.soft_max": D(600)}
    pump.override("A", OverrideReason.PRESCRIBER_ORDER)
    pump.confirm("A")
    pump.start("A")
    assert pump.channel("A").flow_ml_per_h == D(100)
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.vtbi_ml == D(100)
    clock.advance(1800)
    pump.sync()
    assert pump.channel("A").flow_ml_per_h == D(600)
    clock.advance(300)
    pump.sync()
    assert therapy.infused_ml == D(100) and pump.channel("A").state is ChannelState.KVO


def test_infusion_started_carries_the_delivered_and_the_programmed_dose() -> None:
    # defect: the event log documented the programmed dose, not the one delivered at 13.1 mL/h
    pump, _ = delivered_pump()
    start(pump, "A", dopamine("5"))
    data = pump.events.of_type(EventType.INFUSION_STARTED)[-1].data
    assert data["dose_programmed"] == D(5) and data["rate_ml_per_h"] == D("13.1")
    assert _close(data["dose"], rate_to_dose(D("13.1"), MCG_KG_MIN, DOPAMINE_400, weight_kg=D(70)))  # type: ignore[arg-type]


# --- a titration keeps the running drug, container, kind and patient ------------------------------------


def test_a_titration_to_another_drug_is_refused_naming_the_running_one() -> None:
    # defect: labetalol accepted as a titration of a dopamine bag (dopamine ran at 40 mcg/kg/min)
    pump, _ = delivered_pump()
    start(pump, "A", dopamine("5"))
    error = _refused_program(pump, "A", labetalol("2"))
    assert error.code == "pump.titration_entry" and "DOPamine" in error.message
    assert pump.channel("A").pending is None and pump.channel("A").flow_ml_per_h == D("13.1")


def test_a_titration_to_another_concentration_is_refused() -> None:
    # defect: a titration naming another concentration was run from the bag on the channel
    pump, _ = delivered_pump()
    start(pump, "A", dopamine("5"))
    double = replace(dopamine("10"), concentration=Concentration.parse("800 mg/250 mL"))
    assert _refused_program(pump, "A", double).code == "pump.titration_concentration"


def test_a_titration_without_a_concentration_runs_on_the_one_in_the_channel() -> None:
    pump, _ = delivered_pump()
    start(pump, "A", dopamine("5"))
    verdict = pump.program("A", replace(dopamine("10"), concentration=None))
    assert verdict.rate_ml_per_h == D("26.3")
    pump.confirm("A")
    assert pump.channel("A").flow_ml_per_h == D("26.3")
    same_strength = replace(dopamine("5"), concentration=Concentration.parse("1.6 mg/mL"))
    assert pump.program("A", same_strength).rate_ml_per_h == D("13.1")


def test_a_titration_cannot_change_the_kind_of_delivery() -> None:
    # defect: an intermittent dose could be turned into an open-ended continuous rate
    pump, _ = delivered_pump()
    start(pump, "A", vancomycin("1000"))
    continuous = InfusionProgram(entry_id="icu-vancomycin", rate_ml_per_h=D(100))
    assert _refused_program(pump, "A", continuous).code == "pump.titration_kind"


def test_a_basic_infusion_titrates_only_to_basic() -> None:
    pump, _ = delivered_pump()
    start(pump, "A", basic("50", vtbi="500"))
    error = _refused_program(pump, "A", dopamine("5"))
    assert error.code == "pump.titration_entry" and "basic infusion" in error.message
    pump.program("A", basic("80", vtbi="500"))
    pump.confirm("A")
    assert pump.channel("A").flow_ml_per_h == D(80)


def test_a_multistep_program_is_not_titrated_so_its_steps_keep_the_rates_they_were_checked_at() -> None:
    # defect (found by the stateful machine on the demo library, NICU dobutamine): a titration of a running
    # multistep program kept its steps, and a weight change then left the titrated rate running
    # (1.0 mL/h = 33.3 mcg/kg/min at 0.5 kg, hard max 25) because multistep rates are never rescaled
    pump, _ = delivered_pump()
    steps = (Step(rate_ml_per_h=D(10), volume_ml=D(5)), Step(rate_ml_per_h=D(20), volume_ml=D(10)))
    pump.program("A", basic("10", vtbi=None), steps=steps)
    pump.confirm("A")
    pump.start("A")
    error = _refused_program(pump, "A", basic("30", vtbi="500"))
    assert error.code == "pump.titration_multistep" and "stop and a new program" in error.message
    assert pump.channel("A").pending is None and pump.channel("A").flow_ml_per_h == D(10)


def test_a_titration_for_another_weight_is_refused() -> None:
    # defect: a titration with another weight silently re-based a running weight-based dose
    pump, _ = delivered_pump()
    start(pump, "A", dopamine("5"))
    heavier = replace(dopamine("5"), patient=PatientParameters(weight_kg=D(80)))
    error = _refused_program(pump, "A", heavier)
    assert error.code == "pump.titration_weight" and "change the patient's weight first" in error.message


# --- the patient's parameters belong to the pump ---------------------------------------------------------


def test_programs_without_a_patient_take_the_pumps_parameters() -> None:
    pump, _ = delivered_pump()
    assert pump.set_patient_parameters(weight_kg=D(70)) == PatientParameters(weight_kg=D(70))
    changed = pump.events.of_type(EventType.PATIENT_PARAMETERS_CHANGED)[-1].data
    assert (changed["weight_kg"], changed["previous_weight_kg"], changed["rechecked"]) == (D(70), None, [])
    verdict = pump.program("A", replace(dopamine("5"), patient=NO_PATIENT))
    assert verdict.rate_ml_per_h == D("13.1")
    assert pump.events.of_type(EventType.PROGRAM_CHECKED)[-1].data["weight_kg"] == D(70)


def test_a_weight_change_rechecks_the_running_dose_and_runs_the_rate_that_holds_it() -> None:
    # defect: weight belonged to each program, so a corrected weight never reached the running dose
    pump, _ = delivered_pump()
    pump.set_patient_parameters(weight_kg=D(70))
    start(pump, "A", replace(dopamine("5"), patient=NO_PATIENT))
    pump.set_patient_parameters(weight_kg=D(80))
    changed = pump.events.of_type(EventType.RATE_CHANGED)[-1].data
    assert (changed["old_rate_ml_per_h"], changed["new_rate_ml_per_h"]) == (D("13.1"), D(15))
    assert (changed["cause"], changed["dose"]) == ("patient_parameters", D(5))
    all_rechecked = pump.events.of_type(EventType.PATIENT_PARAMETERS_CHANGED)[-1].data["rechecked"]
    assert isinstance(all_rechecked, list)
    [rechecked] = all_rechecked
    assert (rechecked["channel"], rechecked["verdict"], rechecked["rate_ml_per_h"]) == ("A", "ok", D(15))
    assert pump.channel("A").flow_ml_per_h == D(15)
    assert pump.program("A", replace(dopamine("6"), patient=NO_PATIENT)).rate_ml_per_h == D(18)


def test_a_weight_change_that_crosses_a_hard_limit_is_refused_and_changes_nothing() -> None:
    # defect: halving the weight of a rate-programmed dopamine doubled its dose past the hard max
    pump, _ = delivered_pump()
    pump.set_patient_parameters(weight_kg=D(70))
    start(pump, "A", _dopamine_by_rate("52.5"))  # 20 mcg/kg/min for 70 kg
    with pytest.raises(PumpError) as refused:
        pump.set_patient_parameters(weight_kg=D(35))  # 40 mcg/kg/min
    assert refused.value.code == "pump.patient_change_refused"
    assert "ders.dose.hard_max" in refused.value.message and "channel A" in refused.value.message
    assert pump.patient_parameters == PatientParameters(weight_kg=D(70))
    assert len(pump.events.of_type(EventType.PATIENT_PARAMETERS_CHANGED)) == 1
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.program.patient == PatientParameters(weight_kg=D(70))
    assert pump.channel("A").flow_ml_per_h == D("52.5")


def test_a_weight_change_with_soft_alerts_needs_an_override_with_a_reason() -> None:
    pump, _ = delivered_pump()
    pump.set_patient_parameters(weight_kg=D(70))
    start(pump, "A", _dopamine_by_rate("52.5"))
    with pytest.raises(PumpError) as refused:
        pump.set_patient_parameters(weight_kg=D(60))  # 23.3 mcg/kg/min: above the soft max 20
    assert refused.value.code == "pump.override_required"
    assert pump.patient_parameters.weight_kg == D(70)
    pump.set_patient_parameters(weight_kg=D(60), override=OverrideReason.PATIENT_CONDITION)
    overridden = pump.events.of_type(EventType.ALERT_OVERRIDDEN)[-1]
    assert (overridden.channel, overridden.data["reason"]) == ("A", "patient_condition")
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.verdict.level is VerdictLevel.SOFT
    assert pump.channel("A").flow_ml_per_h == D("52.5")  # programmed as a rate: the rate stays
    assert pump.events.of_type(EventType.RATE_CHANGED) == []


def test_a_weight_based_intermittent_runs_the_volume_that_holds_its_dose_for_the_new_weight() -> None:
    pump, _ = delivered_pump()
    pump.set_patient_parameters(weight_kg=D(70))
    start(pump, "A", gentamicin("5", patient=NO_PATIENT))  # 350 mg = 87.5 mL over 30 min
    therapy = pump.channel("A").therapy
    assert therapy is not None and (therapy.vtbi_ml, therapy.rate_ml_per_h) == (D("87.5"), D(175))
    pump.set_patient_parameters(weight_kg=D(80))  # 400 mg = 100 mL
    assert (therapy.vtbi_ml, therapy.rate_ml_per_h) == (D(100), D(200))


def test_the_patient_cannot_change_under_a_pending_program_and_bad_values_are_refused() -> None:
    pump, _ = delivered_pump()
    pump.program("A", dopamine("5"))
    with pytest.raises(PumpError) as pending:
        pump.set_patient_parameters(weight_kg=D(70))
    assert pending.value.code == "pump.patient_change_refused"
    pump.cancel("A")
    for bad in (D(-1), D(0), D("NaN")):
        with pytest.raises(PumpError) as invalid:
            pump.set_patient_parameters(weight_kg=bad)
        assert invalid.value.code == "pump.patient_invalid"
    with pytest.raises(PumpError) as reason:
        pump.set_patient_parameters(weight_kg=D(70), override="because")
    assert reason.value.code == "pump.override_reason"
    assert pump.patient_parameters == NO_PATIENT


def test_a_weight_corrected_down_after_more_than_its_dose_went_in_is_refused() -> None:
    # found by the whole-pump machine: an intermittent in mg/kg re-run for a higher weight, then the weight
    # corrected back down: what had gone in was above the hard max for the corrected weight
    pump, clock = delivered_pump()
    pump.set_patient_parameters(weight_kg=D(40))
    start(pump, "A", gentamicin("6", patient=NO_PATIENT))  # 240 mg = 60 mL
    pump.set_patient_parameters(weight_kg=D(100))  # 600 mg = 150 mL, now at 300 mL/h
    clock.advance(25 * 60)
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None
    infused = therapy.infused_ml
    assert infused == D(125)  # 500 mg: 12.5 mg/kg for 40 kg, above the hard max 10
    with pytest.raises(PumpError) as refused:
        pump.set_patient_parameters(weight_kg=D(40))
    assert refused.value.code == "pump.patient_change_refused"
    assert "12.5 mg/kg" in refused.value.message and "hard max 10" in refused.value.message
    assert pump.patient_parameters == PatientParameters(weight_kg=D(100))
    # below the hard max for the new weight the correction is taken
    pump.set_patient_parameters(weight_kg=D(80))  # 500 mg = 6.25 mg/kg
    assert pump.patient_parameters == PatientParameters(weight_kg=D(80))


def test_the_patients_parameters_survive_a_restart() -> None:
    # defect: after a power cycle a titration without a patient no longer matched the running one
    pump, clock = delivered_pump()
    pump.set_patient_parameters(weight_kg=D(70), height_cm=D(170))
    start(pump, "A", replace(dopamine("5"), patient=NO_PATIENT))
    state = json.loads(json.dumps(pump.to_state()))
    later = ManualClock(start=clock.now() + timedelta(seconds=60))
    restarted = Pump.from_state(state, later, delivered_library())
    assert restarted.patient_parameters == PatientParameters(weight_kg=D(70), height_cm=D(170))
    restarted.resume("A")
    assert restarted.program("A", replace(dopamine("6"), patient=NO_PATIENT)).rate_ml_per_h == D("15.8")


# --- bolus, loading and piggyback are bound to what the channel runs ------------------------------------


def test_an_insulin_bolus_on_a_heparin_channel_is_refused() -> None:
    # defect: an insulin bolus on a heparin channel delivered 10 mL = 1000 units of heparin
    pump, _ = delivered_pump()
    start(pump, "A", heparin())
    with pytest.raises(PumpError) as refused:
        pump.bolus("A", bolus("icu-insulin", "10"))
    assert refused.value.code == "pump.bolus_entry"
    assert pump.events.of_type(EventType.PROGRAM_REFUSED)[-1].data["code"] == "pump.bolus_entry"
    assert pump.events.of_type(EventType.BOLUS_STARTED) == []


def test_a_bolus_under_a_sibling_entry_of_the_same_container_is_refused() -> None:
    # the DKA entry shares the running insulin's container but allows a 20-unit bolus; the running
    # entry allows 10: a bolus takes the running entry's limits, never a sibling's
    pump, _ = delivered_pump()
    start(pump, "A", insulin())
    with pytest.raises(PumpError) as refused:
        pump.bolus("A", bolus("icu-insulin-dka", "15"))
    assert refused.value.code == "pump.bolus_entry"
    assert pump.events.of_type(EventType.BOLUS_STARTED) == []
    assert pump.bolus("A", bolus("icu-insulin", "8")).vtbi_ml == D(8)


@pytest.mark.parametrize(
    ("concentration", "patient"),
    [
        (Concentration.parse("5000 units/250 mL"), KG_70),
        (None, PatientParameters(weight_kg=D(80))),
    ],
)
def test_a_bolus_from_another_container_or_for_another_weight_is_refused(
    concentration: Concentration | None, patient: PatientParameters
) -> None:
    pump, _ = delivered_pump()
    start(pump, "A", heparin())
    with pytest.raises(PumpError) as refused:
        pump.bolus("A", bolus("icu-heparin", "80", concentration=concentration, patient=patient))
    assert refused.value.code == "pump.bolus_entry"


def test_a_bolus_runs_the_volume_and_rate_of_its_verdict() -> None:
    pump, _ = delivered_pump()
    pump.set_patient_parameters(weight_kg=D(70))
    start(pump, "A", heparin(patient=NO_PATIENT))
    verdict = pump.bolus("A", bolus("icu-heparin", "80"))  # 5600 units = 56 mL over 5 min
    started = pump.events.of_type(EventType.BOLUS_STARTED)[-1].data
    assert (started["volume_ml"], started["rate_ml_per_h"]) == (verdict.vtbi_ml, verdict.rate_ml_per_h)
    assert (verdict.vtbi_ml, verdict.rate_ml_per_h) == (D(56), D(672))
    assert pump.events.of_type(EventType.PROGRAM_CHECKED)[-1].data["is_titration"] is False


def test_a_piggyback_needs_an_entry_that_allows_it() -> None:
    # defect: a manual piggyback ignored the entry's allows_secondary (the HL7 path enforced it)
    pump, _ = delivered_pump()
    start(pump, "A", basic("50", vtbi="500"))
    for piggyback in (basic("100", vtbi="50"), labetalol("1")):
        with pytest.raises(PumpError) as refused:
            pump.secondary("A", piggyback)
        assert refused.value.code == "pump.secondary_not_allowed"
    assert pump.events.of_type(EventType.SECONDARY_STARTED) == []
    assert pump.events.of_type(EventType.PROGRAM_REFUSED)[-1].data["code"] == "pump.secondary_not_allowed"


def test_a_piggyback_is_refused_where_the_care_area_forbids_secondaries() -> None:
    library = delivered_library()
    [icu] = library.care_areas
    closed = replace(icu, device=replace(icu.device, secondary_allowed=False))
    pump = Pump("pump-1", PumpModel.LVP, ManualClock(), library=replace(library, care_areas=(closed,)))
    pump.select_care_area("icu")
    start(pump, "A", basic("50", vtbi="500"))
    with pytest.raises(PumpError) as refused:
        pump.secondary("A", vancomycin("500"))
    assert refused.value.code == "pump.secondary_not_allowed"


def test_an_intermittent_piggyback_without_vtbi_runs_the_volume_that_holds_its_dose() -> None:
    pump, clock = delivered_pump()
    start(pump, "A", basic("50", vtbi="500"))
    verdict = pump.secondary("A", vancomycin("500"))  # 125 mL over 60 min
    assert (verdict.vtbi_ml, verdict.rate_ml_per_h) == (D(125), D(125))
    assert pump.events.of_type(EventType.SECONDARY_STARTED)[-1].data["vtbi_ml"] == D(125)
    clock.advance(7200)
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.secondary_ml == D(125)
    assert pump.channel("A").flow_ml_per_h == D(50)
