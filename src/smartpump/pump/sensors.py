"""Sensor and power models: downstream pressure with line compliance, air-in-line, battery, IV site.

Each model is plain arithmetic on Decimals so the pump can compute when a threshold will be
crossed instead of sampling. Compliance is in uL/mmHg: the volume a pressurising line absorbs.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from smartpump.pump.delivery import SECONDS_PER_HOUR, ZERO, time_to_deliver

UL_PER_ML: Final = Decimal(1000)
BATTERY_LOW_MIN: Final = Decimal(30)
BATTERY_DEPLETED_MIN: Final = Decimal(5)
INFILTRATION_RATIO: Final = Decimal("1.5")
INFILTRATION_RISING_READINGS: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class LineModel:
    """Downstream line: occlusion threshold, compliance, resting pressure, bolus back-off volume."""

    threshold_mmhg: Decimal
    compliance_ul_per_mmhg: Decimal
    baseline_mmhg: Decimal = Decimal(10)
    backoff_ml: Decimal = Decimal("0.3")

    @property
    def stored_at_alarm_ml(self) -> Decimal:
        """Volume pumped into a closed line until the pressure reaches the threshold."""
        return max(ZERO, self.threshold_mmhg - self.baseline_mmhg) * self.compliance_ul_per_mmhg / UL_PER_ML

    def pressure_mmhg(self, pumped_into_closed_line_ml: Decimal) -> Decimal:
        """Line pressure after pumping a volume into a closed line."""
        return self.baseline_mmhg + pumped_into_closed_line_ml * UL_PER_ML / self.compliance_ul_per_mmhg

    def time_to_alarm_s(self, rate_ml_per_h: Decimal) -> Decimal:
        """Seconds from occlusion to alarm at a constant rate (grows as the rate falls)."""
        return time_to_deliver(self.stored_at_alarm_ml, rate_ml_per_h)

    def released_bolus_ml(self, stored_ml: Decimal) -> Decimal:
        """Unintended bolus when the occlusion is released, after the pump backs off."""
        return max(ZERO, stored_ml - self.backoff_ml)


@dataclass(slots=True, kw_only=True)
class AirMonitor:
    """Single-bubble and cumulative (rolling window) air-in-line detection, in uL."""

    single_ul: Decimal
    cumulative_ul: Decimal
    window_s: Decimal
    cumulative_enabled: bool = True
    bubbles: deque[tuple[Decimal, Decimal]] = field(default_factory=deque)

    def add(self, t: Decimal, volume_ul: Decimal) -> tuple[str | None, Decimal]:
        """Record a bubble; returns ('single'|'cumulative'|None, the value that tripped)."""
        self.bubbles.append((t, volume_ul))
        while self.bubbles and self.bubbles[0][0] <= t - self.window_s:
            self.bubbles.popleft()
        if volume_ul >= self.single_ul:
            return "single", volume_ul
        total = sum((v for _, v in self.bubbles), ZERO)
        if self.cumulative_enabled and total >= self.cumulative_ul:
            return "cumulative", total
        return None, total

    def reset(self) -> None:
        """Forget past bubbles (after the line was primed again)."""
        self.bubbles.clear()


@dataclass(slots=True, kw_only=True)
class Battery:
    """Charge in minutes of run time at base load; drains faster per delivering channel."""

    capacity_min: Decimal
    extra_load_per_channel: Decimal
    charge_per_min: Decimal
    charge_min: Decimal
    settled_at_s: Decimal = ZERO
    on_ac: bool = True
    delivering_channels: int = 0

    @property
    def load(self) -> Decimal:
        """Drain factor: 1 at idle, more with each delivering channel."""
        return 1 + self.extra_load_per_channel * self.delivering_channels

    def charge_at(self, t: Decimal) -> Decimal:
        """Charge (base-load minutes) at time t."""
        elapsed_min = (t - self.settled_at_s) / 60
        if self.on_ac:
            return min(self.capacity_min, self.charge_min + elapsed_min * self.charge_per_min)
        return max(ZERO, self.charge_min - elapsed_min * self.load)

    def settle(self, t: Decimal) -> None:
        """Fold the elapsed time into the charge (before the load or power source changes)."""
        self.charge_min = self.charge_at(t)
        self.settled_at_s = t

    def remaining_min(self, t: Decimal) -> Decimal:
        """Run time left at the current load."""
        return self.charge_at(t) / self.load

    def time_until_remaining_s(self, t: Decimal, remaining_min: Decimal) -> Decimal | None:
        """When (absolute s) the run time left falls to ``remaining_min``: ``t`` if it already has,
        None on AC."""
        if self.on_ac:
            return None
        target_charge = remaining_min * self.load
        current = self.charge_at(t)
        if current <= target_charge:
            return t
        return t + time_to_deliver(current - target_charge, self.load * 60)


@dataclass(slots=True, kw_only=True)
class ResistanceTrend:
    """Downstream resistance readings; a sustained rise over the baseline suggests infiltration."""

    readings: list[Decimal] = field(default_factory=list)

    def add(self, value: Decimal) -> tuple[bool, Decimal]:
        """Record a reading; returns (advisory?, ratio of latest to baseline)."""
        self.readings.append(value)
        baseline = self.readings[0]
        ratio = value / baseline if baseline > 0 else ZERO
        recent = self.readings[-(INFILTRATION_RISING_READINGS + 1) :]
        rising = len(recent) == INFILTRATION_RISING_READINGS + 1 and all(
            a < b for a, b in itertools.pairwise(recent)
        )
        return rising and ratio >= INFILTRATION_RATIO, ratio


def hours(value_s: Decimal) -> Decimal:
    """Seconds to hours."""
    return value_s / SECONDS_PER_HOUR
