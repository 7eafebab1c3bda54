"""HL7 timestamps without a UTC offset are read in the facility time zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from smartpump.interop.fhir.mappers import FhirMappingError, authored_on
from smartpump.interop.hl7v2.message import Hl7ParseError, format_timestamp, parse, parse_timestamp
from smartpump.interop.hl7v2.pcd03 import parse_order
from tests.unit.interop.helpers import example

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("20260308013000", datetime(2026, 3, 8, 6, 30, tzinfo=UTC)),  # EST, before spring forward
        ("20260308033000", datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),  # EDT, after it
        ("20261101003000", datetime(2026, 11, 1, 4, 30, tzinfo=UTC)),  # EDT, before fall back
        ("20261101023000", datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),  # EST, after it
        ("20260715120000", datetime(2026, 7, 15, 16, 0, tzinfo=UTC)),
        ("20260115120000", datetime(2026, 1, 15, 17, 0, tzinfo=UTC)),
    ],
)
def test_local_times_become_the_right_instant_on_both_sides_of_a_dst_change(text: str, utc: datetime) -> None:
    moment = parse_timestamp(text, local_zone=NEW_YORK)
    assert moment is not None and moment == utc


@pytest.mark.parametrize("text", ["20260308023000", "20261101013000"])
def test_a_local_time_a_dst_change_skips_or_repeats_is_refused(text: str) -> None:
    with pytest.raises(Hl7ParseError, match="America/New_York") as refused:
        parse_timestamp(text, local_zone=NEW_YORK)
    assert refused.value.code == "hl7.bad_timestamp"


def test_an_explicit_offset_wins_over_the_facility_zone_and_utc_is_the_default() -> None:
    assert parse_timestamp("20261101013000-0500", local_zone=NEW_YORK) == datetime(
        2026, 11, 1, 6, 30, tzinfo=UTC
    )
    assert parse_timestamp("20260308023000") == datetime(2026, 3, 8, 2, 30, tzinfo=UTC)


def test_an_order_time_without_offset_is_read_in_the_facility_zone() -> None:
    text = example("pcd03_rgv_o15_ex1_dopamine_dose_rate_cp159.hl7")
    orc = next(line for line in text.split("\r") if line.startswith("ORC|"))
    fields = orc.split("|")
    fields[9] = "20260715083000"
    order = parse_order(parse(text.replace(orc, "|".join(fields))), local_zone=NEW_YORK)
    assert order.order_time == datetime(2026, 7, 15, 12, 30, tzinfo=UTC)


def test_every_outbound_timestamp_carries_an_offset() -> None:
    assert format_timestamp(datetime(2026, 11, 1, 6, 30, tzinfo=UTC)) == "20261101063000+0000"
    local = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)
    assert format_timestamp(local) == "20261101013000-0400"
    back = parse_timestamp(format_timestamp(local))
    assert back is not None and back.astimezone(UTC) == local.astimezone(UTC)
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-03-08T02:30:00", None),  # skipped by spring forward
        ("2026-11-01T01:30:00", None),  # repeated by fall back
        ("2026-11-01T02:30:00", datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),
        ("2026-11-01T01:30:00-04:00", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # its offset says which
    ],
)
def test_a_fhir_authored_on_follows_the_same_dst_rule(text: str, utc: datetime | None) -> None:
    if utc is None:
        with pytest.raises(FhirMappingError, match="America/New_York") as refused:
            authored_on(text, NEW_YORK)
        assert refused.value.code == "fhir.invalid"
    else:
        assert authored_on(text, NEW_YORK) == utc
