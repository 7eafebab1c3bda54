"""Piggyback with callback: when a secondary asked for a callback ends, the primary runs again at its own
rate and the pump raises ``secondary.callback`` (medium, latching) at that exact instant; without one it
resumes silently."""

from __future__ import annotations

from decimal import Decimal

from smartpump.pump import ALARMS, AlarmId, ChannelState, EventType, Priority
from smartpump.pump.delivery import volume_over
from tests.unit.pump.delivered import delivered_pump, vancomycin
from tests.unit.pump.library import basic, start

D = Decimal


def test_a_callback_secondary_calls_the_nurse_back_when_it_ends_and_the_primary_runs_on() -> None:
    pump, clock = delivered_pump()
    start(pump, "A", basic("50", vtbi="500"))
    pump.secondary("A", vancomycin("200", minutes="30"), callback=True)  # 50 mL at 100 mL/h
    started = pump.events.of_type(EventType.SECONDARY_STARTED)[0]
    assert started.data["callback"] is True
    clock.advance(1799)
    pump.sync()
    assert not pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A")
    clock.advance(2)
    pump.sync()
    completed = pump.events.of_type(EventType.SECONDARY_COMPLETED)[0]
    assert completed.data["callback"] is True and completed.data["volume_ml"] == D(50)
    assert 1800 <= (completed.ts - started.ts).total_seconds() <= 1800.000002, "at the end, never before"
    raised = [
        e for e in pump.events.of_type(EventType.ALARM_RAISED) if e.data["alarm"] == "secondary.callback"
    ]
    assert len(raised) == 1
    assert raised[0].seq == completed.seq + 1 and raised[0].ts == completed.ts
    assert raised[0].channel == "A"
    assert (raised[0].data["priority"], raised[0].data["latching"], raised[0].data["stops_delivery"]) == (
        "medium",
        True,
        False,
    )
    assert (raised[0].data["value"], raised[0].data["limit"]) == (D(50), D(50))
    channel = pump.channel("A")
    assert channel.state is ChannelState.RUNNING and channel.flow_ml_per_h == D(50)
    clock.advance(3600)
    pump.sync()
    therapy = channel.therapy
    primary_s = D(1801 + 3600) - D("1800.000001")  # the secondary ended at its microsecond, rounded up
    assert therapy is not None and therapy.secondary_ml == D(50)
    assert therapy.infused_ml == volume_over(D(50), primary_s)
    assert pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A"), "latching: it waits for the nurse"
    pump.clear_alarm(AlarmId.SECONDARY_CALLBACK, "A")
    assert not pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A")


def test_without_a_callback_the_primary_resumes_silently() -> None:
    pump, clock = delivered_pump()
    start(pump, "A", basic("50", vtbi="500"))
    pump.secondary("A", vancomycin("200", minutes="30"))
    clock.advance(1800)
    pump.sync()
    assert pump.events.of_type(EventType.SECONDARY_STARTED)[0].data["callback"] is False
    assert pump.events.of_type(EventType.SECONDARY_COMPLETED)[0].data["callback"] is False
    assert not pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A")
    assert pump.channel("A").flow_ml_per_h == D(50)


def test_stopping_the_infusion_ends_a_waiting_callback() -> None:
    pump, clock = delivered_pump()
    start(pump, "A", basic("50", vtbi="500"))
    pump.secondary("A", vancomycin("200", minutes="30"), callback=True)
    clock.advance(1800)
    pump.sync()
    assert pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A")
    pump.stop("A", reason="nurse")
    assert not pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A")
    cleared = [
        e for e in pump.events.of_type(EventType.ALARM_CLEARED) if e.data["alarm"] == "secondary.callback"
    ]
    assert [e.data["by"] for e in cleared] == ["stopped"]


def test_the_callback_is_a_medium_latching_alarm_that_never_stops_delivery() -> None:
    spec = ALARMS[AlarmId.SECONDARY_CALLBACK]
    assert (spec.priority, spec.latching, spec.stops_delivery) == (Priority.MEDIUM, True, False)
