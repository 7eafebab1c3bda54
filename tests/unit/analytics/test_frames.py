"""Event dicts -> frame: exact encoding, flattened alerts, refusal of malformed events."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from smartpump.analytics.frames import encode, encode_limit, flatten, from_dicts, read_parquet, write_parquet
from smartpump.errors import SmartpumpError
from tests.unit.analytics.handmade import EVENTS, SOFT_12, checked, frame


def test_encoding_orders_exactly_around_a_limit() -> None:
    limit = encode_limit(Decimal(10))
    assert encode(Decimal(10)) == limit
    assert encode(Decimal("10.0000000001")) > limit
    assert encode(Decimal("9.9999999999")) < limit


def test_limit_with_too_many_decimals_is_refused() -> None:
    with pytest.raises(SmartpumpError) as error:
        encode_limit(Decimal("0.0000000001"))
    assert error.value.code == "analytics.limit_precision"


def test_program_checked_is_flattened_with_its_alerts() -> None:
    row = flatten(checked("P1", 3, 100, "ICU", "E1", "soft", SOFT_12, dose="12"))
    assert (row["entry_id"], row["care_area"], row["dose"], row["verdict"]) == ("E1", "ICU", "12", "soft")
    assert (row["alert_rules"], row["alert_factors"], row["max_factor"]) == (
        ["ders.dose.soft_max"],
        [1.2],
        1.2,
    )


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"pump": "P", "seq": 1, "type": "x"}, "no ts"),
        ({"pump": "P", "seq": "one", "ts": "2025-01-01T00:00:00+00:00", "type": "x"}, "bad seq"),
        ({"pump": "P", "seq": 1, "ts": "2025-01-01T00:00:00", "type": "x"}, "naive ts"),
        (
            {"pump": "P", "seq": 1, "ts": "2025-01-01T00:00:00+00:00", "type": "x", "data": {"dose": "ten"}},
            "dose",
        ),
        (
            {"pump": "P", "seq": 1, "ts": "2025-01-01T00:00:00+00:00", "type": "x", "data": {"dose": 1.5}},
            "float",
        ),
    ],
)
def test_malformed_event_is_refused(event: dict[str, object], why: str) -> None:
    with pytest.raises(SmartpumpError) as error:
        flatten(event)
    assert error.value.code == "analytics.bad_event", why


def test_parquet_round_trip_keeps_rows_and_synthetic_label(tmp_path: Path) -> None:
    from smartpump.analytics.frames import is_synthetic_file

    path = tmp_path / "h.parquet"
    write_parquet(frame(), path, synthetic=True)
    assert read_parquet(path).equals(from_dicts(EVENTS))
    assert is_synthetic_file(path)


def test_missing_parquet_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SmartpumpError) as error:
        read_parquet(tmp_path / "absent.parquet")
    assert error.value.code == "analytics.no_file"
