"""The infusion event store (read side; ingest comes through the connectivity layer)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from smartpump.server.api.deps import ClockDep, PageDep, SessionDep, require_roles
from smartpump.server.api.schemas import EventOut
from smartpump.server.auth import Access, Role
from smartpump.server.services import events

router = APIRouter(prefix="/events", tags=["events"])
EventReader = Annotated[
    Access, require_roles(Role.NURSE, Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.BIOMED, Role.AUDITOR)
]


@router.get("")
def list_events(
    access: EventReader,
    session: SessionDep,
    clock: ClockDep,
    page: PageDep,
    response: Response,
    pump: Annotated[str | None, Query(max_length=64, description="pump serial")] = None,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=64, description="event type, e.g. alarm.raised")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[EventOut]:
    """Events by time; filter by pump, patient, order, type and time (patient searches are audited)."""
    views, total = events.query_events(
        session,
        clock,
        access,
        pump=pump,
        patient_id=patient_id,
        order_id=order_id,
        event_type=type,
        since=since,
        until=until,
        limit=page.limit,
        offset=page.offset,
    )
    page.headers(response, total)
    return [EventOut(**asdict(v)) for v in views]
