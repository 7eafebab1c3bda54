"""Sensors and faults (occlusion with compliance, air, door, battery, AC, watchdog) and alarm behaviour."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.errors import PumpError
from smartpump.pump import ALARMS, AlarmId, ChannelState, EventType, Priority
from smartpump.pump.capabilities import CAPABILITIES
from smartpump.pump.device import time_to_alarm_s
from tests.unit.pump.library import basic, make_pump, start

D = Decimal


def test_occlusion_and_air_alarms_are_high_priority_and_stop_delivery() -> None:
    for alarm in (
        AlarmId.OCCLUSION_DOWNSTREAM,
        AlarmId.AIR_IN_LINE,
        AlarmId.AIR_CUMULATIVE,
        AlarmId.DOOR_OPEN,
    ):
        assert ALARMS[alarm].priority is Priority.HIGH and ALARMS[alarm].stops_delivery


@pytest.mark.parametrize("rate", ["1", "25", "400"])
def test_downstream_occlusion_alarms_at_the_compliance_time_and_stops_flow(rate: str) -> None:
    pump, clock = make_pump()
    start(pump, "A", basic(rate, vtbi="9999"))
    pump.occlude_downstream("A")
    expected_s = time_to_alarm_s(CAPABILITIES[pump.caps.model], D(rate), D(500))
    clock.advance(float(expected_s) + 1)
    pump.sync()
    raised = pump.events.of_type(EventType.ALARM_RAISED)[0]
    started = pump.events.of_type(EventType.INFUSION_STARTED)[0]
    assert raised.data["alarm"] == "occlusion.downstream"
    assert raised.data["value"] == raised.data["limit"] == D(500)
    assert abs((raised.ts - started.ts).total_seconds() - float(expected_s)) < 1e-3
    assert pump.channel("A").flow_ml_per_h == 0


def test_time_to_occlusion_alarm_grows_as_the_rate_falls() -> None:
    caps = CAPABILITIES[next(iter(CAPABILITIES))]
    assert time_to_alarm_s(caps, D("0.1"), D(500)) > time_to_alarm_s(caps, D(5), D(500)) * 49


def test_post_occlusion_bolus_is_reduced_to_half_a_millilitre_or_less() -> None:
    pump, clock = make_pump()
    pump.set_occlusion_threshold("A", D(1000))
    start(pump, "A", basic("25", vtbi="9999"))
    pump.occlude_downstream("A")
    clock.advance(3600)
    pump.sync()
    bolus = pump.release_downstream("A")
    assert bolus <= D("0.5")
    released = pump.events.of_type(EventType.OCCLUSION_RELEASED)[0]
    backoff = released.data["backoff_ml"]
    assert isinstance(backoff, Decimal) and backoff > 0


def test_occlusion_alarm_latches_until_cleared_then_resume() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.occlude_downstream("A")
    clock.advance(600)
    with pytest.raises(PumpError) as refused:
        pump.clear_alarm(AlarmId.OCCLUSION_DOWNSTREAM, "A")
    assert refused.value.code == "pump.alarm_persists"
    pump.release_downstream("A")
    assert pump.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, "A")
    pump.clear_alarm(AlarmId.OCCLUSION_DOWNSTREAM, "A")
    pump.resume("A")
    assert pump.channel("A").state is ChannelState.RUNNING


def test_upstream_occlusion_stops_at_once() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.occlude_upstream("A")
    assert pump.channel("A").state is ChannelState.ALARM


def test_single_bubble_over_threshold_alarms() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.air_bubble("A", D(199))
    assert pump.channel("A").state is ChannelState.RUNNING
    pump.air_bubble("A", D(200))
    assert pump.alarms.is_active(AlarmId.AIR_IN_LINE, "A")


def test_small_bubbles_summing_over_the_cumulative_threshold_alarm() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    for _ in range(10):
        pump.air_bubble("A", D(100))
        clock.advance(60)
    assert pump.alarms.is_active(AlarmId.AIR_CUMULATIVE, "A")


def test_bubbles_outside_the_window_do_not_accumulate() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    for _ in range(10):
        pump.air_bubble("A", D(100))
        clock.advance(16 * 60)
    assert not pump.alarms.is_active(AlarmId.AIR_CUMULATIVE, "A")


def test_door_open_stops_flow_and_start_is_refused_while_open() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.open_door("A")
    assert pump.channel("A").flow_ml_per_h == 0
    pump.program("B", basic("50"))
    pump.confirm("B")
    pump.open_door("B")
    with pytest.raises(PumpError) as refused:
        pump.start("B")
    assert refused.value.code == "pump.door_open"


def test_battery_low_at_30_minutes_then_depleted_stops_all_channels() -> None:
    pump, clock = make_pump(battery_charge_min=D(60))
    start(pump, "A", basic("100", vtbi="9999"))
    pump.ac_power(False)
    clock.advance(3 * 3600)
    pump.sync()
    low = pump.events.of_type(EventType.BATTERY_LOW)[0]
    assert low.data["remaining_min"] == D(30)
    assert pump.events.of_type(EventType.BATTERY_DEPLETED)
    assert pump.channel("A").state is ChannelState.ALARM


def test_ac_restore_clears_low_battery() -> None:
    pump, clock = make_pump(battery_charge_min=D(40))
    pump.ac_power(False)
    clock.advance(20 * 60)
    pump.sync()
    assert pump.alarms.is_active(AlarmId.BATTERY_LOW, None)
    pump.ac_power(True)
    assert not pump.alarms.is_active(AlarmId.BATTERY_LOW, None)


def test_watchdog_failure_is_a_safe_stop_and_blocks_starts() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.fault("watchdog", "delivery task silent 3 min")
    assert pump.channel("A").state is ChannelState.ALARM
    with pytest.raises(PumpError):
        pump.resume("A")


def test_audio_pause_lasts_two_minutes_and_a_new_alarm_breaks_through() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    start(pump, "B", basic("100", vtbi="500"))
    pump.occlude_upstream("A")
    pump.silence()
    assert not pump.alarms.audible(pump.now_s)
    clock.advance(30)
    pump.air_bubble("B", D(500))
    assert pump.alarms.audible(pump.now_s)
    assert pump.events.of_type(EventType.ALARM_AUDIO_RESUMED)[0].data["reason"] == "new_alarm"


def test_audio_pause_expires_after_120_s() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.occlude_upstream("A")
    pump.silence()
    clock.advance(120)
    pump.sync()
    resumed = pump.events.of_type(EventType.ALARM_AUDIO_RESUMED)[0]
    assert resumed.data["reason"] == "pause_expired"
    assert (resumed.ts - pump.events.of_type(EventType.ALARM_SILENCED)[0].ts).total_seconds() == 120


def test_alarm_log_keeps_value_limit_and_clear_time() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    pump.air_bubble("A", D(300))
    pump.air_cleared("A")
    clock.advance(10)
    pump.clear_alarm("air_in_line.single", "A")
    record = pump.alarm_log()[0]
    assert (record.value, record.limit, record.cleared_at_s) == (D(300), D(200), D(10))


def test_rising_resistance_raises_an_infiltration_advisory() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("100", vtbi="500"))
    for value in ("10", "12", "14", "16"):
        pump.resistance_reading("A", D(value))
    assert pump.alarms.is_active(AlarmId.INFILTRATION, "A")
    assert pump.channel("A").state is ChannelState.RUNNING


def test_set_change_reminder_after_the_care_area_interval() -> None:
    pump, clock = make_pump()
    pump.install_set("A", set_type="LVP primary", lot="L123", line_label="central 1")
    clock.advance(96 * 3600)
    pump.sync()
    assert pump.events.of_type(EventType.SET_CHANGE_DUE)[0].data["lot"] == "L123"
