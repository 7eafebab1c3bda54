"""SAF-SCM: STPA deviations injected into each safety mechanism the pump models (FDA TPLC 4.4): the
control action not provided, unsafe, too early/too late, stopped too soon. Each deviation software can
inject is detected or bounded; the ones that only hardware can cause are listed in docs/safety-case.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import pytest

from smartpump.clock import ManualClock
from smartpump.ders.program import InfusionProgram, ProgramKind
from smartpump.errors import PumpError
from smartpump.pump import ALARMS, AlarmId, ChannelState, EventType, Priority, Pump, PumpModel
from smartpump.pump.capabilities import CAPABILITIES
from smartpump.pump.device import time_to_alarm_s
from smartpump.pump.sensors import BATTERY_DEPLETED_MIN, BATTERY_LOW_MIN
from smartpump.sim.hardware import SimulatedHardware
from tests.unit.pump.library import WEIGHT, basic, dopamine, make_pump, pump_library, start

D = Decimal
Case = Callable[[], None]
NOT_PROVIDED, UNSAFE, TIMING, STOPPED = "not_provided", "unsafe", "too_early_or_late", "stopped_too_soon"


def _refused(code: str, action: Callable[[], object]) -> None:
    with pytest.raises(PumpError) as refused:
        action()
    assert refused.value.code == code


def _heparin_with_bolus_running() -> tuple[Pump, ManualClock]:
    pump, clock = make_pump()
    start(pump, "A", InfusionProgram(entry_id="icu-heparin", dose=D(18), patient=WEIGHT, vtbi_ml=D(250)))
    pump.bolus(
        "A",
        InfusionProgram(
            entry_id="icu-heparin", kind=ProgramKind.BOLUS, dose=D(80), patient=WEIGHT, duration_min=D(5)
        ),
    )
    clock.advance(30)
    return pump, clock


def _assert_stopped_mid_bolus(pump: Pump, clock: ManualClock) -> None:
    therapy = pump.channel("A").therapy
    assert therapy is not None and therapy.overlay is None
    assert pump.events.of_type(EventType.BOLUS_CANCELLED)[0].data["reason"] == "alarm"
    infused = therapy.infused_ml
    clock.advance(600)
    pump.sync()
    assert pump.channel("A").flow_ml_per_h == 0 and therapy.infused_ml == infused


# ---------------------------------------------------------------- SAF-SCM-01 power-on self-test


def _post_failure_blocks_every_start() -> None:
    pump, _ = make_pump()
    pump.fault("post", "ram pattern")
    pump.program("A", basic("10"))
    pump.confirm("A")
    _refused("pump.faulted", lambda: pump.start("A"))


def _self_test_failure_reported_late_stops_running_channels() -> None:
    pump, clock = make_pump(channels=2)
    start(pump, "A", basic("100"))
    start(pump, "B", basic("50"))
    clock.advance(60)
    pump.fault("periodic_self_test", "rom crc")
    assert all(c.flow_ml_per_h == 0 for c in pump.channels.values())


def _self_test_failure_cannot_be_cleared_away() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100"))
    pump.fault("post")
    _refused("pump.alarm_persists", lambda: pump.clear_alarm(AlarmId.SYSTEM_FAILURE))
    _refused("pump.faulted", lambda: pump.resume("A"))


POST = {
    UNSAFE: _post_failure_blocks_every_start,
    TIMING: _self_test_failure_reported_late_stops_running_channels,
    STOPPED: _self_test_failure_cannot_be_cleared_away,
}


@pytest.mark.parametrize("deviation", sorted(POST))
def test_self_test_deviations(deviation: str) -> None:
    POST[deviation]()


# ---------------------------------------------------------------- SAF-SCM-02 battery


def _low_battery_at_ac_loss_alarms_at_once() -> None:
    pump, _ = make_pump(battery_charge_min=BATTERY_LOW_MIN - 1)
    start(pump, "A", basic("100"))
    pump.ac_power(False)
    assert pump.alarms.is_active(AlarmId.BATTERY_LOW, None)
    assert (
        pump.events.of_type(EventType.BATTERY_LOW)[0].ts == pump.events.of_type(EventType.POWER_AC_LOST)[0].ts
    )


def _depleted_battery_at_ac_loss_stops_delivery_at_once() -> None:
    pump, _ = make_pump(battery_charge_min=BATTERY_DEPLETED_MIN - 1)
    start(pump, "A", basic("100"))
    pump.ac_power(False)
    assert pump.alarms.is_active(AlarmId.BATTERY_DEPLETED, None)
    assert pump.channel("A").flow_ml_per_h == 0


def _low_battery_alarm_returns_when_ac_is_lost_again() -> None:
    pump, clock = make_pump(battery_charge_min=BATTERY_LOW_MIN - 1)
    pump.ac_power(False)
    pump.ac_power(True)
    assert not pump.alarms.is_active(AlarmId.BATTERY_LOW, None)
    clock.advance(1)
    pump.ac_power(False)
    assert pump.alarms.is_active(AlarmId.BATTERY_LOW, None)
    assert len(pump.events.of_type(EventType.BATTERY_LOW)) == 2


BATTERY = {
    NOT_PROVIDED: _low_battery_at_ac_loss_alarms_at_once,
    TIMING: _depleted_battery_at_ac_loss_stops_delivery_at_once,
    STOPPED: _low_battery_alarm_returns_when_ac_is_lost_again,
}


@pytest.mark.parametrize("deviation", sorted(BATTERY))
def test_battery_deviations(deviation: str) -> None:
    BATTERY[deviation]()


# ---------------------------------------------------------------- SAF-SCM-04 alarm system


def _a_new_alarm_sounds_through_an_audio_pause() -> None:
    pump, _ = make_pump(channels=2)
    start(pump, "A", basic("100"))
    pump.ac_power(False)
    pump.silence()
    assert not pump.alarms.audible(pump.now_s)
    pump.open_door("A")
    assert pump.alarms.sounding(pump.now_s) is Priority.HIGH


def _every_stopping_alarm_is_high_priority() -> None:
    assert [
        a for a, spec in ALARMS.items() if spec.stops_delivery and spec.priority is not Priority.HIGH
    ] == []


def _audio_pause_cannot_outlast_two_minutes() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100"))
    pump.open_door("A")
    pump.silence()
    clock.advance(120)
    assert pump.status().audible is True


def _a_short_medium_condition_still_completes_its_burst() -> None:
    pump, clock = make_pump(battery_charge_min=BATTERY_LOW_MIN - 1)
    pump.ac_power(False)
    clock.advance(0.1)
    pump.ac_power(True)
    assert pump.status().audible is True


ALARM_SYSTEM = {
    NOT_PROVIDED: _a_new_alarm_sounds_through_an_audio_pause,
    UNSAFE: _every_stopping_alarm_is_high_priority,
    TIMING: _audio_pause_cannot_outlast_two_minutes,
    STOPPED: _a_short_medium_condition_still_completes_its_burst,
}


@pytest.mark.parametrize("deviation", sorted(ALARM_SYSTEM))
def test_alarm_system_deviations(deviation: str) -> None:
    ALARM_SYSTEM[deviation]()


# ---------------------------------------------------------------- SAF-SCM-05 pumping mechanism


def _hardware_pump(rate: str) -> tuple[Pump, ManualClock, SimulatedHardware]:
    clock = ManualClock()
    hardware = SimulatedHardware(clock)
    pump = Pump("pump-1", PumpModel.LVP, clock, library=pump_library(), channels=1, hardware=hardware)
    pump.select_care_area("icu")
    start(pump, "A", basic(rate))
    return pump, clock, hardware


def _wake(pump: Pump, clock: ManualClock, seconds: int) -> None:
    for _ in range(seconds):
        clock.advance(1)
        pump.sync()


def _a_set_point_the_motor_ignores_is_detected() -> None:
    pump, clock, hardware = _hardware_pump("100")
    hardware.override_setpoint("A", D(0))
    _wake(pump, clock, 2)
    assert pump.alarms.is_active(AlarmId.MOTOR_RATE_MISMATCH, "A")


def _a_doubled_motor_rate_is_detected() -> None:
    pump, clock, hardware = _hardware_pump("100")
    hardware.scale_motor("A", D(2))
    _wake(pump, clock, 2)
    assert (
        pump.alarms.is_active(AlarmId.MOTOR_RATE_MISMATCH, "A") and hardware.encoder_rate_ml_per_h("A") == 0
    )


def _a_motor_that_keeps_running_after_stop_is_detected() -> None:
    pump, _, hardware = _hardware_pump("100")
    hardware.override_setpoint("A", D(100))
    pump.stop("A")
    assert pump.alarms.is_active(AlarmId.MOTOR_RATE_MISMATCH, "A")
    assert pump.events.of_type(EventType.MOTOR_RATE_MISMATCH)[0].data["trigger"] == "rate_change"


def _a_tripped_mechanism_cannot_be_restarted() -> None:
    pump, clock, hardware = _hardware_pump("100")
    hardware.scale_setpoint("A", D(2))
    _wake(pump, clock, 2)
    hardware.scale_setpoint("A", D(1))
    _refused("pump.motor_fault", lambda: pump.resume("A"))
    _refused("pump.alarm_persists", lambda: pump.clear_alarm(AlarmId.MOTOR_RATE_MISMATCH, "A"))


MECHANISM = {
    NOT_PROVIDED: _a_set_point_the_motor_ignores_is_detected,
    UNSAFE: _a_doubled_motor_rate_is_detected,
    TIMING: _a_motor_that_keeps_running_after_stop_is_detected,
    STOPPED: _a_tripped_mechanism_cannot_be_restarted,
}


@pytest.mark.parametrize("deviation", sorted(MECHANISM))
def test_pumping_mechanism_deviations(deviation: str) -> None:
    MECHANISM[deviation]()


# ---------------------------------------------------------------- SAF-SCM-06 watchdog


def _watchdog_trip_during_a_bolus_stops_it() -> None:
    pump, clock = _heparin_with_bolus_running()
    pump.fault("watchdog", "control loop overran")
    assert pump.alarms.is_active(AlarmId.WATCHDOG, None)
    _assert_stopped_mid_bolus(pump, clock)


def _watchdog_safe_state_holds() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100"))
    pump.fault("watchdog")
    _refused("pump.alarm_persists", lambda: pump.clear_alarm(AlarmId.WATCHDOG))
    _refused("pump.faulted", lambda: pump.resume("A"))
    pump.program("B", basic("10"))
    pump.confirm("B")
    _refused("pump.faulted", lambda: pump.start("B"))


WATCHDOG = {TIMING: _watchdog_trip_during_a_bolus_stops_it, STOPPED: _watchdog_safe_state_holds}


@pytest.mark.parametrize("deviation", sorted(WATCHDOG))
def test_watchdog_deviations(deviation: str) -> None:
    WATCHDOG[deviation]()


# ---------------------------------------------------------------- SAF-SCM-07 memory (stored critical data)


def _a_corrupted_stored_state_is_not_used() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100"))
    clock.advance(60)
    key = b"device-provisioned-key-for-test!"
    stored = bytearray(pump.to_sealed_state(key))
    stored[len(stored) // 2] ^= 0x01
    restored = Pump.power_on(
        bytes(stored), key, pump_id="pump-1", model=PumpModel.LVP, clock=ManualClock(), library=pump_library()
    )
    assert restored.channel("A").therapy is None and restored.alarms.is_active(AlarmId.STATE_INTEGRITY, None)


def _a_stored_program_outside_todays_hard_limits_is_refused() -> None:
    pump, _ = make_pump()
    start(pump, "A", dopamine("5"))
    state = json.loads(json.dumps(pump.to_state()))
    state["channel_state"]["A"]["therapy"]["program"]["dose"] = "50"
    _refused("pump.state_invalid", lambda: Pump.from_state(state, ManualClock(), pump_library()))


MEMORY = {
    UNSAFE: _a_corrupted_stored_state_is_not_used,
    STOPPED: _a_stored_program_outside_todays_hard_limits_is_refused,
}


@pytest.mark.parametrize("deviation", sorted(MEMORY))
def test_stored_data_deviations(deviation: str) -> None:
    MEMORY[deviation]()


# ---------------------------------------------------------------- SAF-SCM-08 air-in-line sensor


def _small_bubbles_below_the_single_threshold_are_summed() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100"))
    single = pump.caps.air_single_bubble_ul
    for _ in range(int(pump.caps.air_cumulative_ul / (single - 1)) + 1):
        pump.air_bubble("A", single - 1)
    assert pump.alarms.is_active(AlarmId.AIR_CUMULATIVE, "A") and pump.channel("A").flow_ml_per_h == 0


def _air_during_a_bolus_stops_it() -> None:
    pump, clock = _heparin_with_bolus_running()
    pump.air_bubble("A", pump.caps.air_single_bubble_ul)
    _assert_stopped_mid_bolus(pump, clock)


def _air_alarm_holds_until_primed_and_reset() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100"))
    pump.air_bubble("A", pump.caps.air_single_bubble_ul)
    _refused("pump.alarm_active", lambda: pump.resume("A"))
    _refused("pump.alarm_persists", lambda: pump.clear_alarm(AlarmId.AIR_IN_LINE, "A"))
    pump.air_cleared("A")
    _refused("pump.alarm_active", lambda: pump.resume("A"))
    pump.clear_alarm(AlarmId.AIR_IN_LINE, "A")
    pump.resume("A")
    assert pump.channel("A").state is ChannelState.RUNNING


AIR = {
    UNSAFE: _small_bubbles_below_the_single_threshold_are_summed,
    TIMING: _air_during_a_bolus_stops_it,
    STOPPED: _air_alarm_holds_until_primed_and_reset,
}


@pytest.mark.parametrize("deviation", sorted(AIR))
def test_air_sensor_deviations(deviation: str) -> None:
    AIR[deviation]()


# ---------------------------------------------------------------- SAF-SCM-10 sensor checks (occlusion, door)


def _an_occlusion_threshold_beyond_the_model_is_refused() -> None:
    pump, _ = make_pump()
    _refused(
        "pump.occlusion_out_of_range",
        lambda: pump.set_occlusion_threshold("A", pump.caps.max_occlusion_mmhg + 1),
    )


def _occlusion_alarm_is_never_later_than_the_compliance_time() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("25", vtbi="9999"))
    pump.occlude_downstream("A")
    clock.advance(
        float(time_to_alarm_s(CAPABILITIES[PumpModel.LVP], D(25), pump.channel("A").line.threshold_mmhg))
    )
    pump.sync()
    assert pump.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, "A") and pump.channel("A").flow_ml_per_h == 0


def _occlusion_release_does_not_restart_without_configuration() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="9999"))
    pump.occlude_downstream("A")
    clock.advance(3600)
    pump.sync()
    assert pump.release_downstream("A") <= D("0.5")
    assert pump.channel("A").state is ChannelState.ALARM


def _start_with_the_door_open_is_refused() -> None:
    pump, _ = make_pump()
    pump.open_door("A")
    pump.program("A", basic("10"))
    pump.confirm("A")
    _refused("pump.door_open", lambda: pump.start("A"))


def _door_opened_during_a_bolus_stops_it() -> None:
    pump, clock = _heparin_with_bolus_running()
    pump.open_door("A")
    _assert_stopped_mid_bolus(pump, clock)


def _closing_the_door_does_not_resume_by_itself() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100"))
    pump.open_door("A")
    pump.close_door("A")
    clock.advance(60)
    pump.sync()
    assert pump.channel("A").state is ChannelState.ALARM
    _refused("pump.alarm_active", lambda: pump.resume("A"))


SENSORS = {
    f"occlusion_{UNSAFE}": _an_occlusion_threshold_beyond_the_model_is_refused,
    f"occlusion_{TIMING}": _occlusion_alarm_is_never_later_than_the_compliance_time,
    f"occlusion_{STOPPED}": _occlusion_release_does_not_restart_without_configuration,
    f"door_{UNSAFE}": _start_with_the_door_open_is_refused,
    f"door_{TIMING}": _door_opened_during_a_bolus_stops_it,
    f"door_{STOPPED}": _closing_the_door_does_not_resume_by_itself,
}


@pytest.mark.parametrize("deviation", sorted(SENSORS))
def test_occlusion_and_door_sensor_deviations(deviation: str) -> None:
    SENSORS[deviation]()


# ---------------------------------------------------------------- SAF-SCM-11 dose error reduction check


def _no_start_without_a_checked_program() -> None:
    pump, _ = make_pump()
    _refused("pump.nothing_to_start", lambda: pump.start("A"))
    bare = Pump("pump-2", PumpModel.LVP, ManualClock(), library=pump_library())
    _refused("pump.no_care_area", lambda: bare.program("A", dopamine("5")))


def _a_hard_stop_cannot_be_started_or_overridden() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("50"))
    _refused("pump.override_not_allowed", lambda: pump.override("A", "other"))
    _refused("pump.hard_stop", lambda: pump.confirm("A"))
    _refused("pump.hard_stop", lambda: pump.start("A"))
    assert pump.events.of_type(EventType.INFUSION_STARTED) == []


def _start_before_confirm_and_titration_before_confirm_do_nothing() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("5"))
    _refused("pump.not_confirmed", lambda: pump.start("A"))
    pump.confirm("A")
    pump.start("A")
    rate = pump.channel("A").flow_ml_per_h
    pump.program("A", dopamine("10"))
    assert pump.channel("A").flow_ml_per_h == rate


def _a_soft_alert_is_not_passed_without_a_reason() -> None:
    pump, _ = make_pump()
    verdict = pump.program("A", dopamine("25"))
    assert verdict.level.value == "soft"
    _refused("pump.override_required", lambda: pump.confirm("A"))
    _refused("pump.override_reason", lambda: pump.override("A", "because"))


DERS = {
    NOT_PROVIDED: _no_start_without_a_checked_program,
    UNSAFE: _a_hard_stop_cannot_be_started_or_overridden,
    TIMING: _start_before_confirm_and_titration_before_confirm_do_nothing,
    STOPPED: _a_soft_alert_is_not_passed_without_a_reason,
}


@pytest.mark.parametrize("deviation", sorted(DERS))
def test_dose_error_reduction_deviations(deviation: str) -> None:
    DERS[deviation]()
