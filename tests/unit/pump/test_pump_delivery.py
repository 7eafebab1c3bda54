"""Exact volume accounting: VTBI completion time, near-end, KVO, pause, bolus, secondary, multistep."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.ders.program import InfusionProgram, ProgramKind
from smartpump.errors import PumpError
from smartpump.pump import ChannelState, EventType, Step
from smartpump.pump.delivery import time_to_deliver, volume_over
from tests.unit.pump.delivered import delivered_pump, vancomycin
from tests.unit.pump.library import WEIGHT, basic, make_pump, start

D = Decimal


def test_volume_over_and_time_to_deliver_are_inverse() -> None:
    assert volume_over(D(100), D(36)) == D(1)
    assert time_to_deliver(D(1), D(100)) == D(36)


def test_vtbi_completes_at_the_exact_computed_time_then_kvo() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("120", vtbi="100"))
    clock.advance(3600)
    pump.sync()
    completed = pump.events.of_type(EventType.INFUSION_COMPLETED)[0]
    assert completed.ts == clock.now() - (clock.now() - completed.ts)
    assert (completed.ts - pump.events.of_type(EventType.INFUSION_STARTED)[0].ts).total_seconds() == 3000
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.infused_ml == D(100)
    assert pump.channel("A").state is ChannelState.KVO
    assert therapy.kvo_ml == D(1) * D(600) / D(3600)


def test_near_end_fires_five_minutes_before_the_end() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="10"))
    clock.advance(3600)
    pump.sync()
    near = pump.events.of_type(EventType.NEAR_END_REACHED)[0]
    done = pump.events.of_type(EventType.INFUSION_COMPLETED)[0]
    assert (done.ts - near.ts).total_seconds() == 300


def test_kvo_never_exceeds_the_infusion_rate() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("0.5", vtbi="1"))
    clock.advance(3 * 3600)
    pump.sync()
    assert pump.channel("A").flow_ml_per_h == D("0.5")


def test_nothing_is_delivered_while_paused() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    clock.advance(360)
    pump.pause("A")
    clock.advance(3600)
    pump.resume("A")
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.infused_ml == D(10)


def test_a_paused_channel_reminds_then_escalates() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.pause("A")
    clock.advance(120)
    pump.sync()
    assert pump.alarms.is_active(
        __import__("smartpump.pump", fromlist=["AlarmId"]).AlarmId.CHANNEL_PAUSED, "A"
    )
    clock.advance(300)
    pump.sync()
    escalated = pump.events.of_type(EventType.ALARM_ESCALATED)[0]
    assert escalated.data == {
        "alarm": "channel.paused_too_long",
        "from_priority": "low",
        "to_priority": "medium",
    }


def test_bolus_from_running_infusion_counts_towards_vtbi_and_returns_to_rate() -> None:
    pump, clock = make_pump()
    heparin = InfusionProgram(entry_id="icu-heparin", dose=D(18), patient=WEIGHT, vtbi_ml=D(250))
    start(pump, "A", heparin)
    bolus = InfusionProgram(
        entry_id="icu-heparin", kind=ProgramKind.BOLUS, dose=D(80), patient=WEIGHT, duration_min=D(5)
    )
    pump.bolus("A", bolus)
    started = pump.events.of_type(EventType.BOLUS_STARTED)[0]
    assert started.data["volume_ml"] == D("56.0")
    clock.advance(3600)
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.overlay is None
    assert pump.events.of_type(EventType.BOLUS_COMPLETED)[0].data["volume_ml"] == D("56.0")
    primary_s = 3600 - 300
    assert therapy.infused_ml == D("56.0") + D("12.6") * D(primary_s) / D(3600)


def test_bolus_above_hard_max_is_refused() -> None:
    pump, _ = make_pump()
    start(pump, "A", InfusionProgram(entry_id="icu-heparin", dose=D(18), patient=WEIGHT, vtbi_ml=D(250)))
    bolus = InfusionProgram(
        entry_id="icu-heparin", kind=ProgramKind.BOLUS, dose=D(150), patient=WEIGHT, duration_min=D(5)
    )
    with pytest.raises(PumpError) as refused:
        pump.bolus("A", bolus)
    assert refused.value.code == "pump.hard_stop"


def test_secondary_runs_its_own_volume_then_calls_back_to_primary() -> None:
    pump, clock = delivered_pump()
    start(pump, "A", basic("50", vtbi="500"))
    pump.secondary("A", vancomycin("200", minutes="30"))  # 50 mL of 4 mg/mL over 30 min
    assert pump.channel("A").flow_ml_per_h == D(100)
    clock.advance(1800)
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None
    assert therapy.secondary_ml == D(50) and therapy.infused_ml == D(0)
    assert pump.channel("A").flow_ml_per_h == D(50)
    assert pump.events.of_type(EventType.SECONDARY_COMPLETED)[0].data["primary_rate_ml_per_h"] == D(50)


def test_multistep_changes_rate_at_each_step_boundary() -> None:
    pump, clock = make_pump()
    steps = (Step(rate_ml_per_h=D(10), volume_ml=D(5)), Step(rate_ml_per_h=D(20), volume_ml=D(10)))
    pump.program("A", basic("10", vtbi=None), steps=steps)
    pump.confirm("A")
    pump.start("A")
    clock.advance(1800)
    pump.sync()
    assert pump.events.of_type(EventType.STEP_STARTED)[0].data["rate_ml_per_h"] == D(20)
    assert pump.channel("A").flow_ml_per_h == D(20)
    clock.advance(1800)
    pump.sync()
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.infused_ml == D(15)


def test_syringe_empty_stops_delivery_with_a_high_alarm() -> None:
    from smartpump.pump import AlarmId, PumpModel

    pump, clock = make_pump(PumpModel.SYRINGE)
    pump.load_container("A", D(10))
    start(pump, "A", basic("6", vtbi="10"))
    clock.advance(7200)
    pump.sync()
    assert pump.alarms.is_active(AlarmId.SYRINGE_EMPTY, "A") or pump.channel("A").state is ChannelState.KVO
    assert pump.alarms.is_active(AlarmId.SYRINGE_NEAR_EMPTY, "A") or pump.events.of_type(
        EventType.ALARM_RAISED
    )


def test_vtbi_larger_than_the_syringe_is_refused() -> None:
    from smartpump.pump import PumpModel

    pump, _ = make_pump(PumpModel.SYRINGE)
    pump.load_container("A", D(10))
    verdict = pump.program("A", basic("6", vtbi="20"))
    [alert] = verdict.alerts
    assert (alert.rule, alert.value, alert.limit) == ("ders.device.container.hard_max", D(20), D(10))
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.hard_stop"
    assert pump.events.of_type(EventType.INFUSION_STARTED) == []
