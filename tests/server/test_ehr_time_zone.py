"""The facility time zone (SMARTPUMP_HL7_TIME_ZONE) for inbound HL7 times without a UTC offset: an EHR that
sends local wall-clock time has its orders read at the right instant, on both sides of a DST change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from smartpump.interop.hl7v2.message import Message, parse
from smartpump.server.services.ehr import OrderListener
from smartpump.server.settings import Settings
from tests.server.conftest import World
from tests.server.ehr_support import dopamine_order, ehr_site, err_code

NEW_YORK = ZoneInfo("America/New_York")


def _local_order(world: World, moment: datetime, control_id: str) -> Message:
    """The dopamine order with ORC-9 written as New York wall-clock time, without an offset."""
    text = dopamine_order(control_id=control_id, order_id=f"TZ{control_id}").to_er7()
    local = moment.astimezone(NEW_YORK).strftime("%Y%m%d%H%M%S")
    lines = []
    for line in text.split("\r"):
        if line.startswith("ORC|"):
            fields = line.split("|")
            fields[9] = local
            line = "|".join(fields)
        lines.append(line)
    return parse("\r".join(lines))


def _listener(world: World, zone: str) -> OrderListener:
    settings = world.state.settings.model_copy(update={"hl7_time_zone": zone})
    return OrderListener(replace(world.state, settings=settings))


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 3, 7, 15, 0, tzinfo=UTC),  # the day before spring forward (EST, -0500)
        datetime(2026, 3, 9, 15, 0, tzinfo=UTC),  # the day after (EDT, -0400)
        datetime(2026, 10, 31, 15, 0, tzinfo=UTC),  # the day before fall back (EDT)
        datetime(2026, 11, 2, 15, 0, tzinfo=UTC),  # the day after (EST)
    ],
)
def test_local_order_times_are_fresh_in_the_facility_zone_and_stale_read_as_utc(
    world: World, now: datetime
) -> None:
    world.clock.advance((now - world.clock.now()).total_seconds())
    ehr_site(world)
    placed = now - timedelta(minutes=2)
    utc_reply = _listener(world, "UTC").answer(_local_order(world, placed, "1"))
    assert err_code(utc_reply) == "9022"
    local_reply = _listener(world, "America/New_York").answer(_local_order(world, placed, "2"))
    assert local_reply.first("MSA").value(1) == "CA", local_reply.to_er7()  # type: ignore[union-attr]


def test_the_setting_defaults_to_utc_and_refuses_unknown_zones() -> None:
    assert Settings().hl7_time_zone == "UTC"
    with pytest.raises(ValidationError, match="IANA"):
        Settings(hl7_time_zone="Mars/Olympus_Mons")
