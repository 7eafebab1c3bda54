"""PCA dose ledger: lockout after each demand dose and a maximum amount over a rolling 1-12 h window.

Amounts are in the PCA dose unit (mg, mcg). A granted dose counts in full from the moment it is
granted; basal delivery counts as it is delivered. A demand is granted only when it is outside the
lockout and the window total plus the dose stays within the maximum (a total on the limit is inside).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from smartpump.pump.delivery import SECONDS_PER_HOUR, ZERO


class DoseKind(StrEnum):
    """What a ledger dose was."""

    DEMAND = "demand"
    LOADING = "loading"
    CLINICIAN = "clinician"


class Denial(StrEnum):
    """Why a demand was refused."""

    LOCKOUT = "lockout"
    MAX_DOSE = "max_dose"
    PAUSED = "paused"
    NOT_RUNNING = "not_running"
    DOSE_IN_PROGRESS = "dose_in_progress"


@dataclass(slots=True, kw_only=True)
class PcaLedger:
    """The dose history of one PCA therapy and the rules that gate the next demand."""

    demand_dose: Decimal
    lockout_s: Decimal
    max_dose: Decimal | None
    window_s: Decimal
    basal_per_h: Decimal = ZERO
    doses: list[tuple[Decimal, Decimal, DoseKind]] = field(default_factory=list)
    basal_segments: list[tuple[Decimal, Decimal | None]] = field(default_factory=list)
    last_demand_s: Decimal | None = None

    def basal_running(self, t: Decimal, running: bool) -> None:
        """Open or close a basal delivery segment at t."""
        if self.basal_per_h <= 0:
            return
        is_open = bool(self.basal_segments) and self.basal_segments[-1][1] is None
        if running and not is_open:
            self.basal_segments.append((t, None))
        elif not running and is_open:
            start, _ = self.basal_segments[-1]
            self.basal_segments[-1] = (start, t)

    def window_total(self, t: Decimal) -> Decimal:
        """Amount delivered or granted in the window (t - window, t]."""
        since = t - self.window_s
        total = sum((amount for at, amount, _ in self.doses if at > since), ZERO)
        for start, end in self.basal_segments:
            stop = t if end is None else end
            overlap = min(stop, t) - max(start, since)
            if overlap > 0:
                total += self.basal_per_h * overlap / SECONDS_PER_HOUR
        return total

    def lockout_remaining_s(self, t: Decimal) -> Decimal:
        """Seconds until the lockout after the last demand dose ends (0 when not locked out)."""
        if self.last_demand_s is None:
            return ZERO
        return max(ZERO, self.last_demand_s + self.lockout_s - t)

    def evaluate(self, t: Decimal, amount: Decimal, kind: DoseKind) -> Denial | None:
        """Why a dose would be refused now, or None when it may be given."""
        if kind is DoseKind.DEMAND and self.lockout_remaining_s(t) > 0:
            return Denial.LOCKOUT
        if self.max_dose is not None and self.window_total(t) + amount > self.max_dose:
            return Denial.MAX_DOSE
        return None

    def grant(self, t: Decimal, amount: Decimal, kind: DoseKind) -> None:
        """Record a dose given at t (demand doses start the lockout)."""
        self.doses.append((t, amount, kind))
        if kind is DoseKind.DEMAND:
            self.last_demand_s = t
