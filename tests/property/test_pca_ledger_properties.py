"""Hypothesis: a caller that grants only what the PCA ledger allows and stops the basal when the ledger
says so keeps every ceiling's window total within its maximum at every instant.

The check is independent of the ledger's own arithmetic: the supremum over all real times of each
window total is computed exactly (Fraction) from the recorded history, at every breakpoint and just
before it, and the ledger's ``window_total`` is compared with it at random times. Synthetic numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from smartpump.errors import PumpError
from smartpump.pump.delivery import MICROSECOND, ZERO
from smartpump.pump.pca import Ceiling, CeilingSource, Denial, DoseKind, PcaLedger

D = Decimal
HOUR = D(3600)
STOP_EARLY_AFTER = 1000  # a caller may always stop the basal early; it bounds pathological loops


def amounts(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals in [low, high] with at most ``places`` decimal places."""
    return st.decimals(D(low), D(high), places=places)


def ceilings(source: CeilingSource) -> st.SearchStrategy[Ceiling]:
    """A ceiling of 0.1-20 over 1-12 h."""
    return st.builds(
        Ceiling,
        max_amount=st.sampled_from([D(1), D(4), D(10), D(15)]) | amounts("0.1", "20", 2),
        window_s=st.integers(1, 12).map(lambda h: D(h) * HOUR),
        source=st.just(source),
    )


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[PcaLedger, tuple[Ceiling, ...]]:
    """A fresh ledger (the library ceiling, maybe a program ceiling, maybe a basal) and the ceilings
    it was given, which the checks use rather than trusting the ledger's own."""
    chosen: tuple[Ceiling, ...] = (draw(ceilings(CeilingSource.LIBRARY)),)
    if draw(st.booleans()):
        chosen = (*chosen, draw(ceilings(CeilingSource.PROGRAM)))
    ledger = PcaLedger(
        demand_dose=draw(amounts("0.1", "5", 3)),
        lockout_s=D(60) * draw(st.integers(0, 30)),
        ceilings=chosen,
        basal_per_h=draw(st.sampled_from([D(0), D(1), D(3), D(7)]) | amounts("0.01", "10", 3)),
    )
    return ledger, chosen


# Whole seconds typical of PCA (lockouts, windows) plus a microsecond fraction.
DURATIONS_S = st.builds(
    lambda whole_s, us: D(whole_s) + D(us) * MICROSECOND,
    st.sampled_from([0, 1, 60, 359, 360, 600, 1800, 3599, 3600, 7200, 14400]) | st.integers(0, 43200),
    st.just(0) | st.integers(0, 10**6 - 1),
)
STEPS = st.one_of(
    st.tuples(st.just("advance"), DURATIONS_S),
    st.tuples(st.just("demand"), st.none()),
    st.tuples(st.just("clinician"), amounts("0.1", "10", 3)),
    st.tuples(st.just("basal"), st.booleans()),
    st.tuples(st.just("resume"), st.none()),
)


def reference_total(ledger: PcaLedger, ceiling: Ceiling, t: Fraction, *, left: bool = False) -> Fraction:
    """Exact window total at t over (t - window, t]; with ``left``, its limit from below (the window
    [t - window, t))."""
    since = t - Fraction(ceiling.window_s)
    total = Fraction(0)
    for at_d, amount, _ in ledger.doses:
        at = Fraction(at_d)
        inside = since <= at < t if left else since < at <= t
        if inside:
            total += Fraction(amount)
    for start_d, end_d in ledger.basal_segments:
        start = Fraction(start_d)
        end = t if end_d is None else min(Fraction(end_d), t)
        overlap = end - max(start, since)
        if overlap > 0:
            total += Fraction(ledger.basal_per_h) * overlap / 3600
    return total


def supremum(ledger: PcaLedger, ceiling: Ceiling, now: Fraction) -> Fraction:
    """The largest window total over all real times up to now: the total is linear between the
    breakpoints (doses, basal starts and ends, and each of these plus the window), so its supremum
    is at a breakpoint or just before one."""
    window = Fraction(ceiling.window_s)
    points = {now}
    for at, _, _ in ledger.doses:
        points |= {Fraction(at), Fraction(at) + window}
    for start, end in ledger.basal_segments:
        for edge in (start, end):
            if edge is not None:
                points |= {Fraction(edge), Fraction(edge) + window}
    return max(
        max(reference_total(ledger, ceiling, p), reference_total(ledger, ceiling, p, left=True))
        for p in points
        if p <= now
    )


@dataclass
class Caller:
    """The pump's side: when to grant, when the basal flows, when to stop it at the ceiling."""

    ledger: PcaLedger
    ceilings: tuple[Ceiling, ...]
    t: Decimal = ZERO
    basal_wanted: bool = False
    stopped_early: int = 0
    stops_at_ceiling: int = 0
    max_denials: int = 0
    granted: list[Decimal] = field(default_factory=list)

    def flow(self) -> None:
        """Report the basal flow to the ledger: it runs when wanted and not suspended."""
        self.ledger.basal_running(self.t, self.basal_wanted and not self.ledger.basal_suspended)

    def advance(self, duration_s: Decimal) -> None:
        """Move time on, stopping the basal at the ceiling when the ledger says so."""
        target = self.t + duration_s
        checks = 0
        while self.ledger.basal_open:
            if self.ledger.basal_at_ceiling(self.t):
                self.ledger.suspend_basal(self.t)
                self.stops_at_ceiling += 1
                break
            until = self.ledger.basal_time_to_ceiling_s(self.t)
            assert until is not None and until > 0  # not at the ceiling: some basal may still run
            if self.t + until >= target:
                break
            self.t += until
            checks += 1
            if checks > STOP_EARLY_AFTER:
                self.ledger.suspend_basal(self.t)
                self.stopped_early += 1
        self.t = max(self.t, target)

    def dose(self, amount: Decimal, kind: DoseKind) -> None:
        """Grant when allowed; otherwise the ledger must refuse the grant too."""
        ledger = self.ledger
        locked = kind is DoseKind.DEMAND and ledger.lockout_remaining_s(self.t) > 0
        fits = all(
            reference_total(ledger, c, Fraction(self.t)) + Fraction(amount) <= Fraction(c.max_amount)
            for c in self.ceilings
        )
        denial = ledger.evaluate(self.t, amount, kind)
        expected = Denial.LOCKOUT if locked else (None if fits else Denial.MAX_DOSE)
        assert denial is expected
        self.max_denials += denial is Denial.MAX_DOSE
        if denial is None:
            ledger.grant(self.t, amount, kind)
            self.granted.append(amount)
        else:
            with pytest.raises(PumpError):
                ledger.grant(self.t, amount, kind)

    def resume(self) -> None:
        """Resume the basal when the ledger allows and at least a minute of basal headroom is left."""
        ledger = self.ledger
        if not ledger.may_resume_basal(self.t):
            with pytest.raises(PumpError):
                ledger.resume_basal(self.t)
            return
        headroom = ledger.headroom(self.t)
        assert headroom is not None
        if headroom.amount >= ledger.basal_per_h / 60:
            ledger.resume_basal(self.t)
            self.flow()


@settings(max_examples=300, deadline=None)
@given(
    drawn=ledgers(),
    basal_on=st.booleans(),
    auto_resume=st.booleans(),
    steps=st.lists(STEPS, min_size=5, max_size=50),
    data=st.data(),
)
def test_every_ceiling_holds_at_every_instant(
    drawn: tuple[PcaLedger, tuple[Ceiling, ...]],
    basal_on: bool,
    auto_resume: bool,
    steps: list[tuple[str, object]],
    data: st.DataObject,
) -> None:
    ledger, drawn_ceilings = drawn
    caller = Caller(ledger, drawn_ceilings, basal_wanted=basal_on)
    caller.flow()
    for action, argument in steps:
        if action == "advance":
            assert isinstance(argument, Decimal)
            caller.advance(argument)
            if auto_resume and ledger.basal_suspended:
                caller.resume()
        elif action == "demand":
            caller.dose(ledger.demand_dose, DoseKind.DEMAND)
        elif action == "clinician":
            assert isinstance(argument, Decimal)
            caller.dose(argument, DoseKind.CLINICIAN)
        elif action == "basal":
            caller.basal_wanted = bool(argument)
            caller.flow()
        else:
            caller.resume()
        now = Fraction(caller.t)
        for ceiling in drawn_ceilings:
            assert supremum(ledger, ceiling, now) <= Fraction(ceiling.max_amount)
            at = D(data.draw(st.integers(0, int(caller.t / MICROSECOND)), label="sample µs")) * MICROSECOND
            exact = reference_total(ledger, ceiling, Fraction(at))
            assert abs(Fraction(ledger.window_total(at, ceiling)) - exact) < Fraction(1, 10**20)
            assert exact <= Fraction(ceiling.max_amount)
    event(f"stops at ceiling: {min(caller.stops_at_ceiling, 3)}")
    event(f"early stops: {min(caller.stopped_early, 1)}")
    event(f"max-dose denials: {min(caller.max_denials, 2)}")
    note(
        f"t={caller.t} granted={caller.granted} stops={caller.stops_at_ceiling} early={caller.stopped_early}"
    )


def test_the_caller_stops_the_basal_exactly_at_a_ceiling() -> None:
    """The property above is not vacuous: this history reaches a ceiling through the basal alone."""
    ceiling = Ceiling(max_amount=D(1), window_s=HOUR, source=CeilingSource.LIBRARY)
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(ceiling,), basal_per_h=D(7))
    caller = Caller(ledger, (ceiling,))
    caller.basal_wanted = True
    caller.flow()
    caller.advance(HOUR)
    assert caller.stops_at_ceiling == 1 and ledger.basal_suspended
    stop = ledger.basal_segments[-1][1]
    assert stop is not None
    limit = Fraction(ceiling.max_amount)
    assert (
        limit - Fraction(7, 3600) * Fraction(MICROSECOND) < supremum(ledger, ceiling, Fraction(HOUR)) <= limit
    )
