"""units: the closed unit vocabulary, exact dose <-> rate math and the one rounding rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.errors import UnitError
from smartpump.units import (
    ML_PER_H,
    AmountUnit,
    Basis,
    Concentration,
    Dimension,
    DoseUnit,
    TimeUnit,
    bsa_mosteller_m2,
    convert_amount,
    dose_to_rate_ml_per_h,
    format_decimal,
    mdc_context_free,
    parse_duration_min,
    parse_height_cm,
    parse_weight_kg,
    rate_to_dose,
    ratio,
    require_positive,
    round_half_up,
    to_decimal,
)

D = Decimal


def unit(text: str) -> DoseUnit:
    return DoseUnit.parse(text)


def conc(text: str) -> Concentration:
    return Concentration.parse(text)


# --- amount units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "dimension", "exponent", "ucum", "mdc"),
    [
        (AmountUnit.G, Dimension.MASS, 0, "g", 1728),
        (AmountUnit.MG, Dimension.MASS, -3, "mg", 1746),
        (AmountUnit.MCG, Dimension.MASS, -6, "ug", 1747),
        (AmountUnit.NG, Dimension.MASS, -9, "ng", 1748),
        (AmountUnit.UNITS, Dimension.UNITS, 0, "[iU]", 5472),
        (AmountUnit.MILLIUNITS, Dimension.UNITS, -3, "m[iU]", 5490),
        (AmountUnit.MEQ, Dimension.EQUIVALENTS, 0, "meq", 4594),
        (AmountUnit.MMOL, Dimension.MOLES, 0, "mmol", 4562),
        (AmountUnit.ML, Dimension.VOLUME, 0, "mL", 1618),
    ],
)
def test_amount_unit_factor_ucum_and_mdc(
    amount: AmountUnit, dimension: Dimension, exponent: int, ucum: str, mdc: int
) -> None:
    assert amount.dimension is dimension
    assert amount.exponent10 == exponent
    assert amount.ucum == ucum
    assert amount.mdc_code == mdc


def test_every_amount_unit_is_described() -> None:
    for amount in AmountUnit:
        assert isinstance(amount.exponent10, int)
        assert amount.ucum


def test_mdc_context_free_code_is_partition_four() -> None:
    assert mdc_context_free(1746) == 4 * 65536 + 1746


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        ("1.5", AmountUnit.G, AmountUnit.MG, "1500"),
        ("1", AmountUnit.MG, AmountUnit.MCG, "1000"),
        ("250", AmountUnit.MCG, AmountUnit.MG, "0.25"),
        ("1", AmountUnit.G, AmountUnit.NG, "1000000000"),
        ("2", AmountUnit.MILLIUNITS, AmountUnit.UNITS, "0.002"),
        ("7", AmountUnit.MEQ, AmountUnit.MEQ, "7"),
    ],
)
def test_convert_amount_is_exact(value: str, source: AmountUnit, target: AmountUnit, expected: str) -> None:
    assert convert_amount(D(value), source, target) == D(expected)


def test_convert_amount_refuses_another_dimension() -> None:
    with pytest.raises(UnitError) as caught:
        convert_amount(D(1), AmountUnit.MG, AmountUnit.UNITS)
    assert caught.value.code == "unit.dimension_mismatch"


# --- dose units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("ug/kg/min", "mcg/kg/min"),
        ("µg/kg/min", "mcg/kg/min"),
        ("μg/kg/min", "mcg/kg/min"),
        ("mcg/kg/min", "mcg/kg/min"),
        ("microgram/kg/minute", "mcg/kg/min"),
        ("micrograms/min", "mcg/min"),
        ("unit/h", "units/h"),
        ("units/kg/hr", "units/kg/h"),
        ("u/hour", "units/h"),
        ("U/kg/h", "units/kg/h"),
        ("IU/h", "units/h"),
        ("milliunits/min", "milliunits/min"),
        ("mU/min", "milliunits/min"),
        ("gram", "g"),
        ("g/day", "g/day"),
        ("gm/d", "g/day"),
        ("nanogram/kg/min", "ng/kg/min"),
        ("ng/kg/min", "ng/kg/min"),
        ("mg/hr", "mg/h"),
        ("mg/kg/hour", "mg/kg/h"),
        ("mg/m2/day", "mg/m2/day"),
        ("mg/m²/24h", "mg/m2/day"),
        ("mg/kg", "mg/kg"),
        ("mg/m2", "mg/m2"),
        ("mEq/h", "mEq/h"),
        ("MEQ/H", "mEq/h"),
        ("mmol/h", "mmol/h"),
        ("mL/h", "mL/h"),
        ("ml/hr", "mL/h"),
        ("mL/kg/h", "mL/kg/h"),
        (" mg / h ", "mg/h"),
        ("milligrams/minutes", "mg/min"),
    ],
)
def test_dose_unit_parses_vendor_spellings(text: str, canonical: str) -> None:
    assert str(unit(text)) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "garbage",
        "mg/kg/min/x",
        "mL/m2",
        "mg//min",
        "/h",
        "mg/",
        "mg/fortnight",
        "mg/min/kg",
        "kg/h",
    ],
)
def test_dose_unit_refuses_garbage(text: str) -> None:
    with pytest.raises(UnitError) as caught:
        unit(text)
    assert caught.value.code == "unit.unknown"


@pytest.mark.parametrize("time", [None, *TimeUnit])
def test_a_volume_per_m2_is_refused_however_it_is_built(time: TimeUnit | None) -> None:
    """The constructor holds the rule, so no path (parse, JSON, an offer) can make one."""
    with pytest.raises(UnitError) as caught:
        DoseUnit(AmountUnit.ML, Basis.M2, time)
    assert caught.value.code == "unit.unknown"


@pytest.mark.parametrize(
    ("text", "ucum", "mdc"),
    [
        ("mcg/kg/min", "ug/kg/min", 3475),
        ("mg/h", "mg/h", 3378),
        ("units/h", "[iU]/h", 5696),
        ("units/kg/h", "[iU]/kg/h", 5824),
        ("milliunits/min", "m[iU]/min", 5682),
        ("mL/h", "mL/h", 3122),
        ("mg/m2/day", "mg/m2/d", None),
        ("mEq/h", "meq/h", None),
        ("mEq/day", "meq/d", 5202),
        ("mg", "mg", 1746),
        ("mg/kg", "mg/kg", None),
    ],
)
def test_dose_unit_ucum_and_mdc(text: str, ucum: str, mdc: int | None) -> None:
    parsed = unit(text)
    assert parsed.ucum == ucum
    assert parsed.mdc_code == mdc


def test_dose_unit_properties() -> None:
    rate = unit("mcg/kg/min")
    assert rate.is_rate and rate.needs_weight and not rate.needs_bsa and not rate.is_volume
    total = unit("mg/m2")
    assert not total.is_rate and total.needs_bsa and not total.needs_weight
    assert ML_PER_H.is_volume
    assert DoseUnit(AmountUnit.ML, Basis.NONE, TimeUnit.H) == ML_PER_H


@pytest.mark.parametrize(("time", "factor", "ucum"), [(TimeUnit.MIN, "60", "min"), (TimeUnit.H, "1", "h")])
def test_time_unit_per_hour_factor(time: TimeUnit, factor: str, ucum: str) -> None:
    assert time.per_hour_factor == D(factor)
    assert time.ucum == ucum


def test_day_per_hour_factor_is_one_twenty_fourth() -> None:
    assert TimeUnit.DAY.ucum == "d"
    assert abs(TimeUnit.DAY.per_hour_factor * 24 - 1) < D("1e-38")


# --- concentrations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "amount_unit", "volume"),
    [
        ("400 mg/250 mL", "400", AmountUnit.MG, "250"),
        ("400mg/250mL", "400", AmountUnit.MG, "250"),
        ("1.6 mg/mL", "1.6", AmountUnit.MG, "1"),
        ("25000 units/250 mL", "25000", AmountUnit.UNITS, "250"),
        ("4 mcg / 1 milliliter", "4", AmountUnit.MCG, "1"),
        (".5 g/100 ml", "0.5", AmountUnit.G, "100"),
        ("  2 mEq/1 mL  ", "2", AmountUnit.MEQ, "1"),
    ],
)
def test_concentration_parses(text: str, amount: str, amount_unit: AmountUnit, volume: str) -> None:
    parsed = conc(text)
    assert parsed.amount == D(amount)
    assert parsed.unit is amount_unit
    assert parsed.volume_ml == D(volume)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("0 mg/250 mL", "unit.not_positive"),
        ("400 mg/0 mL", "unit.not_positive"),
        ("mg/mL", "unit.concentration"),
        ("400 mL/250 mL", "unit.concentration"),
        ("400 mg/250 L", "unit.concentration"),
        ("400 mg", "unit.concentration"),
        ("-400 mg/250 mL", "unit.concentration"),
        ("400 bananas/250 mL", "unit.unknown"),
    ],
)
def test_concentration_refuses_malformed_text(text: str, code: str) -> None:
    with pytest.raises(UnitError) as caught:
        conc(text)
    assert caught.value.code == code


def test_concentration_text_is_plain() -> None:
    assert str(conc("400 mg/250 mL")) == "400 mg/250 mL"
    assert str(conc("1.60 mg/1.0 mL")) == "1.6 mg/1 mL"


def test_concentration_per_ml() -> None:
    assert conc("400 mg/250 mL").per_ml == D("1.6")
    assert conc("400 mg/250 mL").per_ml_in(AmountUnit.MCG) == D(1600)


def test_same_strength_across_units() -> None:
    assert conc("1 g/250 mL").same_strength(conc("1000 mg/250 mL"))
    assert conc("1 g/250 mL").same_strength(conc("2 g/500 mL"))
    assert not conc("1 g/250 mL").same_strength(conc("1 g/500 mL"))


def test_same_strength_is_false_across_dimensions() -> None:
    assert not conc("1 units/mL").same_strength(conc("1 mg/mL"))


# --- patient quantities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kg"),
    [
        ("70kg", "70"),
        ("70 kg", "70"),
        ("70 KG", "70"),
        ("3500g", "3.5"),
        ("154 lb", "69.85322498"),
        ("1 lbs", "0.45359237"),
        ("70", "70"),
        ("70.5", "70.5"),
    ],
)
def test_parse_weight_kg(text: str, kg: str) -> None:
    assert parse_weight_kg(text) == D(kg)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("-70kg", "unit.quantity"),
        ("0kg", "unit.not_positive"),
        ("abc", "unit.quantity"),
        ("70 stone", "unit.unknown"),
        ("", "unit.quantity"),
    ],
)
def test_parse_weight_kg_refuses(text: str, code: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_weight_kg(text)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("text", "cm"), [("170cm", "170"), ("1.7m", "170"), ("67in", "170.18"), ("170", "170")]
)
def test_parse_height_cm(text: str, cm: str) -> None:
    assert parse_height_cm(text) == D(cm)


def test_parse_height_cm_refuses_unknown_unit() -> None:
    with pytest.raises(UnitError):
        parse_height_cm("6 ft")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("30min", "30"),
        ("30 minutes", "30"),
        ("46h", "2760"),
        ("1.5 hr", "90"),
        ("2day", "2880"),
        ("1 d", "1440"),
        ("45", "45"),
        ("30s", "0.5"),
        ("90 sec", "1.5"),
        ("120s", "2"),
    ],
)
def test_parse_duration_min(text: str, minutes: str) -> None:
    assert parse_duration_min(text) == D(minutes)


@pytest.mark.parametrize("text", ["0 min", "1 week", "soon"])
def test_parse_duration_min_refuses(text: str) -> None:
    with pytest.raises(UnitError):
        parse_duration_min(text)


def test_bsa_mosteller_exact_square() -> None:
    assert bsa_mosteller_m2(D(64), D(225)) == D(2)


def test_bsa_mosteller_irrational_value() -> None:
    bsa = bsa_mosteller_m2(D(70), D(170))
    assert str(bsa).startswith("1.81811868577")
    assert abs(bsa * bsa - D(70) * D(170) / D(3600)) < D("1e-35")


@pytest.mark.parametrize(("weight", "height"), [(D(0), D(170)), (D(70), D(-1))])
def test_bsa_mosteller_refuses_non_positive(weight: Decimal, height: Decimal) -> None:
    with pytest.raises(UnitError) as caught:
        bsa_mosteller_m2(weight, height)
    assert caught.value.code == "unit.not_positive"


# --- numbers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(D("1.5"), D("1.5")), (3, D(3)), ("0.125", D("0.125"))])
def test_to_decimal_accepts_exact_numbers(value: Decimal | int | str, expected: Decimal) -> None:
    assert to_decimal(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1.5, "unit.invalid"),
        (True, "unit.invalid"),
        ("NaN", "unit.not_finite"),
        (D("NaN"), "unit.not_finite"),
        ("Infinity", "unit.not_finite"),
        (D("-Infinity"), "unit.not_finite"),
        ("garbage", "unit.not_a_number"),
        ("", "unit.not_a_number"),
    ],
)
def test_to_decimal_refuses(value: object, code: str) -> None:
    with pytest.raises(UnitError) as caught:
        to_decimal(value, what="dose")  # type: ignore[arg-type]
    assert caught.value.code == code
    assert "dose" in caught.value.message


@pytest.mark.parametrize("value", [D(0), D(-1)])
def test_require_positive_refuses_zero_and_negative(value: Decimal) -> None:
    with pytest.raises(UnitError) as caught:
        require_positive(value, what="weight")
    assert caught.value.code == "unit.not_positive"


def test_format_decimal_is_plain() -> None:
    assert format_decimal(D("1.600")) == "1.6"
    assert format_decimal(D("1E+3")) == "1000"
    assert format_decimal(D("0.050")) == "0.05"


def test_ratio() -> None:
    assert ratio(D(30), D(20)) == D("1.5")


# --- dose -> rate -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "dose_unit", "concentration", "extra", "rate"),
    [
        # README: 5 mcg/kg/min x 70 kg = 21 mg/h at 1.6 mg/mL
        ("5", "mcg/kg/min", "400 mg/250 mL", {"weight_kg": D(70)}, "13.125"),
        # IHE PCD-03 example: dopamine 10 mcg/kg/min x 85 kg = 51 mg/h at 1.6 mg/mL
        ("10", "mcg/kg/min", "400 mg/250 mL", {"weight_kg": D(85)}, "31.875"),
        # IHE PCD-10 example: 5 mcg/kg/min x 82 kg = 24.6 mg/h at 1.6 mg/mL
        ("5", "mcg/kg/min", "1.6 mg/mL", {"weight_kg": D(82)}, "15.375"),
        # 5 mg/h at 1 mg/mL
        ("5", "mg/h", "100 mg/100 mL", {}, "5"),
        # heparin 1000 units/h at 100 units/mL
        ("1000", "units/h", "25000 units/250 mL", {}, "10"),
        # heparin 18 units/kg/h x 80 kg = 1440 units/h at 100 units/mL
        ("18", "units/kg/h", "25000 units/250 mL", {"weight_kg": D(80)}, "14.4"),
        # oxytocin 2 milliunits/min = 0.12 units/h at 0.06 units/mL
        ("2", "milliunits/min", "30 units/500 mL", {}, "2"),
        # 5-FU 1200 mg/m2/day x 2 m2 = 100 mg/h at 50 mg/mL
        ("1200", "mg/m2/day", "5000 mg/100 mL", {"bsa_m2": D(2)}, "2"),
        # vancomycin 1 g at 4 mg/mL = 250 mL over 60 min
        ("1", "g", "1 g/250 mL", {"duration_min": D(60)}, "250"),
        # loading 5 mg/kg x 80 kg = 400 mg at 2 mg/mL = 200 mL over 30 min
        ("5", "mg/kg", "500 mg/250 mL", {"weight_kg": D(80), "duration_min": D(30)}, "400"),
        # identity for fluids, no concentration needed
        ("125", "mL/h", None, {}, "125"),
        ("2", "mL/min", None, {}, "120"),
        ("500", "mL", None, {"duration_min": D(240)}, "125"),
        ("1", "mL/kg/h", None, {"weight_kg": D(70)}, "70"),
    ],
)
def test_dose_to_rate_hand_computed_cases(
    dose: str, dose_unit: str, concentration: str | None, extra: dict[str, Decimal], rate: str
) -> None:
    c = None if concentration is None else conc(concentration)
    assert dose_to_rate_ml_per_h(D(dose), unit(dose_unit), c, **extra) == D(rate)


def test_dose_to_rate_total_dose_over_duration_fluorouracil() -> None:
    # 2400 mg/m2 x 2 m2 = 4800 mg at 50 mg/mL = 96 mL over 46 h = 2.0869565... mL/h (= 48/23)
    rate = dose_to_rate_ml_per_h(
        D(2400), unit("mg/m2"), conc("5000 mg/100 mL"), bsa_m2=D(2), duration_min=D(46 * 60)
    )
    assert str(rate).startswith("2.08695652173913043478260869565217391")
    assert abs(rate * 23 - 48) < D("1e-37")


def test_dose_to_rate_zero_dose_is_zero_rate() -> None:
    assert dose_to_rate_ml_per_h(D(0), unit("mg/h"), conc("1 mg/mL")) == 0


@pytest.mark.parametrize(
    ("dose_unit", "concentration", "extra", "code"),
    [
        ("mcg/kg/min", "400 mg/250 mL", {}, "unit.weight_required"),
        ("mg/m2/day", "5000 mg/100 mL", {"weight_kg": D(70)}, "unit.bsa_required"),
        ("mg", "1 mg/mL", {}, "unit.duration_required"),
        ("mg/h", None, {}, "unit.concentration_required"),
        ("mg/h", "100 units/mL", {}, "unit.dimension_mismatch"),
        ("units/h", "100 mg/mL", {}, "unit.dimension_mismatch"),
        ("mcg/kg/min", "400 mg/250 mL", {"weight_kg": D(0)}, "unit.not_positive"),
        ("mg/m2/day", "5000 mg/100 mL", {"bsa_m2": D(-2)}, "unit.not_positive"),
        ("mg", "1 mg/mL", {"duration_min": D(0)}, "unit.not_positive"),
    ],
)
def test_dose_to_rate_refusals(
    dose_unit: str, concentration: str | None, extra: dict[str, Decimal], code: str
) -> None:
    c = None if concentration is None else conc(concentration)
    with pytest.raises(UnitError) as caught:
        dose_to_rate_ml_per_h(D(1), unit(dose_unit), c, **extra)
    assert caught.value.code == code


@pytest.mark.parametrize(("value", "code"), [(D(-1), "unit.negative"), (D("NaN"), "unit.not_finite")])
def test_dose_to_rate_refuses_bad_dose(value: Decimal, code: str) -> None:
    with pytest.raises(UnitError) as caught:
        dose_to_rate_ml_per_h(value, unit("mg/h"), conc("1 mg/mL"))
    assert caught.value.code == code


# --- rate -> dose -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "dose_unit", "concentration", "extra", "dose"),
    [
        ("13.125", "mcg/kg/min", "400 mg/250 mL", {"weight_kg": D(70)}, "5"),
        ("31.875", "mcg/kg/min", "400 mg/250 mL", {"weight_kg": D(85)}, "10"),
        ("14.4", "units/kg/h", "25000 units/250 mL", {"weight_kg": D(80)}, "18"),
        ("2", "milliunits/min", "30 units/500 mL", {}, "2"),
        ("2", "mg/m2/day", "5000 mg/100 mL", {"bsa_m2": D(2)}, "1200"),
        ("250", "g", "1 g/250 mL", {"duration_min": D(60)}, "1"),
        ("125", "mL/h", None, {}, "125"),
        ("125", "mL", None, {"duration_min": D(240)}, "500"),
        ("120", "mL/min", None, {}, "2"),
    ],
)
def test_rate_to_dose_exact_inverse(
    rate: str, dose_unit: str, concentration: str | None, extra: dict[str, Decimal], dose: str
) -> None:
    c = None if concentration is None else conc(concentration)
    assert rate_to_dose(D(rate), unit(dose_unit), c, **extra) == D(dose)


def test_rate_to_dose_refuses_negative_rate_and_missing_concentration() -> None:
    with pytest.raises(UnitError) as negative:
        rate_to_dose(D(-1), unit("mg/h"), conc("1 mg/mL"))
    assert negative.value.code == "unit.negative"
    with pytest.raises(UnitError) as missing:
        rate_to_dose(D(1), unit("mg/h"), None)
    assert missing.value.code == "unit.concentration_required"


# --- rounding -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "resolution", "expected"),
    [
        ("0.125", "0.01", "0.13"),
        ("13.125", "0.1", "13.1"),
        ("13.15", "0.1", "13.2"),
        ("13.149999", "0.1", "13.1"),
        ("0.05", "0.1", "0.1"),
        ("0.04999", "0.1", "0.0"),
        ("13.125", "0.01", "13.13"),
        ("2.25", "0.5", "2.5"),
        ("2.24", "0.5", "2.0"),
        ("12.5", "5", "15"),
        ("12.4", "5", "10"),
        ("7", "1", "7"),
        ("-0.125", "0.01", "-0.13"),
        ("-13.15", "0.1", "-13.2"),
        ("0", "0.1", "0.0"),
    ],
)
def test_round_half_up_edges(value: str, resolution: str, expected: str) -> None:
    result = round_half_up(D(value), D(resolution))
    assert result == D(expected)
    assert result.as_tuple().exponent == D(resolution).as_tuple().exponent


def test_round_half_up_differs_from_python_round() -> None:
    assert round(D("0.125"), 2) == D("0.12")
    assert round_half_up(D("0.125"), D("0.01")) == D("0.13")


@pytest.mark.parametrize("resolution", [D(0), D("-0.1")])
def test_round_half_up_refuses_non_positive_resolution(resolution: Decimal) -> None:
    with pytest.raises(UnitError) as caught:
        round_half_up(D(1), resolution)
    assert caught.value.code == "unit.not_positive"
