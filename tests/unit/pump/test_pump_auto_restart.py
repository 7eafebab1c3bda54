"""SAF-OCC-04: a transient downstream occlusion restarts by itself only when the care area configures
it, at most ``auto_restart_attempts`` times per rolling 10 minutes, each restart logged."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from smartpump.clock import ManualClock
from smartpump.pump import AlarmId, ChannelState, EventType, Pump
from smartpump.pump.device import OCCLUSION_RECHECK_S
from tests.unit.pump.library import basic, pump_library, start

D = Decimal


def _pump(attempts: int | None) -> tuple[Pump, ManualClock]:
    library = pump_library()
    icu = library.care_area("icu")
    area = replace(icu, device=replace(icu.device, auto_restart_attempts=attempts))
    library = replace(library, care_areas=(area,))
    clock = ManualClock()
    pump = Pump("p", "lvp-4", clock, library=library, channels=1)
    pump.select_care_area("icu")
    start(pump, "A", basic("100", vtbi="999"))
    return pump, clock


def _occlude_until_detected(pump: Pump, clock: ManualClock) -> None:
    """Occlude and wait 20 s: at 100 mL/h the line holds 0.392 mL before 500 mmHg (14.1 s)."""
    pump.occlude_downstream("A")
    clock.advance(20)
    pump.sync()


def test_without_configuration_the_occlusion_alarms_at_once() -> None:
    pump, clock = _pump(None)
    _occlude_until_detected(pump, clock)
    detected = pump.events.of_type(EventType.OCCLUSION_DETECTED)[0]
    assert detected.data["auto_restart"] is False
    assert pump.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, "A")


def test_a_transient_occlusion_restarts_by_itself_and_is_logged() -> None:
    pump, clock = _pump(2)
    _occlude_until_detected(pump, clock)
    assert pump.channel("A").state is ChannelState.OCCLUSION_HOLD
    assert pump.channel("A").flow_ml_per_h == 0
    assert not pump.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, "A")
    bolus = pump.release_downstream("A")
    assert bolus <= D("0.5")
    restarted = pump.events.of_type(EventType.OCCLUSION_AUTO_RESTARTED)[0]
    assert (restarted.data["attempt"], restarted.data["max_attempts"]) == (1, 2)
    assert pump.channel("A").state is ChannelState.RUNNING


def test_an_occlusion_that_persists_past_the_recheck_alarms() -> None:
    pump, clock = _pump(2)
    _occlude_until_detected(pump, clock)
    clock.advance(float(OCCLUSION_RECHECK_S))
    pump.sync()
    assert pump.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, "A")
    assert pump.channel("A").state is ChannelState.ALARM
    assert not pump.events.of_type(EventType.OCCLUSION_AUTO_RESTARTED)


def test_restarts_are_limited_per_rolling_ten_minutes() -> None:
    pump, clock = _pump(2)
    for _ in range(2):
        _occlude_until_detected(pump, clock)
        pump.release_downstream("A")
    _occlude_until_detected(pump, clock)
    assert pump.events.of_type(EventType.OCCLUSION_DETECTED)[-1].data["auto_restart"] is False
    assert pump.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, "A")


def test_the_allowance_returns_once_the_window_has_passed() -> None:
    pump, clock = _pump(1)
    _occlude_until_detected(pump, clock)
    pump.release_downstream("A")
    clock.advance(600)
    _occlude_until_detected(pump, clock)
    assert pump.channel("A").state is ChannelState.OCCLUSION_HOLD
