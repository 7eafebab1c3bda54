"""Properties of DERS: verdict level is the worst alert, rule order is irrelevant, 10x errors never pass."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from smartpump.ders.check import check
from smartpump.ders.program import (
    InfusionProgram,
    PatientParameters,
    PCAProgram,
    ProgramKind,
    VerdictLevel,
)
from smartpump.ders.rules import RULES, CheckContext, evaluate
from smartpump.errors import ProgramError
from tests.unit.ders import ICU_AREA, LIBRARY, TYPICAL_DOSES, WEIGHT, program

D = Decimal
ENTRY_IDS = sorted(TYPICAL_DOSES)


def decimals(low: Decimal | str, high: Decimal | str, places: int = 4) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


def program_for(entry_id: str, value: Decimal, weight: Decimal = WEIGHT) -> InfusionProgram:
    patient = PatientParameters(weight_kg=weight, bsa_m2=D("1.8"))
    if entry_id == "icu-ivf":
        return program(entry_id, rate_ml_per_h=value, patient=patient)
    return program(
        entry_id, dose=value, concentration=LIBRARY.entry(entry_id).concentrations[0], patient=patient
    )


@given(st.sampled_from(ENTRY_IDS), decimals("0.01", "5000"), decimals("0.3", "400"))
def test_verdict_level_is_the_most_severe_alert(entry_id: str, value: Decimal, weight: Decimal) -> None:
    try:
        verdict = check(LIBRARY, ICU_AREA, program_for(entry_id, value, weight))
    except ProgramError as error:
        assume(error.code != "program.rate_below_resolution")
        raise
    worst = max((a.level.rank for a in verdict.alerts), default=VerdictLevel.OK.rank)
    assert verdict.level.rank == worst
    assert (verdict.level is VerdictLevel.OK) == (verdict.alerts == ())
    assert verdict.may_start == (verdict.level is VerdictLevel.OK)


@st.composite
def contexts(draw: st.DrawFn) -> CheckContext:
    entry = LIBRARY.entry(draw(st.sampled_from([e.id for e in LIBRARY.entries if e.care_area_id == "icu"])))
    kind = draw(st.sampled_from(list(ProgramKind)))
    limits = {
        ProgramKind.BOLUS: entry.bolus,
        ProgramKind.LOADING: entry.loading,
        ProgramKind.PCA: entry.pca.demand_dose if entry.pca is not None else None,
    }.get(kind, entry.dose)
    pca = None
    if kind is ProgramKind.PCA:
        optional = st.none() | decimals("0.01", "100")
        pca = PCAProgram(
            demand_dose=draw(decimals("0.01", "10")),
            lockout_min=draw(decimals("1", "100")),
            basal=draw(optional),
            loading_dose=draw(optional),
            max_dose=draw(optional),
        )
    rate = draw(decimals("0.1", "2000"))
    prog = InfusionProgram(
        entry_id=entry.id,
        kind=kind,
        rate_ml_per_h=rate,
        vtbi_ml=draw(st.none() | decimals("1", "6000")),
        pca=pca,
    )
    custom = entry.custom_concentration is not None and draw(st.booleans())
    concentration = entry.concentrations[0] if entry.concentrations else None
    if custom and concentration is not None:
        concentration = type(concentration)(
            amount=draw(decimals("0.0001", "100")), unit=concentration.unit, volume_ml=D(1)
        )
    return CheckContext(
        program=prog,
        care_area=ICU_AREA,
        entry=entry,
        dose=draw(decimals("0.001", "10000")),
        dose_limits=limits,
        rate_ml_per_h=rate,
        rate_ml_per_h_exact=rate,
        concentration=concentration,
        is_custom_concentration=custom,
        weight_kg=draw(st.none() | decimals("0.3", "400")),
        bsa_m2=draw(st.none() | decimals("0.1", "4")),
        duration_min=draw(st.none() | decimals("1", "500")),
    )


@given(contexts())
def test_alerts_do_not_depend_on_rule_order(ctx: CheckContext) -> None:
    if ctx.program.kind is ProgramKind.BOLUS and ctx.entry is not None and ctx.entry.bolus_rate is not None:
        assume(ctx.weight_kg is not None)
    assert set(evaluate(ctx, tuple(reversed(RULES)))) == set(evaluate(ctx))


def _dose_limits(entry_id: str) -> tuple[Decimal, Decimal, Decimal | None]:
    """(lower bound of plausible doses, upper soft-or-hard max, hard max) of a limited entry."""
    entry = LIBRARY.entry(entry_id)
    limit_set = entry.rate_ml_per_h.limits if entry.dose.limits.is_empty else entry.dose.limits
    upper = limit_set.soft_max if limit_set.soft_max is not None else limit_set.hard_max
    assert upper is not None
    low = limit_set.soft_min if limit_set.soft_min is not None else (limit_set.hard_min or D(0))
    return max(low, upper / 10), upper, limit_set.hard_max


def _places(step: Decimal) -> int:
    """Decimal places of a finite step such as 0.0001."""
    exponent = step.as_tuple().exponent
    assert isinstance(exponent, int), step
    return -exponent


@st.composite
def plausible_doses(draw: st.DrawFn) -> tuple[str, Decimal]:
    entry_id = draw(st.sampled_from(ENTRY_IDS))
    low, upper, _ = _dose_limits(entry_id)
    # A rate-programmed fluid is entered on the pump's 0.1 mL/h grid; doses are exact.
    step = D("0.1") if entry_id == "icu-ivf" else D("0.0001")
    return entry_id, draw(decimals(low + step, upper, places=_places(step)))


@given(plausible_doses(), st.sampled_from([10, 100]))
def test_ten_or_hundred_fold_dose_is_never_ok(case: tuple[str, Decimal], multiplier: int) -> None:
    entry_id, dose = case
    _, _, hard_max = _dose_limits(entry_id)
    verdict = check(LIBRARY, ICU_AREA, program_for(entry_id, dose * multiplier))
    assert verdict.level is not VerdictLevel.OK
    if hard_max is not None and dose * multiplier > hard_max:
        assert verdict.level is VerdictLevel.HARD
