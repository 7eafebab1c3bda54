"""The append-only event store: insert-or-ignore on (pump, seq), and filtered queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from smartpump.server.db.models import Event, Pump


def insert_ignoring_duplicates(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert event rows, skipping any whose (pump, seq) is stored already; returns how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    statement = (
        pg_insert(Event) if dialect == "postgresql" else sqlite_insert(Event)
    ).on_conflict_do_nothing(index_elements=["pump_id", "seq"])
    return len(session.scalars(statement.returning(Event.id), list(rows)).all())


def query_events(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    pump_id: int | None,
    patient_id: str | None,
    order_id: str | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[tuple[Event, str]], int]:
    """Events (with their pump's serial) ordered by time, then pump and seq; page and total."""
    query = select(Event, Pump.serial).join(Pump, Pump.id == Event.pump_id)
    if facility_ids is not None:
        query = query.where(Pump.facility_id.in_(facility_ids))
    if pump_id is not None:
        query = query.where(Event.pump_id == pump_id)
    if patient_id is not None:
        query = query.where(Event.patient_id == patient_id)
    if order_id is not None:
        query = query.where(Event.order_id == order_id)
    if event_type is not None:
        query = query.where(Event.type == event_type)
    if since is not None:
        query = query.where(Event.ts >= since)
    if until is not None:
        query = query.where(Event.ts < until)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.execute(
        query.order_by(Event.ts, Event.pump_id, Event.seq).limit(limit).offset(offset)
    ).all()
    return [(row[0], row[1]) for row in rows], total


def count_events(session: Session, *, pump_id: int, event_type: str, since: datetime) -> int:
    """How many events of one type a pump sent since a time."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.pump_id == pump_id, Event.type == event_type, Event.ts >= since)
        )
        or 0
    )


def pumps_with_events(session: Session, *, event_type: str, since: datetime, at_least: int) -> Sequence[int]:
    """Ids of pumps that sent at least ``at_least`` events of a type since a time."""
    return session.scalars(
        select(Event.pump_id)
        .where(Event.type == event_type, Event.ts >= since)
        .group_by(Event.pump_id)
        .having(func.count() >= at_least)
    ).all()
