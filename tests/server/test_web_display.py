"""Numbers for reading: rounded half-up to stated significant digits or to the pump's resolution, never
with an exponent or a tail of digits; and the panel's words for alerts and deliverable alternatives."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.ders.program import Alert, VerdictLevel
from smartpump.library.limits import LimitKind
from smartpump.server.web.display import at_resolution, distinct, exact, significant
from smartpump.server.web.panel_view import alert_lines, deliverable_lines


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        ("1.166666666666666666666666667", 3, "1.17"),
        ("1.3E+3", 3, "1300"),
        ("143.347014066888888888888889", 3, "143"),
        ("143.347014066888888888888889", 4, "143.3"),
        ("4.952380952380952380952380952", 3, "4.95"),
        ("1.25", 3, "1.25"),
        ("1.5", 3, "1.5"),
        ("30", 4, "30"),
        ("30.04", 4, "30.04"),
        ("9.996", 3, "10"),
        ("0.9996", 3, "1"),
        ("0.000123456", 3, "0.000123"),
        ("12345.6", 3, "12346"),
        ("1E+30", 3, "1000000000000000000000000000000"),
        ("0.0", 3, "0"),
        ("-2.345", 3, "-2.35"),
        ("2.345", 3, "2.35"),
        ("2.3449", 3, "2.34"),
    ],
)
def test_significant_digits(value: str, digits: int, shown: str) -> None:
    assert significant(Decimal(value), digits) == shown


@pytest.mark.parametrize(
    ("value", "resolution", "shown"),
    [
        ("13", "0.1", "13.0"),
        ("1.3E+1", "0.1", "13.0"),
        ("75", "0.1", "75.0"),
        ("0.35", "0.1", "0.4"),
        ("0.25", "0.01", "0.25"),
        ("14.44999", "0.1", "14.4"),
        ("1.3E+3", "1", "1300"),
        ("0.04", "0.1", "0.0"),
        ("-0.04", "0.1", "0.0"),
        ("999.95", "0.1", "1000.0"),
    ],
)
def test_at_resolution(value: str, resolution: str, shown: str) -> None:
    assert at_resolution(Decimal(value), Decimal(resolution)) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1.0E+2", "100"), ("7.50", "7.5"), ("0.000100", "0.0001"), ("25000", "25000"), ("-0", "0")],
)
def test_exact_is_the_whole_value_without_exponent(value: str, shown: str) -> None:
    assert exact(Decimal(value)) == shown


def test_nothing_is_a_dash_and_bad_requests_are_refused() -> None:
    assert significant(None) == at_resolution(None, Decimal("0.1")) == "—"
    with pytest.raises(ValueError, match="at least 1"):
        significant(Decimal(1), 0)
    with pytest.raises(ValueError, match="finite"):
        significant(Decimal("NaN"))
    with pytest.raises(ValueError, match="positive"):
        at_resolution(Decimal(1), Decimal(0))


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1E12"), max_value=Decimal("1E12")),
    st.integers(min_value=1, max_value=6),
)
def test_significant_is_plain_and_within_half_a_unit_of_its_last_digit(value: Decimal, digits: int) -> None:
    shown = significant(value, digits)
    assert "E" not in shown.upper()
    if value.is_zero():
        assert shown == "0"
        return
    last_place = max(value.adjusted() - digits + 1, 0)
    assert abs(Decimal(shown) - value) <= Decimal(5) * Decimal(10) ** (last_place - 1)


def test_an_alert_reads_with_its_value_limit_unit_factor_and_rule() -> None:
    alert = Alert(
        rule="ders.dose.soft_max",
        parameter="dose",
        limit_kind=LimitKind.SOFT_MAX,
        limit=Decimal(20),
        value=Decimal("23.33333333333333333333333333"),
        unit="mcg/kg/min",
        factor=Decimal("1.166666666666666666666666667"),
        level=VerdictLevel.SOFT,
    )
    (line,) = alert_lines((alert,))
    words = (
        f"{line.what} {line.value} {line.unit} is {line.direction} the {line.bound} {line.limit} {line.unit}"
    )
    assert words == "dose 23.33 mcg/kg/min is above the soft max 20 mcg/kg/min"
    assert (line.factor, line.rule, line.level) == ("1.17", "ders.dose.soft_max", "soft")
    assert line.exact == "23.33333333333333333333333333 mcg/kg/min against 20 mcg/kg/min"


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """Stands in for ders.program.Deliverable (being added on another branch): the same three fields."""

    rate_ml_per_h: Decimal
    vtbi_ml: Decimal | None
    dose: Decimal


def test_deliverable_alternatives_read_as_rate_and_dose() -> None:
    rates = (
        Option(rate_ml_per_h=Decimal("13.0"), vtbi_ml=Decimal(250), dose=Decimal("4.952380952380952380952")),
        Option(rate_ml_per_h=Decimal("1.3E+1"), vtbi_ml=None, dose=Decimal(5)),
    )
    assert deliverable_lines(rates, "mcg/kg/min", Decimal("0.1")) == (
        "13.0 mL/h = 4.952 mcg/kg/min",
        "13.0 mL/h = 5 mcg/kg/min",
    )
    volumes = (Option(rate_ml_per_h=Decimal("100.2"), vtbi_ml=Decimal("50.1"), dose=Decimal("1002")),)
    assert deliverable_lines(volumes, "mg", Decimal("0.1")) == ("50.1 mL at 100.2 mL/h = 1002 mg",)
    assert deliverable_lines((), "mg", Decimal("0.1")) == ()


@pytest.mark.parametrize(
    ("value", "reference", "shown"),
    [
        ("30.0006", "30", "30.001"),
        ("1.00002", "1", "1.00002"),
        ("1.25", "1", "1.25"),
        ("45", "30", "45"),
        ("30", "30", "30"),
        ("29.9999", "30", "29.9999"),
    ],
)
def test_a_value_beyond_a_limit_never_reads_as_the_limit(value: str, reference: str, shown: str) -> None:
    assert distinct(Decimal(value), Decimal(reference), 3) == shown
