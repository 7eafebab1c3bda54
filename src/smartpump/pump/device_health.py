"""The pump's own health: mains and battery (low, depleted), self-test and watchdog faults, and the
motor rate cross-check against the hardware (SAF-DISP-01)."""

from __future__ import annotations

from decimal import Decimal

from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmId
from smartpump.pump.channel import Channel
from smartpump.pump.core import Action, PumpCore
from smartpump.pump.delivery import ZERO
from smartpump.pump.events import EventType
from smartpump.pump.hardware import RATE_CHECK_PERIOD_S, RateCheck
from smartpump.pump.sensors import BATTERY_DEPLETED_MIN, BATTERY_LOW_MIN


class DeviceHealth:
    """Power, faults and the motor rate check of one pump."""

    def __init__(self, core: PumpCore, alarming: AlarmControl) -> None:
        self.core = core
        self.alarming = alarming
        self._commanded: dict[str, Decimal] = {}
        self._rate_checked_at_s = core.t

    # ----------------------------------------------------------------- motor rate check

    def check_rates(self, trigger: str) -> None:
        """SAF-DISP-01: write each channel's set-point when it changed, then compare the displayed
        rate, the read-back set-point and the encoder; a divergence cuts motor power and alarms."""
        core = self.core
        hardware = core.hardware
        if hardware is None:
            return
        self._rate_checked_at_s = core.t
        for channel in core.channels.values():
            if channel.motor_fault:
                continue
            displayed = channel.flow_ml_per_h
            cause = trigger
            if self._commanded.get(channel.id) != displayed:
                hardware.command_rate(channel.id, displayed)
                self._commanded[channel.id] = displayed
                cause = "rate_change"
            reading = RateCheck(
                displayed_ml_per_h=displayed,
                setpoint_ml_per_h=hardware.setpoint_ml_per_h(channel.id),
                actuator_ml_per_h=hardware.encoder_rate_ml_per_h(channel.id),
                tolerance_ml_per_h=core.caps.resolution_at(displayed) / 2,
            )
            if not reading.agrees:
                self._motor_mismatch(channel, reading, cause)

    def _motor_mismatch(self, channel: Channel, reading: RateCheck, cause: str) -> None:
        hardware = self.core.hardware
        assert hardware is not None
        channel.motor_fault = True
        hardware.cut_motor_power(channel.id)
        hardware.command_rate(channel.id, ZERO)
        self._commanded[channel.id] = ZERO
        self.core.emit(
            EventType.MOTOR_RATE_MISMATCH,
            channel.id,
            displayed_ml_per_h=reading.displayed_ml_per_h,
            setpoint_ml_per_h=reading.setpoint_ml_per_h,
            actuator_ml_per_h=reading.actuator_ml_per_h,
            tolerance_ml_per_h=reading.tolerance_ml_per_h,
            trigger=cause,
        )
        wrong = reading.actuator_ml_per_h
        if abs(reading.setpoint_ml_per_h - reading.displayed_ml_per_h) > reading.tolerance_ml_per_h:
            wrong = reading.setpoint_ml_per_h
        self.alarming.raise_(
            AlarmId.MOTOR_RATE_MISMATCH, channel.id, value=wrong, limit=reading.displayed_ml_per_h
        )

    # ----------------------------------------------------------------- hooks

    def after_change(self) -> None:
        """Check the motor rates and settle the battery at its new load."""
        core = self.core
        self.check_rates("action")
        delivering = sum(1 for c in core.channels.values() if c.flow_ml_per_h > 0)
        if delivering != core.battery.delivering_channels:
            core.battery.settle(core.t)
            core.battery.delivering_channels = delivering

    def first_due(self, until: Decimal | None) -> tuple[Decimal, Action] | None:
        """The first of: battery low, battery depleted, the periodic rate check."""
        core = self.core
        dues: list[tuple[Decimal, Action]] = []
        if not core.alarms.is_active(AlarmId.BATTERY_LOW, None):
            low = core.battery.time_until_remaining_s(core.t, BATTERY_LOW_MIN)
            if low is not None:
                dues.append((low, self._battery_low))
        if not core.alarms.is_active(AlarmId.BATTERY_DEPLETED, None):
            depleted = core.battery.time_until_remaining_s(core.t, BATTERY_DEPLETED_MIN)
            if depleted is not None:
                dues.append((depleted, self._battery_depleted))
        if core.hardware is not None:
            dues.append((self._rate_checked_at_s + RATE_CHECK_PERIOD_S, self._periodic_check))
        first: tuple[Decimal, Action] | None = None
        for due in dues:
            if (until is None or due[0] <= until) and (first is None or due[0] < first[0]):
                first = due
        return first

    def _periodic_check(self) -> None:
        self.check_rates("periodic")

    def _battery_low(self) -> None:
        remaining = self.core.battery.remaining_min(self.core.t)
        self.core.emit(EventType.BATTERY_LOW, None, remaining_min=remaining)
        self.alarming.raise_(AlarmId.BATTERY_LOW, None, value=remaining, limit=BATTERY_LOW_MIN)

    def _battery_depleted(self) -> None:
        remaining = self.core.battery.remaining_min(self.core.t)
        self.core.emit(EventType.BATTERY_DEPLETED, None, remaining_min=remaining)
        self.alarming.raise_(AlarmId.BATTERY_DEPLETED, None, value=remaining, limit=BATTERY_DEPLETED_MIN)

    # ----------------------------------------------------------------- actions

    def ac_power(self, connected: bool) -> None:
        """Mains connected or lost; on battery the pump keeps infusing and counts down."""
        core = self.core
        core.sync()
        if connected == core.battery.on_ac:
            return
        core.battery.settle(core.t)
        core.battery.on_ac = connected
        remaining = core.battery.remaining_min(core.t)
        if connected:
            core.emit(EventType.POWER_AC_RESTORED, None, battery_remaining_min=remaining)
            for alarm in (AlarmId.AC_LOST, AlarmId.BATTERY_LOW):
                self.alarming.condition_ended(alarm, None)
            self.alarming.condition_ended(AlarmId.BATTERY_DEPLETED, None)
        else:
            core.emit(EventType.POWER_AC_LOST, None, battery_remaining_min=remaining)
            self.alarming.raise_(AlarmId.AC_LOST, None, value=remaining, limit=None)
            core.sync()

    def fault(self, test: str, detail: str) -> None:
        """A self-test or watchdog failure: safe stop of every channel and a latching HIGH alarm."""
        core = self.core
        core.sync()
        core.faulted = True
        core.emit(EventType.PUMP_SELF_TEST_FAILED, None, test=test, detail=detail)
        alarm = AlarmId.WATCHDOG if test == "watchdog" else AlarmId.SYSTEM_FAILURE
        self.alarming.raise_(alarm, None, value=None, limit=None)
        core.after_change()
