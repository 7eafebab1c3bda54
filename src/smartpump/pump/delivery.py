"""Exact, event-driven volume accounting: volumes in Decimal mL, times in Decimal seconds.

Nothing ticks: a flow of ``rate`` mL/h reaches a volume at a computed time (rounded up to the
microsecond, so a volume is never exceeded), and volumes between events are settled on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Final

from smartpump.errors import PumpError

MICROSECOND: Final = Decimal("0.000001")
SECONDS_PER_HOUR: Final = Decimal(3600)
ZERO: Final = Decimal(0)


def seconds(monotonic_s: float) -> Decimal:
    """A clock reading as Decimal seconds, floored to the microsecond."""
    return Decimal(repr(monotonic_s)).quantize(MICROSECOND, rounding=ROUND_FLOOR)


def volume_over(rate_ml_per_h: Decimal, duration_s: Decimal) -> Decimal:
    """Volume in mL a flow delivers in ``duration_s`` seconds (exact)."""
    return rate_ml_per_h * duration_s / SECONDS_PER_HOUR


def time_to_deliver(volume_ml: Decimal, rate_ml_per_h: Decimal) -> Decimal:
    """Seconds a flow needs for ``volume_ml``, rounded up to the microsecond."""
    if rate_ml_per_h <= 0:
        raise PumpError("a flow needs a positive rate", code="pump.rate_not_positive")
    return (volume_ml * SECONDS_PER_HOUR / rate_ml_per_h).quantize(MICROSECOND, rounding=ROUND_CEILING)


class OverlayKind(StrEnum):
    """Deliveries that temporarily replace the primary rate on a channel."""

    BOLUS = "bolus"
    LOADING = "loading"
    CLINICIAN_BOLUS = "clinician_bolus"
    PCA_DEMAND = "pca_demand"
    PCA_LOADING = "pca_loading"
    SECONDARY = "secondary"

    @property
    def from_primary_container(self) -> bool:
        """True when the volume comes from the primary container (counts towards its VTBI)."""
        return self is not OverlayKind.SECONDARY


@dataclass(slots=True, kw_only=True)
class Overlay:
    """A bolus or secondary infusion in progress: its rate, its volume and what is delivered."""

    kind: OverlayKind
    rate_ml_per_h: Decimal
    volume_ml: Decimal
    delivered_ml: Decimal = ZERO
    dose: Decimal | None = None
    dose_unit: str | None = None
    entry_id: str | None = None
    callback: bool = False
    """A secondary whose end the nurse asked to be called back for (``secondary.callback`` alarm)."""

    @property
    def remaining_ml(self) -> Decimal:
        """Volume still to deliver."""
        return self.volume_ml - self.delivered_ml


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One step of a multistep (ramp/taper) program: a rate held for a volume."""

    rate_ml_per_h: Decimal
    volume_ml: Decimal


def steps_total_ml(steps: tuple[Step, ...]) -> Decimal:
    """The VTBI of a multistep program (sum of its step volumes)."""
    return sum((s.volume_ml for s in steps), ZERO)
