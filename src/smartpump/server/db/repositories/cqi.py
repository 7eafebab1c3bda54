"""Reads for CQI analytics: stored events (without patient columns) of a set of facilities, in a window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.server.db.models import Event, Facility, Pump

StoredEvent = tuple[int, str, int, datetime, str | None, str, str]
"""(facility id, pump serial, seq, ts, channel, type, data JSON): no patient or order column."""

BATCH_ROWS = 5000


def events_in(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    since: datetime | None,
    until: datetime | None,
) -> Iterator[StoredEvent]:
    """Events of the facilities (None: all) with ``since <= ts < until``, by pump serial then seq."""
    query = select(
        Pump.facility_id, Pump.serial, Event.seq, Event.ts, Event.channel, Event.type, Event.data
    ).join(Pump, Pump.id == Event.pump_id)
    if facility_ids is not None:
        query = query.where(Pump.facility_id.in_(facility_ids))
    if since is not None:
        query = query.where(Event.ts >= since)
    if until is not None:
        query = query.where(Event.ts < until)
    result = session.execute(query.order_by(Pump.serial, Event.seq).execution_options(yield_per=BATCH_ROWS))
    for row in result:
        yield (row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def facilities(session: Session, facility_ids: frozenset[int] | None) -> list[Facility]:
    """The facilities with these ids (None: every facility), by id."""
    query = select(Facility).order_by(Facility.id)
    if facility_ids is not None:
        query = query.where(Facility.id.in_(facility_ids))
    return list(session.scalars(query))
