"""Properties of the unit algebra: exact round trips, monotone rates, and the half-up rounding rule."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from smartpump.units import (
    AmountUnit,
    Basis,
    Concentration,
    DoseUnit,
    TimeUnit,
    dose_to_rate_ml_per_h,
    rate_to_dose,
    round_half_up,
)

D = Decimal
TOLERANCE = D("1e-30")


def decimals(low: str, high: str, places: int = 4) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


UNITS = [
    DoseUnit(amount, basis, time)
    for amount in AmountUnit
    for basis in Basis
    for time in (None, *TimeUnit)
    if not (amount is AmountUnit.ML and basis is Basis.M2)
]
CONCENTRATION_UNIT = {
    AmountUnit.G: [AmountUnit.G, AmountUnit.MG, AmountUnit.MCG, AmountUnit.NG],
    AmountUnit.MG: [AmountUnit.G, AmountUnit.MG, AmountUnit.MCG, AmountUnit.NG],
    AmountUnit.MCG: [AmountUnit.G, AmountUnit.MG, AmountUnit.MCG, AmountUnit.NG],
    AmountUnit.NG: [AmountUnit.G, AmountUnit.MG, AmountUnit.MCG, AmountUnit.NG],
    AmountUnit.UNITS: [AmountUnit.UNITS, AmountUnit.MILLIUNITS],
    AmountUnit.MILLIUNITS: [AmountUnit.UNITS, AmountUnit.MILLIUNITS],
    AmountUnit.MEQ: [AmountUnit.MEQ],
    AmountUnit.MMOL: [AmountUnit.MMOL],
}


@st.composite
def dosing(draw: st.DrawFn) -> tuple[DoseUnit, Concentration | None, dict[str, Decimal]]:
    unit = draw(st.sampled_from(UNITS))
    concentration = None
    if not unit.is_volume:
        amount_unit = draw(st.sampled_from(CONCENTRATION_UNIT[unit.amount]))
        concentration = Concentration(
            amount=draw(decimals("0.001", "100000")),
            unit=amount_unit,
            volume_ml=draw(decimals("0.1", "1000")),
        )
    extra: dict[str, Decimal] = {}
    if unit.basis is Basis.KG:
        extra["weight_kg"] = draw(decimals("0.3", "400"))
    if unit.basis is Basis.M2:
        extra["bsa_m2"] = draw(decimals("0.1", "4"))
    if unit.time is None:
        extra["duration_min"] = draw(decimals("0.1", "10000"))
    return unit, concentration, extra


@given(dosing(), decimals("0.0001", "100000"))
def test_dose_to_rate_to_dose_round_trip_is_exact_to_1e30(
    case: tuple[DoseUnit, Concentration | None, dict[str, Decimal]], dose: Decimal
) -> None:
    unit, concentration, extra = case
    rate = dose_to_rate_ml_per_h(dose, unit, concentration, **extra)
    back = rate_to_dose(rate, unit, concentration, **extra)
    assert abs(back - dose) <= TOLERANCE * dose


@given(dosing(), decimals("0", "10000"), decimals("0", "10000"))
def test_rate_is_monotone_in_dose(
    case: tuple[DoseUnit, Concentration | None, dict[str, Decimal]], a: Decimal, b: Decimal
) -> None:
    unit, concentration, extra = case
    low, high = sorted((a, b))
    assert dose_to_rate_ml_per_h(low, unit, concentration, **extra) <= dose_to_rate_ml_per_h(
        high, unit, concentration, **extra
    )


@given(decimals("0.01", "100"), decimals("0.3", "400"), decimals("0.3", "400"), decimals("0.001", "1000"))
def test_rate_is_monotone_in_weight(dose: Decimal, a: Decimal, b: Decimal, mg_per_ml: Decimal) -> None:
    unit = DoseUnit.parse("mcg/kg/min")
    concentration = Concentration(amount=mg_per_ml, unit=AmountUnit.MG, volume_ml=D(1))
    light, heavy = sorted((a, b))
    assert dose_to_rate_ml_per_h(dose, unit, concentration, weight_kg=light) <= dose_to_rate_ml_per_h(
        dose, unit, concentration, weight_kg=heavy
    )


STEPS = st.sampled_from([D("0.001"), D("0.01"), D("0.1"), D("0.25"), D("0.5"), D(1), D(2), D(5), D(10)])
POWER_OF_TEN_STEPS = st.sampled_from([D("0.001"), D("0.01"), D("0.1"), D(1)])


@given(decimals("-100000", "100000", places=6), STEPS)
def test_round_half_up_is_within_half_a_step_and_a_multiple_of_it(value: Decimal, step: Decimal) -> None:
    result = round_half_up(value, step)
    assert abs(result - value) <= step / 2
    assert result % step == 0


@given(decimals("-100000", "100000", places=6), STEPS)
def test_round_half_up_rounds_exact_halves_away_from_zero(value: Decimal, step: Decimal) -> None:
    result = round_half_up(value, step)
    if abs(result - value) == step / 2:
        assert abs(result) > abs(value)


@given(decimals("-100000", "100000", places=6), POWER_OF_TEN_STEPS)
def test_round_half_up_agrees_with_quantize_for_powers_of_ten(value: Decimal, step: Decimal) -> None:
    assert round_half_up(value, step) == value.quantize(step, rounding=ROUND_HALF_UP)
