"""SAF-DISP-01: displayed program rate, controller set-point and encoder rate are cross-checked on every
rate change and every second; a divergence (the doubling of the McAfee/B. Braun finding) cuts motor
power and raises a HIGH alarm within 2 s of simulated time."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.clock import ManualClock
from smartpump.errors import PumpError
from smartpump.pump import AlarmId, ChannelState, EventType, Priority, Pump, PumpModel
from smartpump.pump.delivery import MICROSECOND, volume_over
from smartpump.sim.hardware import SimulatedHardware
from tests.unit.pump.library import basic, dopamine, pump_library, start

D = Decimal
BUDGET_S = D(2)


def _pump(model: PumpModel = PumpModel.LVP) -> tuple[Pump, ManualClock, SimulatedHardware]:
    clock = ManualClock()
    hardware = SimulatedHardware(clock)
    pump = Pump(
        "pump-1",
        model,
        clock,
        library=pump_library(),
        channels=2 if model is PumpModel.LVP else 1,
        hardware=hardware,
    )
    pump.select_care_area("icu")
    return pump, clock, hardware


def _run_until(pump: Pump, clock: ManualClock, until_s: Decimal) -> None:
    """Wake the pump at each of its own due times, as the event-driven fleet does."""
    while (due := pump.next_due_s()) is not None and due <= until_s:
        clock.advance_to(float(due))
        pump.sync()
    clock.advance_to(float(until_s))
    pump.sync()


def _mismatch_after(pump: Pump, injected_at_s: Decimal) -> Decimal:
    event = pump.events.of_type(EventType.MOTOR_RATE_MISMATCH)[0]
    started = next(iter(pump.events)).ts
    return D(str((event.ts - started).total_seconds())) - injected_at_s


def test_agreeing_hardware_runs_a_whole_infusion_without_a_mismatch() -> None:
    pump, clock, hardware = _pump()
    start(pump, "A", basic("120", vtbi="10"))
    _run_until(pump, clock, D(600))
    assert pump.events.of_type(EventType.MOTOR_RATE_MISMATCH) == []
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.infused_ml == D(10)
    accounted = therapy.infused_ml + therapy.kvo_ml
    assert abs(hardware.delivered_ml("A") - accounted) <= volume_over(D(120), 2 * MICROSECOND)


def test_a_doubled_set_point_while_running_stops_delivery_within_two_seconds() -> None:
    pump, clock, hardware = _pump()
    start(pump, "A", dopamine("5"))
    _run_until(pump, clock, D("100.3"))
    hardware.scale_setpoint("A", D(2))
    _run_until(pump, clock, D("100.3") + BUDGET_S)
    assert _mismatch_after(pump, D("100.3")) <= BUDGET_S
    assert pump.channel("A").state is ChannelState.ALARM and pump.channel("A").flow_ml_per_h == 0
    assert hardware.encoder_rate_ml_per_h("A") == 0
    raised = pump.events.of_type(EventType.ALARM_RAISED)[-1]
    assert raised.data["alarm"] == AlarmId.MOTOR_RATE_MISMATCH.value
    assert raised.data["priority"] == Priority.HIGH.value
    rate = pump.channel("A").therapy.rate_ml_per_h  # type: ignore[union-attr]
    assert raised.data["value"] == 2 * rate and raised.data["limit"] == rate


def test_the_extra_volume_before_detection_is_bounded_by_one_check_period() -> None:
    pump, clock, hardware = _pump()
    start(pump, "A", basic("500", vtbi="1000"))
    _run_until(pump, clock, D("30.5"))
    hardware.scale_motor("A", D(2))
    _run_until(pump, clock, D(60))
    excess = hardware.delivered_ml("A") - pump.channel("A").therapy.infused_ml  # type: ignore[union-attr]
    assert D(0) < excess <= volume_over(D(500), D(1))


def test_a_set_point_written_while_idle_in_standby_is_detected() -> None:
    pump, clock, hardware = _pump()
    pump.program("A", basic("50", vtbi="100"))
    pump.confirm("A")
    pump.standby("A")
    _run_until(pump, clock, D(10))
    hardware.override_setpoint("A", D(100))
    _run_until(pump, clock, D(10) + BUDGET_S)
    assert _mismatch_after(pump, D(10)) <= BUDGET_S
    mismatch = pump.events.of_type(EventType.MOTOR_RATE_MISMATCH)[0]
    assert mismatch.data["displayed_ml_per_h"] == 0 and mismatch.data["setpoint_ml_per_h"] == D(100)
    assert mismatch.data["trigger"] == "periodic"
    assert hardware.encoder_rate_ml_per_h("A") == 0
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.motor_fault"


def test_a_divergence_present_at_a_rate_change_is_caught_by_that_change() -> None:
    pump, clock, hardware = _pump()
    hardware.scale_setpoint("A", D(2))
    _run_until(pump, clock, D("0.5"))
    start(pump, "A", basic("10"))
    mismatch = pump.events.of_type(EventType.MOTOR_RATE_MISMATCH)[0]
    assert (
        mismatch.data["trigger"] == "rate_change"
        and mismatch.ts == pump.events.of_type(EventType.INFUSION_STARTED)[0].ts
    )


def test_a_fault_on_one_channel_leaves_the_other_running() -> None:
    pump, clock, hardware = _pump()
    start(pump, "A", basic("10"))
    start(pump, "B", basic("20"))
    hardware.scale_motor("B", D("0.5"))
    _run_until(pump, clock, BUDGET_S)
    assert pump.channel("B").state is ChannelState.ALARM
    assert pump.channel("A").state is ChannelState.RUNNING and hardware.encoder_rate_ml_per_h("A") == D(10)


def test_a_difference_within_half_the_resolution_is_agreement() -> None:
    pump, clock, hardware = _pump(PumpModel.SYRINGE)
    pump.load_container("A", D(50))
    start(pump, "A", basic("1", vtbi="40"))
    hardware.override_setpoint("A", D("1.005"))
    _run_until(pump, clock, D(5))
    assert pump.events.of_type(EventType.MOTOR_RATE_MISMATCH) == []
    hardware.override_setpoint("A", D("1.01"))
    _run_until(pump, clock, D(7))
    assert len(pump.events.of_type(EventType.MOTOR_RATE_MISMATCH)) == 1
