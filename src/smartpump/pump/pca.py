"""PCA dose ledger: lockout after each demand dose, and every window maximum held as a true ceiling.

Amounts are in the entry's PCA dose unit as programmed, which may be per kg (mg, mcg, mcg/kg): the
ledger never converts, so a per-kg ledger holds per-kg amounts and the caller turns doses into
volumes (x weight / concentration). Times are Decimal seconds on the pump's monotonic clock.

A ledger holds a tuple of ceilings (a maximum amount over a rolling window). The library's ceiling is
always there when the entry has a maximum; a program's maximum only adds a ceiling (it may be stricter,
it never replaces or loosens the library's). A granted dose counts in full from the moment it is
granted; basal delivery counts as it is delivered. The invariant: for every ceiling and every time t,
the amount in (t - window, t] is at most the ceiling's maximum (a total on the maximum is inside). It
holds when the caller grants only what ``evaluate`` allows (``grant`` refuses anything else) and
suspends the basal when ``basal_at_ceiling`` is true, checking again at ``basal_time_to_ceiling_s``
and after every grant. Totals are compared exactly (amounts scaled by 3600 s/h, never divided).

The pump's policy (pump/pca_control.py): the basal is suspended at the exact time a ceiling is
reached, with an alarm; it resumes only when the nurse clears that alarm while
``may_resume_basal`` holds, never on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from enum import StrEnum
from typing import Final

from smartpump.errors import PumpError
from smartpump.pump.delivery import MICROSECOND, SECONDS_PER_HOUR, ZERO

# Window totals are kept as amount x seconds-per-hour, so basal (rate x seconds) adds without a
# division; with 60 digits the sums are exact for any real clock and library, and Inexact is
# trapped so that a total is never silently rounded.
_EXACT: Final = Context(prec=60, traps=[Inexact, InvalidOperation])
_FLOOR: Final = Context(prec=60, rounding=ROUND_FLOOR, traps=[InvalidOperation])
_REPORT: Final = Context(prec=28, rounding=ROUND_HALF_UP, traps=[InvalidOperation])


@contextmanager
def _exact() -> Iterator[None]:
    """Exact arithmetic; a result that would need rounding is refused as a PumpError."""
    try:
        with localcontext(_EXACT):
            yield
    except Inexact as error:
        raise PumpError(
            "a PCA time or amount has too many digits to total exactly", code="pump.pca_not_exact"
        ) from error


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


class CeilingSource(StrEnum):
    """Who set a ceiling: the drug library (always applies) or the program (only adds)."""

    LIBRARY = "library"
    PROGRAM = "program"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ceiling:
    """At most ``max_amount`` (ledger unit) in any rolling window of ``window_s`` seconds."""

    max_amount: Decimal
    window_s: Decimal
    source: CeilingSource

    def __post_init__(self) -> None:
        """Refuse a negative maximum or a window that is not positive."""
        if self.max_amount < 0:
            raise PumpError(
                f"a PCA maximum cannot be negative ({self.max_amount})", code="pump.pca_ceiling_invalid"
            )
        if self.window_s <= 0:
            raise PumpError(
                f"a PCA window must be positive ({self.window_s} s)", code="pump.pca_ceiling_invalid"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Headroom:
    """How much more a ceiling allows now: ``amount`` = max_amount - window_total (ledger unit)."""

    ceiling: Ceiling
    window_total: Decimal
    amount: Decimal


@dataclass(slots=True, init=False)
class PcaLedger:
    """The dose history of one PCA therapy and the ceilings and lockout that gate the next dose.

    ``doses``, ``basal_segments`` and ``last_demand_s`` are the persisted history: doses as
    (granted at s, amount, kind), basal as (start s, end s or None while open).
    """

    demand_dose: Decimal
    lockout_s: Decimal
    ceilings: tuple[Ceiling, ...]
    basal_per_h: Decimal
    doses: list[tuple[Decimal, Decimal, DoseKind]]
    basal_segments: list[tuple[Decimal, Decimal | None]]
    last_demand_s: Decimal | None
    basal_suspended: bool
    _report_window_s: Decimal | None

    def __init__(
        self,
        *,
        demand_dose: Decimal,
        lockout_s: Decimal,
        ceilings: tuple[Ceiling, ...] = (),
        basal_per_h: Decimal = ZERO,
        max_dose: Decimal | None = None,
        window_s: Decimal | None = None,
    ) -> None:
        """A ledger with no history.

        Args:
            demand_dose: the demand dose (ledger unit).
            lockout_s: seconds after a demand dose during which demands are refused.
            ceilings: every ceiling to enforce (the library's, plus the program's if it has one).
            basal_per_h: the dose per hour the basal really delivers (ledger unit; at the pump's
                rounded rate), 0 without a basal.
            max_dose: the single-maximum form for callers with one maximum: when set, adds a PROGRAM
                ceiling of max_dose over window_s.
            window_s: with max_dose, that ceiling's window; without, only the window
                ``window_total(t)`` reports over while there is no ceiling.

        Raises:
            PumpError: ``pump.pca_ceiling_invalid`` for a max_dose without window_s, or a bad ceiling.
        """
        if max_dose is not None:
            if window_s is None:
                raise PumpError("a PCA maximum needs a window", code="pump.pca_ceiling_invalid")
            ceilings = (
                *ceilings,
                Ceiling(max_amount=max_dose, window_s=window_s, source=CeilingSource.PROGRAM),
            )
        self.demand_dose = demand_dose
        self.lockout_s = lockout_s
        self.ceilings = ceilings
        self.basal_per_h = basal_per_h
        self.doses = []
        self.basal_segments = []
        self.last_demand_s = None
        self.basal_suspended = False
        self._report_window_s = window_s

    # ----------------------------------------------------------------- totals

    def _scaled_total(self, t: Decimal, window_s: Decimal) -> Decimal:
        """Exact amount x 3600 granted or delivered in (t - window_s, t]."""
        with _exact():
            since = t - window_s
            total = SECONDS_PER_HOUR * sum((a for at, a, _ in self.doses if since < at <= t), ZERO)
            for start, end in self.basal_segments:
                overlap = min(t if end is None else end, t) - max(start, since)
                if overlap > 0:
                    total += self.basal_per_h * overlap
            return total

    def window_total(self, t: Decimal, ceiling: Ceiling | None = None) -> Decimal:
        """Amount granted or delivered in the ceiling's window (t - window, t] (ledger unit).

        Without a ceiling: over ``window_s`` (the window of the ceiling ``max_dose`` reports).
        Exact unless basal makes it a repeating fraction (then rounded half-up to 28 digits).
        """
        window_s = self.window_s if ceiling is None else ceiling.window_s
        if window_s is None:
            raise PumpError("this PCA ledger has no window to report over", code="pump.pca_no_window")
        return _REPORT.divide(self._scaled_total(t, window_s), SECONDS_PER_HOUR)

    def _scaled_headroom(self, t: Decimal) -> tuple[Decimal, Ceiling] | None:
        """The smallest exact (max - total) x 3600 over the ceilings, with its ceiling (first on a tie)."""
        tightest: tuple[Decimal, Ceiling] | None = None
        for ceiling in self.ceilings:
            with _exact():
                room = SECONDS_PER_HOUR * ceiling.max_amount - self._scaled_total(t, ceiling.window_s)
            if tightest is None or room < tightest[0]:
                tightest = (room, ceiling)
        return tightest

    def headroom(self, t: Decimal) -> Headroom | None:
        """The tightest ceiling now (smallest max - total) with its total, or None without a ceiling."""
        tightest = self._scaled_headroom(t)
        if tightest is None:
            return None
        _, ceiling = tightest
        total = self.window_total(t, ceiling)
        return Headroom(ceiling=ceiling, window_total=total, amount=ceiling.max_amount - total)

    @property
    def reference_ceiling(self) -> Ceiling | None:
        """The ceiling with the smallest maximum (longest window on a tie): the single one reported
        by callers that show one maximum; use ``headroom(t)`` for the ceiling that binds now."""
        if not self.ceilings:
            return None
        return min(self.ceilings, key=lambda c: (c.max_amount, -c.window_s))

    @property
    def max_dose(self) -> Decimal | None:
        """The reference ceiling's maximum, None without a ceiling."""
        reference = self.reference_ceiling
        return None if reference is None else reference.max_amount

    @property
    def window_s(self) -> Decimal | None:
        """The reference ceiling's window; without a ceiling, the window given at construction."""
        reference = self.reference_ceiling
        return self._report_window_s if reference is None else reference.window_s

    # ----------------------------------------------------------------- demand and doses

    def lockout_remaining_s(self, t: Decimal) -> Decimal:
        """Seconds until the lockout after the last demand dose ends (0 when not locked out)."""
        if self.last_demand_s is None:
            return ZERO
        return max(ZERO, self.last_demand_s + self.lockout_s - t)

    def evaluate(self, t: Decimal, amount: Decimal, kind: DoseKind) -> Denial | None:
        """Why a dose would be refused now, or None when it may be given.

        LOCKOUT for a demand inside the lockout; MAX_DOSE when any ceiling's window total plus the
        amount would exceed its maximum (a total exactly on the maximum is inside).

        Raises:
            PumpError: ``pump.pca_amount_not_positive`` for an amount that is not positive.
        """
        if amount <= 0:
            raise PumpError(f"a PCA dose must be positive ({amount})", code="pump.pca_amount_not_positive")
        if kind is DoseKind.DEMAND and self.lockout_remaining_s(t) > 0:
            return Denial.LOCKOUT
        with _exact():
            scaled_amount = SECONDS_PER_HOUR * amount
            for ceiling in self.ceilings:
                room = SECONDS_PER_HOUR * ceiling.max_amount - self._scaled_total(t, ceiling.window_s)
                if scaled_amount > room:
                    return Denial.MAX_DOSE
        return None

    def grant(self, t: Decimal, amount: Decimal, kind: DoseKind) -> None:
        """Record a dose given at t (demand doses start the lockout); only what ``evaluate`` allows.

        Raises:
            PumpError: ``pump.pca_lockout`` or ``pump.pca_max_dose`` when ``evaluate`` refuses;
                nothing is recorded then.
        """
        denial = self.evaluate(t, amount, kind)
        if denial is not None:
            raise PumpError(
                f"a {kind} dose of {amount} is refused: {denial}", code=f"pump.pca_{denial.value}"
            )
        self.doses.append((t, amount, kind))
        if kind is DoseKind.DEMAND:
            self.last_demand_s = t

    # ----------------------------------------------------------------- basal

    @property
    def basal_open(self) -> bool:
        """True while a basal delivery segment is open (the basal is flowing)."""
        return bool(self.basal_segments) and self.basal_segments[-1][1] is None

    def basal_running(self, t: Decimal, running: bool) -> None:
        """Open or close a basal delivery segment at t (the pump reports its real basal flow).

        Raises:
            PumpError: ``pump.pca_basal_suspended`` when the basal is reported flowing while it is
                suspended at a ceiling (the pump must not run it then).
        """
        if self.basal_per_h <= 0:
            return
        if running and not self.basal_open:
            if self.basal_suspended:
                raise PumpError(
                    "the basal is suspended at the PCA maximum and may not run",
                    code="pump.pca_basal_suspended",
                )
            self.basal_segments.append((t, None))
        elif not running and self.basal_open:
            start, _ = self.basal_segments[-1]
            self.basal_segments[-1] = (start, t)

    def basal_time_to_ceiling_s(self, t: Decimal) -> Decimal | None:
        """Seconds from t until the running basal alone brings the tightest ceiling to its maximum.

        Assumes nothing leaves any window, so it is a lower bound: the caller checks again at
        t + the result (and after any grant). Rounded down to the microsecond, so the total at that
        time is still within every maximum; 0 when already there. None when no basal is flowing
        or there is no ceiling.
        """
        if self.basal_per_h <= 0 or not self.basal_open:
            return None
        tightest = self._scaled_headroom(t)
        if tightest is None:
            return None
        room, _ = tightest
        if room <= 0:
            return ZERO
        return _FLOOR.divide(room, self.basal_per_h).quantize(MICROSECOND, context=_FLOOR)

    def basal_at_ceiling(self, t: Decimal) -> bool:
        """True when some ceiling has less headroom than one microsecond of basal: stop the basal now."""
        tightest = self._scaled_headroom(t)
        if tightest is None:
            return False
        room, _ = tightest
        with _exact():
            return room < self.basal_per_h * MICROSECOND

    def may_resume_basal(self, t: Decimal) -> bool:
        """True when the basal is suspended and every ceiling has at least one microsecond of basal
        headroom. Who resumes is the caller's policy: resumed at once, the basal would run only as
        fast as the windows free up."""
        return self.basal_suspended and not self.basal_at_ceiling(t)

    def suspend_basal(self, t: Decimal) -> None:
        """Stop the basal at a ceiling: close its segment at t; it stays off until ``resume_basal``."""
        self.basal_running(t, False)
        self.basal_suspended = True

    def resume_basal(self, t: Decimal) -> None:
        """Allow the basal again (the pump then reports its flow through ``basal_running``).

        Raises:
            PumpError: ``pump.pca_basal_not_resumable`` unless ``may_resume_basal(t)``.
        """
        if not self.may_resume_basal(t):
            raise PumpError(
                "the basal cannot resume: it is not suspended, or a PCA maximum is reached",
                code="pump.pca_basal_not_resumable",
            )
        self.basal_suspended = False
