"""Numbers for reading: exact Decimals underneath, shown rounded half-up, in plain notation, never with
an exponent ("1,300", not "1.3E+3") and never with a tail of digits ("1.17", not "1.166666666666666667").
Read-only text groups thousands with commas (ISMP: "1,300 units/h", "2,500 mL"), after rounding
(999.96 to 3 significant digits reads "1,000"); ``exact`` never groups, so a form's input value stays
parseable.

Two rules: ``significant`` for doses, limits and factors (a stated number of significant digits, the
integer digits always kept), ``at_resolution`` for rates and volumes (as many decimals as the pump's
resolution, trailing zeros kept: "13.0 mL/h" on a 0.1 mL/h pump).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Final

READING_DIGITS: Final = 3
"""Significant digits for doses and factors on the panel ("4.95 mcg/kg/min", "× 1.17")."""
LIMIT_DIGITS: Final = 4
"""Significant digits for an alert's value and limit, where the two are compared ("30.04" vs "30")."""
NOTHING: Final = "—"


def _round_to_places(value: Decimal, places: int) -> Decimal:
    """``value`` rounded half-up to ``places`` decimals (negative: tens, hundreds...), with enough
    precision that the rounding never fails on large values."""
    with localcontext() as context:
        context.prec = max(context.prec, value.adjusted() + places + 2)
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _plain(value: Decimal) -> str:
    """Fixed-point text; a zero is never shown with a minus sign."""
    return format(abs(value) if value.is_zero() else value, "f")


def _reading(value: Decimal) -> str:
    """Fixed-point text with thousands grouped by commas ("1,300.5"); a zero never shows a minus sign."""
    return format(abs(value) if value.is_zero() else value, ",f")


def significant(value: Decimal | int | None, digits: int = READING_DIGITS) -> str:
    """``value`` rounded half-up to ``digits`` significant digits, but never fewer than its integer
    digits (12345 reads "12,345"), thousands grouped, without exponent or trailing zeros; "—" for None."""
    if value is None:
        return NOTHING
    if digits < 1:
        raise ValueError(f"significant digits must be at least 1, got {digits}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{number} is not a finite number")
    if number.is_zero():
        return "0"
    places = max(digits - 1 - number.adjusted(), 0)
    text = _reading(_round_to_places(number, places))
    return text.rstrip("0").rstrip(".") if "." in text else text


def distinct(value: Decimal, reference: Decimal, digits: int = READING_DIGITS) -> str:
    """``value`` to ``digits`` significant digits, or more (up to 12) until it no longer reads as
    ``reference``: a dose 30.0006 above a limit of 30 reads "30.0006", a factor 1.00002 "1.00002"."""
    for shown in range(digits, 13):
        text = significant(value, shown)
        if value == reference or text != significant(reference, shown):
            return text
    return exact(value)


def at_resolution(value: Decimal | int | None, resolution: Decimal) -> str:
    """``value`` rounded half-up to the decimals of ``resolution`` (0.1 -> one decimal, 1 -> none),
    trailing zeros kept, thousands grouped ("2,500.0"), without exponent; "—" for None."""
    if value is None:
        return NOTHING
    if not resolution.is_finite() or resolution <= 0:
        raise ValueError(f"a display resolution must be positive, got {resolution}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{number} is not a finite number")
    exponent = resolution.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    places = max(-exponent, 0)
    return _reading(_round_to_places(number, places))


def exact(value: Decimal | int) -> str:
    """The whole value in plain notation, without exponent, trailing zeros or thousands separators (what
    a nurse typed, a form's input value, or the number underneath a rounded one)."""
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{number} is not a finite number")
    return _plain(number.normalize())
