"""The pump's port to its motor hardware and the rate cross-check of SAF-DISP-01.

The controller writes a set-point per channel; the hardware reads back the set-point its motor
controller holds and the rate its encoder measures. The pump compares the displayed program rate,
the read-back set-point and the encoder rate on every rate change and every ``RATE_CHECK_PERIOD_S``;
they agree when each differs from the displayed rate by at most half the model's rate resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

RATE_CHECK_PERIOD_S: Final = Decimal(1)


class HardwarePort(Protocol):
    """The motor side of one pump, per channel id."""

    def command_rate(self, channel: str, rate_ml_per_h: Decimal) -> None:
        """Write the controller set-point of a channel's motor."""
        ...

    def setpoint_ml_per_h(self, channel: str) -> Decimal:
        """Read back the set-point the motor controller holds now."""
        ...

    def encoder_rate_ml_per_h(self, channel: str) -> Decimal:
        """The rate the motor encoder measures now."""
        ...

    def cut_motor_power(self, channel: str) -> None:
        """Remove motor power through the independent cut-off (stays off until serviced)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RateCheck:
    """One cross-check of a channel: the three rates and the tolerance they were held to."""

    displayed_ml_per_h: Decimal
    setpoint_ml_per_h: Decimal
    actuator_ml_per_h: Decimal
    tolerance_ml_per_h: Decimal

    @property
    def agrees(self) -> bool:
        """True when set-point and actuator are each within the tolerance of the displayed rate."""
        return (
            abs(self.setpoint_ml_per_h - self.displayed_ml_per_h) <= self.tolerance_ml_per_h
            and abs(self.actuator_ml_per_h - self.displayed_ml_per_h) <= self.tolerance_ml_per_h
        )
