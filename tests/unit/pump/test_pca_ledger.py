"""PCA ledger ceilings: the library's window maximum always binds, a program's only adds, basal stops
at the maximum and never crosses it. Numbers are synthetic worked examples (morphine, mg)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.errors import PumpError
from smartpump.pump.delivery import MICROSECOND
from smartpump.pump.pca import Ceiling, CeilingSource, Denial, DoseKind, PcaLedger

D = Decimal
HOUR = D(3600)
LIBRARY_4H = Ceiling(max_amount=D(15), window_s=4 * HOUR, source=CeilingSource.LIBRARY)
PROGRAM_1H = Ceiling(max_amount=D(10), window_s=HOUR, source=CeilingSource.PROGRAM)


def demand_every(
    ledger: PcaLedger, every_s: Decimal, until_s: Decimal
) -> list[tuple[Decimal, Denial | None]]:
    """Press the button every ``every_s`` from 0 to before ``until_s``, granting what is allowed."""
    outcomes: list[tuple[Decimal, Denial | None]] = []
    t = D(0)
    while t < until_s:
        denial = ledger.evaluate(t, ledger.demand_dose, DoseKind.DEMAND)
        if denial is None:
            ledger.grant(t, ledger.demand_dose, DoseKind.DEMAND)
        outcomes.append((t, denial))
        t += every_s
    return outcomes


def test_library_maximum_binds_without_a_program_maximum() -> None:
    # Issue 13 item 5: with no program max the pump gave 32 mg in 42 min against a 15 mg / 4 h max.
    ledger = PcaLedger(demand_dose=D(2), lockout_s=D(360), ceilings=(LIBRARY_4H,))
    outcomes = demand_every(ledger, D(360), 4 * HOUR)
    granted = [t for t, denial in outcomes if denial is None]
    assert granted == [D(360) * i for i in range(7)]  # 7 x 2 mg = 14 mg; an 8th would be 16 mg
    assert {denial for _, denial in outcomes[7:]} == {Denial.MAX_DOSE}
    assert ledger.window_total(4 * HOUR - 1, LIBRARY_4H) == D(14)
    # A 1 mg clinician bolus lands exactly on the maximum: inside.
    assert ledger.evaluate(D(2521), D(1), DoseKind.CLINICIAN) is None
    # Once the first dose leaves the 4 h window, demands are granted again.
    assert ledger.evaluate(4 * HOUR, D(2), DoseKind.DEMAND) is None


def test_program_maximum_adds_a_ceiling_and_the_library_still_binds_over_4_hours() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(360), ceilings=(LIBRARY_4H, PROGRAM_1H))
    outcomes = demand_every(ledger, D(360), 4 * HOUR)
    granted = [t for t, denial in outcomes if denial is None]
    # First hour: the program's 10 mg / 1 h stops the 11th demand.
    assert len([t for t in granted if t < HOUR]) == 10
    # Second hour: one demand every 6 min passes the 1 h ceiling, until the 4 h library total is 15.
    assert len(granted) == 15 and granted[-1] == HOUR + 4 * D(360)
    at = HOUR + 5 * D(360)
    assert ledger.window_total(at, PROGRAM_1H) == D(9)  # the program alone would allow 1 mg more
    headroom = ledger.headroom(at)
    assert headroom is not None and headroom.ceiling == LIBRARY_4H
    assert (headroom.window_total, headroom.amount) == (D(15), D(0))
    assert ledger.evaluate(at, D(1), DoseKind.DEMAND) is Denial.MAX_DOSE


def test_a_program_ceiling_is_stricter_over_its_own_window() -> None:
    ledger = PcaLedger(demand_dose=D(4), lockout_s=D(0), ceilings=(LIBRARY_4H, PROGRAM_1H))
    ledger.grant(D(0), D(4), DoseKind.DEMAND)
    ledger.grant(D(1), D(4), DoseKind.DEMAND)
    assert ledger.evaluate(D(2), D(4), DoseKind.DEMAND) is Denial.MAX_DOSE  # 12 > 10 in 1 h
    headroom = ledger.headroom(D(2))
    assert headroom is not None and headroom.ceiling.source is CeilingSource.PROGRAM
    assert headroom.amount == D(2)


@pytest.mark.parametrize(("extra", "allowed"), [(D(1), True), (D(1) + MICROSECOND, False)])
def test_total_exactly_on_every_maximum_is_inside(extra: Decimal, allowed: bool) -> None:
    library = Ceiling(max_amount=D(10), window_s=4 * HOUR, source=CeilingSource.LIBRARY)
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(library, PROGRAM_1H))
    ledger.grant(D(0), D(9), DoseKind.CLINICIAN)
    denial = ledger.evaluate(D(10), extra, DoseKind.CLINICIAN)
    assert (denial is None) is allowed
    if allowed:
        ledger.grant(D(10), extra, DoseKind.CLINICIAN)
        assert ledger.window_total(D(10), library) == ledger.window_total(D(10), PROGRAM_1H) == D(10)
    else:
        assert denial is Denial.MAX_DOSE


def test_grant_refuses_what_evaluate_refuses_and_records_nothing() -> None:
    ledger = PcaLedger(demand_dose=D(2), lockout_s=D(600), ceilings=(LIBRARY_4H,))
    ledger.grant(D(0), D(2), DoseKind.DEMAND)
    with pytest.raises(PumpError) as locked:
        ledger.grant(D(599), D(2), DoseKind.DEMAND)
    assert locked.value.code == "pump.pca_lockout"
    with pytest.raises(PumpError) as over:
        ledger.grant(D(1), D(14), DoseKind.CLINICIAN)
    assert over.value.code == "pump.pca_max_dose"
    assert ledger.doses == [(D(0), D(2), DoseKind.DEMAND)] and ledger.last_demand_s == D(0)


def test_clinician_dose_ignores_the_lockout_but_not_the_ceiling() -> None:
    ledger = PcaLedger(demand_dose=D(2), lockout_s=D(600), ceilings=(LIBRARY_4H,))
    ledger.grant(D(0), D(2), DoseKind.DEMAND)
    assert ledger.evaluate(D(1), D(13), DoseKind.CLINICIAN) is None
    assert ledger.evaluate(D(1), D(2), DoseKind.DEMAND) is Denial.LOCKOUT


def test_basal_alone_reaches_the_maximum_at_the_computed_time() -> None:
    # 7 mg headroom at 3 mg/h: exactly 8400 s.
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(LIBRARY_4H,), basal_per_h=D(3))
    ledger.grant(D(0), D(8), DoseKind.CLINICIAN)
    ledger.basal_running(D(0), True)
    assert ledger.basal_time_to_ceiling_s(D(0)) == D(8400)
    assert not ledger.basal_at_ceiling(D(8400) - MICROSECOND)
    assert ledger.basal_at_ceiling(D(8400)) and ledger.window_total(D(8400), LIBRARY_4H) == D(15)
    assert ledger.basal_time_to_ceiling_s(D(8400)) == D(0)
    ledger.suspend_basal(D(8400))
    assert ledger.basal_suspended and ledger.basal_segments == [(D(0), D(8400))]
    assert ledger.window_total(D(9000), LIBRARY_4H) == D(15)  # nothing more while suspended


def test_basal_time_is_rounded_down_so_the_total_never_crosses_the_maximum() -> None:
    # 15 mg at 7 mg/h is 7714.285714285... s: the stop is at 7714.285714 s, just under the maximum.
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(LIBRARY_4H,), basal_per_h=D(7))
    ledger.basal_running(D(0), True)
    stop = ledger.basal_time_to_ceiling_s(D(0))
    assert stop == D("7714.285714")
    assert D(15) - D(7) * MICROSECOND / HOUR < ledger.window_total(stop, LIBRARY_4H) <= D(15)
    assert ledger.basal_at_ceiling(stop) and not ledger.basal_at_ceiling(stop - MICROSECOND)
    # One microsecond more of basal would cross the maximum.
    assert ledger.window_total(stop + MICROSECOND, LIBRARY_4H) > D(15)
    ledger.suspend_basal(stop)
    assert ledger.window_total(stop + MICROSECOND, LIBRARY_4H) <= D(15)


def test_basal_time_is_a_lower_bound_when_doses_leave_the_window() -> None:
    # A 14 mg dose at 0 leaves the 1 h window at 3600 s; the basal time assumes it stays.
    ceiling = Ceiling(max_amount=D(15), window_s=HOUR, source=CeilingSource.LIBRARY)
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(ceiling,), basal_per_h=D(1))
    ledger.grant(D(0), D(14), DoseKind.CLINICIAN)
    ledger.basal_running(D(0), True)
    assert ledger.basal_time_to_ceiling_s(D(0)) == HOUR
    assert not ledger.basal_at_ceiling(HOUR)  # the dose left: the caller checks again
    assert ledger.basal_time_to_ceiling_s(HOUR) == 14 * HOUR


def test_suspended_basal_resumes_only_when_every_ceiling_has_headroom() -> None:
    ceiling = Ceiling(max_amount=D(2), window_s=HOUR, source=CeilingSource.LIBRARY)
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(ceiling,), basal_per_h=D(2))
    ledger.basal_running(D(0), True)
    ledger.suspend_basal(HOUR)
    assert not ledger.may_resume_basal(HOUR)
    with pytest.raises(PumpError) as refused:
        ledger.resume_basal(HOUR)
    assert refused.value.code == "pump.pca_basal_not_resumable"
    with pytest.raises(PumpError) as running:
        ledger.basal_running(HOUR, True)
    assert running.value.code == "pump.pca_basal_suspended"
    assert ledger.may_resume_basal(HOUR + 1)  # 2/3600 mg left the window
    ledger.resume_basal(HOUR + 1)
    ledger.basal_running(HOUR + 1, True)
    assert not ledger.basal_suspended and ledger.basal_open


def test_resume_is_refused_when_the_basal_is_not_suspended() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(LIBRARY_4H,), basal_per_h=D(1))
    assert not ledger.may_resume_basal(D(0))
    with pytest.raises(PumpError):
        ledger.resume_basal(D(0))


@pytest.mark.parametrize(
    ("ceilings", "basal_per_h", "running"),
    [((), D(1), True), ((LIBRARY_4H,), D(0), True), ((LIBRARY_4H,), D(1), False)],
    ids=["no_ceiling", "no_basal", "basal_off"],
)
def test_no_basal_time_without_a_ceiling_or_a_flowing_basal(
    ceilings: tuple[Ceiling, ...], basal_per_h: Decimal, running: bool
) -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=ceilings, basal_per_h=basal_per_h)
    ledger.basal_running(D(0), running)
    assert ledger.basal_time_to_ceiling_s(D(10)) is None
    assert not ledger.basal_at_ceiling(D(10))


def test_basal_counts_towards_every_ceiling() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(LIBRARY_4H, PROGRAM_1H), basal_per_h=D(2))
    ledger.basal_running(D(0), True)
    ledger.basal_running(2 * HOUR, False)
    assert ledger.window_total(2 * HOUR, LIBRARY_4H) == D(4)
    assert ledger.window_total(2 * HOUR, PROGRAM_1H) == D(2)
    assert ledger.window_total(3 * HOUR, PROGRAM_1H) == D(0)


def test_per_kg_amounts_stay_in_the_ledger_unit() -> None:
    # 20 mcg/kg demand against a 100 mcg/kg / 4 h maximum: the ledger never multiplies by weight.
    ceiling = Ceiling(max_amount=D(100), window_s=4 * HOUR, source=CeilingSource.LIBRARY)
    ledger = PcaLedger(demand_dose=D(20), lockout_s=D(0), ceilings=(ceiling,))
    for t in range(5):
        ledger.grant(D(t), D(20), DoseKind.DEMAND)
    assert ledger.window_total(D(5), ceiling) == D(100)
    assert ledger.evaluate(D(5), D(20), DoseKind.DEMAND) is Denial.MAX_DOSE


def test_no_ceiling_means_no_maximum() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0))
    ledger.grant(D(0), D(1000), DoseKind.CLINICIAN)
    assert ledger.headroom(D(0)) is None and ledger.max_dose is None
    with pytest.raises(PumpError) as no_window:
        ledger.window_total(D(0))
    assert no_window.value.code == "pump.pca_no_window"


def test_single_maximum_form_adds_a_program_ceiling() -> None:
    # The form pump/device.py uses today.
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), max_dose=D(5), window_s=HOUR)
    assert ledger.ceilings == (Ceiling(max_amount=D(5), window_s=HOUR, source=CeilingSource.PROGRAM),)
    assert (ledger.max_dose, ledger.window_s) == (D(5), HOUR)
    both = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(LIBRARY_4H,), max_dose=D(20), window_s=HOUR)
    assert [c.source for c in both.ceilings] == [CeilingSource.LIBRARY, CeilingSource.PROGRAM]
    assert both.reference_ceiling == LIBRARY_4H and both.max_dose == D(15)


def test_a_window_without_a_maximum_only_sets_the_reported_window() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), max_dose=None, window_s=HOUR)
    ledger.grant(D(0), D(3), DoseKind.DEMAND)
    assert ledger.ceilings == () and ledger.window_total(D(10)) == D(3)
    assert ledger.window_total(HOUR) == D(0)


@pytest.mark.parametrize(("max_amount", "window_s"), [(D(-1), HOUR), (D(1), D(0))])
def test_a_bad_ceiling_is_refused(max_amount: Decimal, window_s: Decimal) -> None:
    with pytest.raises(PumpError) as refused:
        Ceiling(max_amount=max_amount, window_s=window_s, source=CeilingSource.LIBRARY)
    assert refused.value.code == "pump.pca_ceiling_invalid"


def test_a_maximum_without_a_window_is_refused() -> None:
    with pytest.raises(PumpError) as refused:
        PcaLedger(demand_dose=D(1), lockout_s=D(0), max_dose=D(5))
    assert refused.value.code == "pump.pca_ceiling_invalid"


@pytest.mark.parametrize("amount", [D(0), D(-1)])
def test_a_dose_that_is_not_positive_is_refused(amount: Decimal) -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(LIBRARY_4H,))
    with pytest.raises(PumpError) as refused:
        ledger.evaluate(D(0), amount, DoseKind.CLINICIAN)
    assert refused.value.code == "pump.pca_amount_not_positive"


def test_a_time_too_precise_to_total_exactly_is_refused() -> None:
    ledger = PcaLedger(demand_dose=D(1), lockout_s=D(0), ceilings=(LIBRARY_4H,))
    with pytest.raises(PumpError) as refused:
        ledger.evaluate(D("1E-70"), D(1), DoseKind.CLINICIAN)
    assert refused.value.code == "pump.pca_not_exact"
