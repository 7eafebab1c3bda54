"""Simulated motor hardware for a pump (the ``HardwarePort``), with injectable divergence faults.

Per channel the controller register holds the commanded set-point unless a fault overrides or
scales it; the motor runs at the register value times a motor fault factor while powered; the
encoder reads the motor. Delivered volume is integrated exactly on the clock's monotonic time, so a
test can measure what reached the patient while a fault went undetected.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from smartpump.clock import Clock
from smartpump.pump.delivery import ZERO, seconds, volume_over


@dataclass(slots=True, kw_only=True)
class MotorChannel:
    """One channel's motor: commanded set-point, injected faults, power, delivered volume."""

    commanded_ml_per_h: Decimal = ZERO
    setpoint_override_ml_per_h: Decimal | None = None
    setpoint_factor: Decimal = Decimal(1)
    motor_factor: Decimal = Decimal(1)
    powered: bool = True
    delivered_ml: Decimal = ZERO
    settled_at_s: Decimal = ZERO

    @property
    def setpoint_ml_per_h(self) -> Decimal:
        """What the motor controller register holds."""
        if self.setpoint_override_ml_per_h is not None:
            return self.setpoint_override_ml_per_h
        return self.commanded_ml_per_h * self.setpoint_factor

    @property
    def actual_ml_per_h(self) -> Decimal:
        """The rate the motor really turns at."""
        return self.setpoint_ml_per_h * self.motor_factor if self.powered else ZERO


class SimulatedHardware:
    """A ``HardwarePort`` on a Clock; faults are injected per channel and take effect at once."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.motors: dict[str, MotorChannel] = {}

    def _motor(self, channel: str) -> MotorChannel:
        t = seconds(self._clock.monotonic_s())
        motor = self.motors.get(channel)
        if motor is None:
            motor = self.motors[channel] = MotorChannel(settled_at_s=t)
        elapsed = t - motor.settled_at_s
        if elapsed > 0:
            motor.delivered_ml += volume_over(motor.actual_ml_per_h, elapsed)
        motor.settled_at_s = t
        return motor

    def command_rate(self, channel: str, rate_ml_per_h: Decimal) -> None:
        """Write the set-point."""
        self._motor(channel).commanded_ml_per_h = rate_ml_per_h

    def setpoint_ml_per_h(self, channel: str) -> Decimal:
        """Read back the controller register."""
        return self._motor(channel).setpoint_ml_per_h

    def encoder_rate_ml_per_h(self, channel: str) -> Decimal:
        """The encoder's measured rate."""
        return self._motor(channel).actual_ml_per_h

    def cut_motor_power(self, channel: str) -> None:
        """The independent cut-off: the motor stops whatever the fault."""
        self._motor(channel).powered = False

    def delivered_ml(self, channel: str) -> Decimal:
        """Volume the motor has really pumped on a channel so far."""
        return self._motor(channel).delivered_ml

    def scale_setpoint(self, channel: str, factor: Decimal) -> None:
        """Fault: the controller register holds the commanded value times ``factor`` (tampered firmware)."""
        self._motor(channel).setpoint_factor = factor

    def override_setpoint(self, channel: str, rate_ml_per_h: Decimal | None) -> None:
        """Fault: the controller register is overwritten with a fixed rate (None removes the fault)."""
        self._motor(channel).setpoint_override_ml_per_h = rate_ml_per_h

    def scale_motor(self, channel: str, factor: Decimal) -> None:
        """Fault: the motor turns at ``factor`` times its set-point (drive or gearing failure)."""
        self._motor(channel).motor_factor = factor
