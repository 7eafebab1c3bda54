"""The event store: idempotent insertion (for the ingest path) and role-checked, audited queries.

Patient and order identifiers are PHI: callers without a PHI role see them redacted and cannot filter by
them; every query that returns or searches for them is audited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server import audit
from smartpump.server.auth import PHI_ROLES, Access
from smartpump.server.db.models import Event
from smartpump.server.db.repositories import events as repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.errors import AccessDeniedError, InvalidInputError, NotFoundError

REDACTED: Final = "[redacted]"
PHI_KEYS: Final = ("patient_id", "order_id")
MAX_INDEX_KEY: Final = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingEvent:
    """One event as a pump sent it: ``{v, pump, seq, ts, channel, type, data}``."""

    pump: str
    seq: int
    ts: datetime
    type: str
    v: int = 1
    channel: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreResult:
    """How many events were new and how many were already stored (retries are harmless); ``redelivered``
    names the (pump id, seq) of those already stored when the store knows them (else None)."""

    stored: int
    duplicates: int
    redelivered: frozenset[tuple[int, int]] | None = None


def store_events(session: Session, clock: Clock, events: Sequence[IncomingEvent]) -> StoreResult:
    """Store events exactly once per (pump, seq), update the pumps' last-seen time (the caller commits).

    Raises:
        NotFoundError: ``pump.unknown`` when an event names a pump that is not registered.
        InvalidInputError: ``event.invalid`` for a naive timestamp or a negative seq.
    """
    received_at = clock.now()
    rows: list[dict[str, Any]] = []
    latest: dict[int, datetime] = {}
    pumps: dict[str, int] = {}
    for event in events:
        if event.ts.tzinfo is None or event.seq < 0:
            raise InvalidInputError("event needs a timezone-aware ts and seq >= 0", code="event.invalid")
        if event.pump not in pumps:
            pump = fleet_repo.pump_by_serial(session, event.pump)
            if pump is None:
                raise NotFoundError(f"no pump {event.pump!r}", code="pump.unknown")
            pumps[event.pump] = pump.id
        pump_id = pumps[event.pump]
        latest[pump_id] = max(latest.get(pump_id, event.ts), event.ts)
        rows.append(
            {
                "pump_id": pump_id,
                "seq": event.seq,
                "ts": event.ts,
                "received_at": received_at,
                "schema_version": event.v,
                "channel": event.channel,
                "type": event.type,
                "patient_id": index_key(event.data.get("patient_id")),
                "order_id": index_key(event.data.get("order_id")),
                "data": json.dumps(dict(event.data), sort_keys=True, separators=(",", ":"), default=str),
            }
        )
    stored = repo.insert_ignoring_duplicates(session, rows)
    for pump_id in latest:
        pump = fleet_repo.pump_by_id(session, pump_id)
        if pump is not None and (pump.last_seen is None or received_at > pump.last_seen):
            pump.last_seen = received_at
    return StoreResult(stored=stored, duplicates=len(rows) - stored)


def index_key(value: object) -> str | None:
    """What an event's ``patient_id``/``order_id`` puts in its indexed column: the identifier as text, or
    None when it cannot be one (longer than 64 characters, or holding control characters); the event's
    data keeps the value as sent either way."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if len(text) <= MAX_INDEX_KEY and text.isprintable() else None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventView:
    """An event as the caller may see it."""

    pump: str
    seq: int
    ts: datetime
    received_at: datetime
    v: int
    channel: str | None
    type: str
    patient_id: str | None
    order_id: str | None
    data: dict[str, Any]


def query_events(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    pump: str | None,
    patient_id: str | None,
    order_id: str | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[EventView], int]:
    """Events in the caller's facilities, filtered; PHI redacted for roles without PHI access; audited."""
    phi_scope = access.principal.scope(PHI_ROLES & access.roles)
    sees_phi = phi_scope is None or bool(phi_scope)
    if (patient_id is not None or order_id is not None) and not sees_phi:
        raise AccessDeniedError(
            "searching by patient or order needs a clinical role", code="events.phi_forbidden"
        )
    pump_id = None
    if pump is not None:
        row = fleet_repo.pump_by_serial(session, pump)
        if row is None or not access.allows(row.facility_id):
            raise NotFoundError(f"no pump {pump!r}", code="pump.not_found")
        pump_id = row.id
    searches_phi = patient_id is not None or order_id is not None
    rows, total = repo.query_events(
        session,
        facility_ids=phi_scope if searches_phi else access.scope,
        pump_id=pump_id,
        patient_id=patient_id,
        order_id=order_id,
        event_type=event_type,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    facility_of = _facilities_of(session, [e for e, _ in rows])
    views = [_view(event, serial, phi_scope, facility_of[event.pump_id]) for event, serial in rows]
    patients = sorted({v.patient_id for v in views if v.patient_id not in (None, REDACTED)}, key=str)
    if searches_phi or patients:
        audit.append(
            session,
            clock,
            actor=access.principal.username,
            action="phi.events_read",
            object_type="events",
            details={
                "patient_filter": patient_id,
                "order_filter": order_id,
                "patients_returned": patients,
                "count": len(views),
            },
        )
    return views, total


def _facilities_of(session: Session, events: Sequence[Event]) -> dict[int, int]:
    facility: dict[int, int] = {}
    for event in events:
        if event.pump_id not in facility:
            pump = fleet_repo.pump_by_id(session, event.pump_id)
            facility[event.pump_id] = -1 if pump is None else pump.facility_id
    return facility


def _view(event: Event, serial: str, phi_scope: frozenset[int] | None, facility_id: int) -> EventView:
    sees_phi = phi_scope is None or facility_id in phi_scope
    data: dict[str, Any] = json.loads(event.data)
    if not sees_phi:
        for key in PHI_KEYS:
            if key in data:
                data[key] = REDACTED
    return EventView(
        pump=serial,
        seq=event.seq,
        ts=event.ts,
        received_at=event.received_at,
        v=event.schema_version,
        channel=event.channel,
        type=event.type,
        patient_id=event.patient_id if sees_phi or event.patient_id is None else REDACTED,
        order_id=event.order_id if sees_phi or event.order_id is None else REDACTED,
        data=data,
    )
