"""Numbers for reading: rounded half-up to stated significant digits or to the pump's resolution, never
with an exponent or a tail of digits, thousands grouped (ISMP) after rounding; and the panel's words for
alerts and deliverable alternatives."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.ders.program import Alert, VerdictLevel
from smartpump.library.limits import LimitKind
from smartpump.server.web import station
from smartpump.server.web.display import at_resolution, distinct, exact, significant
from smartpump.server.web.panel_view import alert_lines, deliverable_lines


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        ("1.166666666666666666666666667", 3, "1.17"),
        ("1.3E+3", 3, "1,300"),
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
        ("12345.6", 3, "12,346"),
        ("1E+30", 3, "1," + ",".join(["000"] * 10)),
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
        ("1.3E+3", "1", "1,300"),
        ("2500", "1", "2,500"),
        ("999.4", "1", "999"),
        ("999.5", "1", "1,000"),
        ("0.04", "0.1", "0.0"),
        ("-0.04", "0.1", "0.0"),
        ("999.95", "0.1", "1,000.0"),
        ("999.94", "0.1", "999.9"),
        ("-1234.56", "0.1", "-1,234.6"),
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
    assert shown.replace(",", "") == shown or abs(value) >= 1000, "only thousands are grouped"
    shown = shown.replace(",", "")
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
    assert deliverable_lines(volumes, "mg", Decimal("0.1")) == ("50.1 mL at 100.2 mL/h = 1,002 mg",)
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


@pytest.mark.parametrize(
    ("model", "rate", "shown"),
    [
        ("lvp-4", "99.9", "99.9"),  # the last rate of the 0.1 mL/h band keeps its decimal
        ("lvp-4", "99.95", "100"),  # above the band: whole mL/h, half-up
        ("lvp-4", "998.5", "999"),
        ("lvp-4", "0.05", "0.1"),  # half-up at the smallest step, never banker's rounding
        ("lvp-4", "0.04", "0.0"),
        ("syringe-1", "0.045", "0.05"),  # a syringe pump's 0.01 mL/h band
        ("syringe-1", "9.99", "9.99"),
        ("syringe-1", "9.995", "10.0"),  # above 9.99: the 0.1 mL/h band
    ],
)
def test_a_rate_reads_at_the_resolution_of_its_band_at_each_band_edge(
    model: str, rate: str, shown: str
) -> None:
    assert station.rate_text(model, Decimal(rate)) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("999", "999"),
        ("999.4", "999"),
        ("999.5", "1,000"),  # rounded first, then grouped: the carry makes the fourth digit
        ("999.95", "1,000"),
        ("1000", "1,000"),
        ("1250", "1,250"),
        ("1.3E+3", "1,300"),
        ("12345.6", "12,346"),  # 3 significant digits keep every integer digit
        ("1234567.89", "1,234,568"),
        ("-2500", "-2,500"),
    ],
)
def test_thousands_are_grouped_after_rounding_and_keep_every_integer_digit(value: str, shown: str) -> None:
    """Read-only text groups thousands ("1,250 units/h", ISMP), on first render and, since the script shows
    the server's string, live alike."""
    assert significant(Decimal(value)) == shown


@pytest.mark.parametrize("value", ["1300", "2500.25", "1234567.891", "999.95"])
def test_an_exact_value_for_a_form_input_is_never_grouped(value: str) -> None:
    """``exact`` fills the panel's inputs: what it writes parses back to the same number."""
    assert "," not in exact(Decimal(value))
    assert Decimal(exact(Decimal(value))) == Decimal(value)


@pytest.mark.parametrize(
    ("minutes", "shown"), [("1439.99", "23:59"), ("1440", "24:00"), ("6000.9", "100:00"), ("0.0001", "0:00")]
)
def test_h_mm_counts_hours_past_a_day_and_never_rounds_up(minutes: str, shown: str) -> None:
    assert station.hours_minutes(Decimal(minutes)) == shown


@pytest.mark.parametrize(
    ("value", "resolution", "shown"),
    [("1.005", "0.01", "1.01"), ("1.45", "0.1", "1.5"), ("2.675", "0.01", "2.68"), ("0.5", "0.01", "0.50")],
)
def test_at_resolution_is_half_up_on_the_exact_value_where_a_float_would_round_down(
    value: str, resolution: str, shown: str
) -> None:
    """1.005, 1.45 and 2.675 have no exact binary float: JavaScript's toFixed gives 1.00, 1.4 and 2.67."""
    assert at_resolution(Decimal(value), Decimal(resolution)) == shown
