"""Issue 13, defects 5 and 6 on the pump: the library's PCA maximum is a ceiling whatever the program
says, the basal counts toward it and stops at it, and per-kg doses are multiplied by the weight.

Every amount delivered is computed from the channel's volumes (mL x 1 mg/mL, / weight for per kg),
never from the ledger. Library and programs are EXAMPLE DATA, not for clinical use.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpump.clock import ManualClock
from smartpump.ders.program import NO_PATIENT, InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.errors import PumpError
from smartpump.library.model import DeliveryMode, DeviceType, DrugLibrary, PCALimits, PCASettings
from smartpump.pump import AlarmId, ChannelState, EventType, Pump, PumpModel
from smartpump.pump.alarms import ALARMS, Priority
from smartpump.pump.pca import Ceiling, CeilingSource
from tests.factories import (
    bounds,
    concentration,
    dose_limits,
    make_care_area,
    make_drug,
    make_entry,
    make_library,
)

D = Decimal
MG_PER_ML = D(1)
MCG_PER_ML = D(1000)
CHILD = PatientParameters(weight_kg=D(20))


def ceiling_library(
    *,
    max_mg: str = "15",
    window_h: int | None = 4,
    area_window_h: int | None = None,
    bolus_rate_ml_per_h: int = 60,
) -> DrugLibrary:
    """Morphine 30 mg/30 mL PCA in mg (library maximum ``max_mg`` over ``window_h``) and in mcg/kg
    (300 mcg/kg over 4 h); bolus doses run at ``bolus_rate_ml_per_h``."""
    icu = make_care_area(
        weight_kg=bounds(hard_min="0.5", hard_max=350),
        pca=PCASettings(bolus_delivery_rate_ml_per_h=D(bolus_rate_ml_per_h), max_dose_window_h=area_window_h),
    )
    morphine = concentration("30 mg/30 mL")
    return make_library(
        drugs=(make_drug(id="morphine", generic_name="morphine", display_name="", is_high_alert=True),),
        care_areas=(icu,),
        entries=(
            make_entry(
                id="pca-mg",
                drug_id="morphine",
                mode=DeliveryMode.PCA,
                dose=dose_limits("mg", hard_max=5),
                concentrations=(morphine,),
                pca=PCALimits(
                    demand_dose=dose_limits("mg", hard_max=5),
                    lockout_min=bounds(hard_min=5),
                    basal=dose_limits("mg/h", hard_max=3),
                    loading_dose=dose_limits("mg", hard_max=4),
                    clinician_bolus=dose_limits("mg", hard_max=4),
                    max_dose=dose_limits("mg", hard_max=max_mg),
                    max_dose_window_h=window_h,
                ),
                devices=(DeviceType.PCA,),
            ),
            make_entry(
                id="pca-kg",
                drug_id="morphine",
                mode=DeliveryMode.PCA,
                dose=dose_limits("mcg/kg", hard_max=30),
                concentrations=(morphine,),
                pca=PCALimits(
                    demand_dose=dose_limits("mcg/kg", hard_max=30),
                    lockout_min=bounds(hard_min=5),
                    basal=dose_limits("mcg/kg/h", hard_max=10),
                    loading_dose=dose_limits("mcg/kg", hard_max=50),
                    clinician_bolus=dose_limits("mcg/kg", hard_max=50),
                    max_dose=dose_limits("mcg/kg", hard_max=300),
                    max_dose_window_h=4,
                ),
                devices=(DeviceType.PCA,),
            ),
        ),
    )


def pca_pump(library: DrugLibrary | None = None) -> tuple[Pump, ManualClock]:
    clock = ManualClock()
    pump = Pump("pca-1", PumpModel.PCA, clock, library=library or ceiling_library())
    pump.select_care_area("icu")
    return pump, clock


def pca(
    entry: str = "pca-mg",
    *,
    demand: str = "2",
    lockout: str = "6",
    basal: str | None = None,
    max_dose: str | None = None,
    window_h: int | None = None,
    loading: str | None = None,
    patient: PatientParameters = NO_PATIENT,
) -> InfusionProgram:
    return InfusionProgram(
        entry_id=entry,
        kind=ProgramKind.PCA,
        patient=patient,
        pca=PCAProgram(
            demand_dose=D(demand),
            lockout_min=D(lockout),
            basal=None if basal is None else D(basal),
            loading_dose=None if loading is None else D(loading),
            max_dose=None if max_dose is None else D(max_dose),
            max_dose_window_h=window_h,
        ),
    )


def start(pump: Pump, program: InfusionProgram) -> None:
    verdict = pump.program("A", program)
    assert verdict.may_start, verdict.alerts
    pump.confirm("A")
    pump.start("A")


def assert_every_window_within(
    samples: list[tuple[Decimal, Decimal]], window_s: int, max_mg: Decimal
) -> None:
    """Delivered (mL x 1 mg/mL) in every window ending at a sample, from the last sample at or
    before its start (an over-estimate), is within the maximum."""
    for t, total in samples:
        before = [ml for s, ml in samples if s <= t - window_s]
        assert (total - (before[-1] if before else D(0))) * MG_PER_ML <= max_mg, t


def sample_every_minute(pump: Pump, clock: ManualClock, minutes: int) -> list[tuple[Decimal, Decimal]]:
    """(time, infused mL) after each minute, from the channel's volumes."""
    samples: list[tuple[Decimal, Decimal]] = []
    for _ in range(minutes):
        clock.advance(60)
        delivered = infused_ml(pump)
        samples.append((pump.now_s, delivered))
    return samples


def infused_ml(pump: Pump) -> Decimal:
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None
    return therapy.infused_ml


def demand_until_denied(pump: Pump, clock: ManualClock, every_s: int) -> int:
    """Press the button every ``every_s`` until a press is denied; the number granted (at most 50)."""
    for granted in range(50):
        if not pump.pca_demand("A"):
            return granted
        clock.advance(every_s)
    raise AssertionError("50 demands in a row were granted: no ceiling held")


# ----------------------------------------------------------------- defect 5: the window maximum


def test_defect5_library_maximum_binds_without_a_programmed_max() -> None:
    pump, clock = pca_pump()
    start(pump, pca(demand="2", lockout="6"))
    assert demand_until_denied(pump, clock, every_s=360) == 7
    denied = pump.events.of_type(EventType.PCA_DEMAND_DENIED)[-1].data
    assert denied["reason"] == "max_dose" and denied["ceiling"] == "library"
    assert (denied["max_dose"], denied["window_h"], denied["window_total"]) == (D(15), D(4), D(14))
    clock.advance(600)
    assert infused_ml(pump) * MG_PER_ML == D(14)
    clock.advance_to(4 * 3600 - 1)
    assert not pump.pca_demand("A")
    clock.advance(1)
    assert pump.pca_demand("A")


def test_defect5_forty_two_minutes_of_demands_stay_within_the_library_maximum() -> None:
    pump, clock = pca_pump()
    start(pump, pca(demand="4", lockout="6"))
    presses = []
    for _ in range(8):
        presses.append(pump.pca_demand("A"))
        clock.advance(360)
    assert presses == [True, True, True] + [False] * 5
    assert infused_ml(pump) * MG_PER_ML == D(12)


def test_defect5_a_programmed_one_hour_window_does_not_escape_the_library_four_hours() -> None:
    pump, clock = pca_pump()
    start(pump, pca(demand="2", lockout="6", max_dose="15", window_h=1))
    ledger = pump.channel("A").therapy.pca  # type: ignore[union-attr]
    assert ledger is not None
    assert {(c.source, c.max_amount, c.window_s) for c in ledger.ceilings} == {
        (CeilingSource.LIBRARY, D(15), D(14400)),
        (CeilingSource.PROGRAM, D(15), D(3600)),
    }
    assert demand_until_denied(pump, clock, every_s=360) == 7
    clock.advance_to(2 * 3600)
    assert not pump.pca_demand("A")
    denied = pump.events.of_type(EventType.PCA_DEMAND_DENIED)[-1].data
    assert denied["reason"] == "max_dose" and denied["ceiling"] == "library"
    assert infused_ml(pump) * MG_PER_ML == D(14)


def test_a_programmed_max_is_stricter_and_binds_first() -> None:
    pump, clock = pca_pump()
    start(pump, pca(demand="2", lockout="6", max_dose="4", window_h=1))
    assert demand_until_denied(pump, clock, every_s=360) == 2
    assert pump.events.of_type(EventType.PCA_DEMAND_DENIED)[-1].data["ceiling"] == "program"


def test_the_library_window_falls_back_to_the_care_area_then_one_hour() -> None:
    for area_window_h, expected_s in ((2, D(7200)), (None, D(3600))):
        pump, _ = pca_pump(ceiling_library(window_h=None, area_window_h=area_window_h))
        start(pump, pca())
        ledger = pump.channel("A").therapy.pca  # type: ignore[union-attr]
        assert ledger is not None
        assert ledger.ceilings == (
            Ceiling(max_amount=D(15), window_s=expected_s, source=CeilingSource.LIBRARY),
        )


def test_defect5_basal_alone_stops_exactly_at_the_ceiling_and_never_exceeds_it() -> None:
    pump, clock = pca_pump(ceiling_library(max_mg="2", window_h=1))
    start(pump, pca(basal="3"))
    channel = pump.channel("A")
    assert channel.flow_ml_per_h == D(3)
    samples = sample_every_minute(pump, clock, 120)
    reached = pump.events.of_type(EventType.PCA_MAX_DOSE_REACHED)
    assert len(reached) == 1
    assert reached[0].data == {
        "ceiling": "library",
        "max_dose": D(2),
        "window_h": D(1),
        "window_total": D(2),
        "unit": "mg",
    }
    assert reached[0].ts == clock.now() - timedelta(seconds=7200 - 2400)
    assert infused_ml(pump) * MG_PER_ML == D(2)
    assert channel.state is ChannelState.RUNNING and channel.flow_ml_per_h == 0
    assert pump.alarms.is_active(AlarmId.PCA_MAX_DOSE, "A")
    assert_every_window_within(samples, 3600, D(2))


def test_the_maximum_alarm_is_medium_latching_and_does_not_stop_delivery() -> None:
    spec = ALARMS[AlarmId.PCA_MAX_DOSE]
    assert (spec.priority, spec.latching, spec.stops_delivery) == (Priority.MEDIUM, True, False)


def test_demands_are_denied_while_the_basal_is_suspended_at_the_ceiling() -> None:
    pump, clock = pca_pump(ceiling_library(max_mg="2", window_h=1))
    start(pump, pca(demand="1", basal="3"))
    clock.advance(2400)
    pump.sync()
    assert pump.channel("A").therapy.pca.basal_suspended  # type: ignore[union-attr]
    assert not pump.pca_demand("A")
    assert pump.events.of_type(EventType.PCA_DEMAND_DENIED)[-1].data["reason"] == "max_dose"


def test_clearing_the_alarm_resumes_the_basal_only_when_every_ceiling_has_room() -> None:
    pump, clock = pca_pump(ceiling_library(max_mg="2", window_h=1))
    start(pump, pca(basal="3"))
    samples = sample_every_minute(pump, clock, 50)
    with pytest.raises(PumpError) as refused:
        pump.clear_alarm(AlarmId.PCA_MAX_DOSE, "A")
    assert refused.value.code == "pump.pca_max_dose_persists"
    assert pump.alarms.is_active(AlarmId.PCA_MAX_DOSE, "A") and pump.channel("A").flow_ml_per_h == 0
    samples += sample_every_minute(pump, clock, 20)
    pump.clear_alarm(AlarmId.PCA_MAX_DOSE, "A")
    assert not pump.alarms.is_active(AlarmId.PCA_MAX_DOSE, "A")
    assert pump.channel("A").flow_ml_per_h == D(3)
    resumed = pump.events.of_type(EventType.PCA_BASAL_RESUMED)[0].data
    assert (resumed["rate_ml_per_h"], resumed["window_total"]) == (D(3), D("1.5"))
    samples += sample_every_minute(pump, clock, 50)
    reached = pump.events.of_type(EventType.PCA_MAX_DOSE_REACHED)
    assert len(reached) == 2 and reached[1].ts == clock.now() - timedelta(seconds=7200 - 6600)
    assert infused_ml(pump) * MG_PER_ML == D(4)
    assert_every_window_within(samples, 3600, D(2))


def test_stopping_the_therapy_ends_the_maximum_alarm() -> None:
    pump, clock = pca_pump(ceiling_library(max_mg="2", window_h=1))
    start(pump, pca(basal="3"))
    clock.advance(2400)
    pump.stop("A")
    assert not pump.alarms.is_active(AlarmId.PCA_MAX_DOSE, "A")
    cleared = pump.events.of_type(EventType.ALARM_CLEARED)[-1].data
    assert (cleared["alarm"], cleared["by"]) == ("pca.max_dose_reached", "stopped")


def test_a_loading_dose_beyond_a_ceiling_refuses_the_start_and_leaves_the_channel_as_it_was() -> None:
    pump, _ = pca_pump()
    pump.program("A", pca(loading="3", max_dose="2", window_h=1))
    pump.confirm("A")
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.pca_loading_max_dose"
    channel = pump.channel("A")
    assert channel.state is ChannelState.PROGRAMMED and channel.therapy is None
    assert pump.events.of_type(EventType.START_REFUSED)[-1].data["code"] == "pump.pca_loading_max_dose"
    assert not pump.events.of_type(EventType.INFUSION_STARTED)


def test_a_delayed_start_with_a_loading_dose_beyond_a_ceiling_is_refused_at_once() -> None:
    pump, _ = pca_pump()
    pump.program("A", pca(loading="3", max_dose="2", window_h=1))
    pump.confirm("A")
    with pytest.raises(PumpError):
        pump.start("A", delay_s=D(60))
    assert pump.channel("A").state is ChannelState.PROGRAMMED


def test_a_loading_dose_within_the_ceilings_counts_toward_them() -> None:
    pump, clock = pca_pump()
    start(pump, pca(loading="4", demand="2"))
    granted = pump.events.of_type(EventType.PCA_DOSE_GRANTED)[0].data
    assert (granted["kind"], granted["dose"], granted["volume_ml"]) == ("loading", D(4), D(4))
    clock.advance(240)
    assert demand_until_denied(pump, clock, every_s=360) == 5


def test_a_pca_dose_interrupted_by_a_pause_is_cancelled_not_finished_later() -> None:
    pump, clock = pca_pump()
    start(pump, pca(demand="2"))
    assert pump.pca_demand("A")
    clock.advance(60)
    pump.pause("A")
    cancelled = pump.events.of_type(EventType.BOLUS_CANCELLED)[0].data
    assert (cancelled["kind"], cancelled["delivered_ml"], cancelled["reason"]) == (
        "pca_demand",
        D(1),
        "paused",
    )
    clock.advance(3600)
    pump.resume("A")
    clock.advance(600)
    assert infused_ml(pump) * MG_PER_ML == D(1)


def test_restart_while_the_basal_is_suspended_keeps_it_suspended_and_rebuilds_the_ceilings() -> None:
    library = ceiling_library(max_mg="2", window_h=1)
    pump, clock = pca_pump(library)
    start(pump, pca(basal="3"))
    clock.advance(3000)
    pump.sync()
    state = json.loads(json.dumps(pump.to_state()))
    assert state["channel_state"]["A"]["therapy"]["pca"]["basal_suspended"] is True
    new_clock = ManualClock(start=clock.now() + timedelta(seconds=60))
    restarted = Pump.from_state(state, new_clock, library)
    therapy = restarted.channel("A").therapy
    assert therapy is not None and therapy.pca is not None
    assert therapy.pca.basal_suspended and therapy.rate_ml_per_h == 0
    assert therapy.pca.ceilings == (Ceiling(max_amount=D(2), window_s=D(3600), source=CeilingSource.LIBRARY),)
    assert restarted.alarms.is_active(AlarmId.PCA_MAX_DOSE, "A")
    restarted.resume("A")
    assert restarted.channel("A").flow_ml_per_h == 0
    with pytest.raises(PumpError) as refused:
        restarted.clear_alarm(AlarmId.PCA_MAX_DOSE, "A")
    assert refused.value.code == "pump.pca_max_dose_persists"
    new_clock.advance(1200)
    restarted.clear_alarm(AlarmId.PCA_MAX_DOSE, "A")
    assert restarted.channel("A").flow_ml_per_h == D(3)


def test_a_restored_state_with_a_bad_suspended_flag_is_refused() -> None:
    pump, clock = pca_pump()
    start(pump, pca(basal="1"))
    state = json.loads(json.dumps(pump.to_state()))
    state["channel_state"]["A"]["therapy"]["pca"]["basal_suspended"] = "yes"
    with pytest.raises(PumpError) as refused:
        Pump.from_state(state, ManualClock(start=clock.now()), ceiling_library())
    assert refused.value.code == "pump.state_invalid"


# ----------------------------------------------------------------- defect 6: per kg


def test_defect6_a_per_kg_demand_is_multiplied_by_the_weight() -> None:
    pump, clock = pca_pump()
    start(pump, pca("pca-kg", demand="20", patient=CHILD))
    assert pump.pca_demand("A")
    granted = pump.events.of_type(EventType.PCA_DEMAND_GRANTED)[0].data
    assert (granted["dose"], granted["unit"]) == (D(20), "mcg/kg")
    assert (granted["delivered_amount"], granted["delivered_unit"], granted["volume_ml"]) == (
        D(400),
        "mcg",
        D("0.4"),
    )
    assert pump.events.of_type(EventType.BOLUS_STARTED)[0].data["volume_ml"] == D("0.4")
    clock.advance(60)
    assert infused_ml(pump) * MCG_PER_ML == D(400)


def test_defect6_per_kg_loading_and_clinician_bolus_are_multiplied_by_the_weight() -> None:
    pump, clock = pca_pump()
    start(pump, pca("pca-kg", demand="20", loading="10", patient=CHILD))
    clock.advance(60)
    pump.clinician_bolus("A", D(15))
    clock.advance(60)
    assert infused_ml(pump) * MCG_PER_ML == D(200) + D(300)
    granted = [e.data for e in pump.events.of_type(EventType.PCA_DOSE_GRANTED)]
    assert [(g["kind"], g["delivered_amount"], g["volume_ml"]) for g in granted] == [
        ("loading", D(200), D("0.2")),
        ("clinician", D(300), D("0.3")),
    ]


def test_defect6_a_per_kg_basal_runs_at_the_verdicts_rate_and_counts_what_that_rate_gives() -> None:
    pump, clock = pca_pump()
    verdict = pump.program("A", pca("pca-kg", demand="20", basal="4", patient=CHILD))
    assert verdict.rate_ml_per_h == D("0.1")
    pump.confirm("A")
    pump.start("A")
    assert pump.channel("A").flow_ml_per_h == verdict.rate_ml_per_h
    clock.advance(3600)
    delivered_mcg_per_kg = infused_ml(pump) * MCG_PER_ML / CHILD.weight_kg  # type: ignore[operator]
    assert delivered_mcg_per_kg == D(5)
    ledger = pump.channel("A").therapy.pca  # type: ignore[union-attr]
    assert ledger is not None and ledger.window_total(pump.now_s) == delivered_mcg_per_kg


def test_defect6_a_per_kg_basal_below_the_pumps_resolution_never_runs_at_zero() -> None:
    pump, _ = pca_pump()
    verdict = pump.program("A", pca("pca-kg", demand="20", basal="1", patient=CHILD))
    assert verdict.level.value == "hard"
    assert "ders.device.rate.hard_min" in {a.rule for a in verdict.alerts}
    with pytest.raises(PumpError):
        pump.confirm("A")
    assert pump.channel("A").therapy is None


def test_a_per_kg_ceiling_stays_per_kg() -> None:
    pump, clock = pca_pump()
    start(pump, pca("pca-kg", demand="30", lockout="6", patient=CHILD))
    assert demand_until_denied(pump, clock, every_s=360) == 10
    clock.advance(600)
    assert infused_ml(pump) * MCG_PER_ML / D(20) == D(300)


# ----------------------------------------------------------------- property: delivered within every ceiling


Points = list[tuple[Fraction, Fraction]]


def _delivered_at(points: Points, t: Fraction) -> Fraction:
    """Cumulative mL at time t, linear between recorded points (the flow only changes at them)."""
    if t <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def _max_in_any_window(points: Points, window_s: Fraction) -> Fraction:
    """The most delivered in any window of ``window_s`` (exact; at a breakpoint of its start or end)."""
    ends = {t for t, _ in points} | {t + window_s for t, _ in points if t + window_s <= points[-1][0]}
    return max(_delivered_at(points, e) - _delivered_at(points, e - window_s) for e in ends)


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["demand", "clinician", "clear", "pause", "resume", "wait"]),
        st.sampled_from([D("0.5"), D(1), D(3)]),
        st.integers(min_value=1, max_value=2400),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(actions=ACTIONS, program_max=st.sampled_from([None, "4"]))
def test_delivered_from_the_channel_stays_within_every_ceiling(
    actions: list[tuple[str, Decimal, int]], program_max: str | None
) -> None:
    """Rates whose volume per second is a finite decimal (1.8 and 72 mL/h), so the channel's
    volumes are exact and the check needs no tolerance."""
    pump, clock = pca_pump(ceiling_library(max_mg="6", window_h=1, bolus_rate_ml_per_h=72))
    start(pump, pca(demand="1", lockout="5", basal="1.8", max_dose=program_max, window_h=1))
    points: Points = []

    def record() -> None:
        delivered = infused_ml(pump)
        points.append((Fraction(pump.now_s), Fraction(delivered)))

    def wait(seconds: int) -> None:
        target = pump.now_s + seconds
        while (due := pump.next_due_s()) is not None and due <= target:
            clock.advance_to(float(due))
            record()
        clock.advance_to(float(target))
        record()

    record()

    for action, amount, seconds in actions:
        with contextlib.suppress(PumpError):
            if action == "demand":
                pump.pca_demand("A")
            elif action == "clinician":
                pump.clinician_bolus("A", amount)
            elif action == "clear":
                pump.clear_alarm(AlarmId.PCA_MAX_DOSE, "A")
            elif action == "pause":
                pump.pause("A")
            elif action == "resume":
                pump.resume("A")
        therapy = pump.channel("A").therapy
        assert therapy is not None and therapy.pca is not None
        assert not (therapy.pca.basal_suspended and pump.channel("A").flow_ml_per_h == D("1.8"))
        wait(seconds)
    ceilings = pump.channel("A").therapy.pca.ceilings  # type: ignore[union-attr]
    for ceiling in ceilings:
        delivered_mg = _max_in_any_window(points, Fraction(ceiling.window_s)) * Fraction(MG_PER_ML)
        assert delivered_mg <= ceiling.max_amount, (ceiling, float(delivered_mg))
