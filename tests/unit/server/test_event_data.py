"""Numbers read back from stored event data are exact and finite, or absent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.server.event_data import decimal_or_none


@pytest.mark.parametrize(
    ("stored", "expected"), [("13.125", Decimal("13.125")), (70, Decimal(70)), ("0", Decimal(0))]
)
def test_stored_numbers_come_back_exact(stored: object, expected: Decimal) -> None:
    assert decimal_or_none(stored) == expected


@pytest.mark.parametrize("stored", [None, True, "", "abc", "NaN", "Infinity", "-inf"])
def test_absent_boolean_or_non_finite_values_are_none(stored: object) -> None:
    assert decimal_or_none(stored) is None
