"""Reading numbers back out of stored event data (Decimals travel and are stored as strings)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def decimal_or_none(value: object) -> Decimal | None:
    """A stored event-data value as an exact, finite Decimal; None when absent, boolean or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None
