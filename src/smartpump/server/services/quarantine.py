"""Pumps held in quarantine: a pump that spoke without being admitted (unknown to the fleet registry, or
refused by the device registry) is recorded here, never registered automatically; nothing it sent is
stored or acked, so its outbox keeps every event until a biomed admits it and it resends them. A pump a
biomed rejects stays held (still counted when it speaks) but leaves the list waiting for a decision; it can
still be registered later through the pump registry."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models import Pump
from smartpump.server.db.models_identity import QuarantinedPump
from smartpump.server.errors import ConflictError, NotFoundError
from smartpump.server.services import fleet

logger = logging.getLogger("smartpump.server.quarantine")

UNKNOWN: Final = "pump.unknown"
MAX_HELD: Final = 10_000


@dataclass(frozen=True, slots=True)
class Held:
    """What one pump tried while held: the latest reason, and the messages and events refused."""

    reason: str
    messages: int = 1
    events: int = 0


def add(before: Held | None, reason: str, events: int) -> Held:
    """``before`` (or nothing) plus one more message of ``events`` events refused for ``reason``."""
    if before is None:
        return Held(reason, 1, events)
    return Held(reason, before.messages + 1, before.events + events)


def hold(session: Session, clock: Clock, held: Mapping[str, Held]) -> None:
    """Record (or count again) pumps refused for ``reason`` (the caller commits). New pumps beyond
    ``MAX_HELD`` pending rows are only logged, so a flood of made-up serials cannot grow the table without
    bound."""
    if not held:
        return
    now = clock.now()
    rows = {
        row.serial: row
        for row in session.scalars(select(QuarantinedPump).where(QuarantinedPump.serial.in_(sorted(held))))
    }
    room = MAX_HELD - int(
        session.scalar(
            select(func.count()).select_from(QuarantinedPump).where(QuarantinedPump.admitted_at.is_(None))
        )
        or 0
    )
    for serial, what in sorted(held.items()):
        row = rows.get(serial)
        if row is None:
            if room <= 0:
                logger.warning(
                    "quarantine full (%d pumps); pump %s (%s) not recorded", MAX_HELD, serial, what.reason
                )
                continue
            room -= 1
            session.add(
                QuarantinedPump(
                    serial=serial,
                    reason=what.reason,
                    first_seen_at=now,
                    last_seen_at=now,
                    messages=what.messages,
                    events=what.events,
                )
            )
            logger.warning("pump %s quarantined: %s (nothing stored, nothing acked)", serial, what.reason)
            continue
        row.reason = what.reason
        row.last_seen_at = now
        row.messages += what.messages
        row.events += what.events
        if row.rejected_at is None:
            row.admitted_at = None
            row.admitted_by = None


def pending(session: Session, *, limit: int, offset: int) -> tuple[list[QuarantinedPump], int]:
    """Pumps held and neither admitted nor rejected, most recently seen first, and how many there are (a pump
    held as unknown that was registered since, through the pump registry, is no longer waiting)."""
    registered = select(Pump.id).where(Pump.serial == QuarantinedPump.serial).exists()
    waiting = and_(
        QuarantinedPump.admitted_at.is_(None),
        QuarantinedPump.rejected_at.is_(None),
        or_(QuarantinedPump.reason != UNKNOWN, ~registered),
    )
    total = int(session.scalar(select(func.count()).select_from(QuarantinedPump).where(waiting)) or 0)
    rows = session.scalars(
        select(QuarantinedPump)
        .where(waiting)
        .order_by(QuarantinedPump.last_seen_at.desc(), QuarantinedPump.serial)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def admit(
    session: Session,
    clock: Clock,
    access: Access,
    serial: str,
    *,
    facility_id: int,
    model: str,
    firmware: str,
    care_area: str | None,
    location: str | None,
) -> Pump:
    """Register a held pump in a facility (its next resend is stored and acked); refused unless it is held
    as unknown (a pump the device registry refuses must be enrolled first)."""
    row = _waiting(session, serial)
    if row.reason != UNKNOWN:
        raise ConflictError(
            f"pump {serial!r} is held for {row.reason}: enrol it (smartpump pki enrol) before admitting it",
            code="quarantine.not_enrolled",
        )
    reason, messages, events = row.reason, row.messages, row.events
    pump = fleet.register_pump(
        session,
        clock,
        access,
        facility_id=facility_id,
        serial=serial,
        model=model,
        firmware=firmware,
        care_area=care_area,
        location=location,
    )
    row = session.scalars(select(QuarantinedPump).where(QuarantinedPump.serial == serial)).one()
    row.admitted_at = clock.now()
    row.admitted_by = access.principal.username
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="pump.admitted",
        object_type="pump",
        object_id=serial,
        facility_id=facility_id,
        details={"reason": reason, "messages": messages, "events": events},
    )
    return pump


def reject(session: Session, clock: Clock, access: Access, serial: str) -> QuarantinedPump:
    """Decide that a held pump is not to be admitted: it leaves the waiting list and stays refused (audited
    ``pump.rejected`` with what it tried to send).

    Raises:
        NotFoundError: ``quarantine.not_found`` when the pump is not waiting for a decision.
    """
    row = _waiting(session, serial)
    row.rejected_at = clock.now()
    row.rejected_by = access.principal.username
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="pump.rejected",
        object_type="pump",
        object_id=serial,
        details={"reason": row.reason, "messages": row.messages, "events": row.events},
    )
    return row


def _waiting(session: Session, serial: str) -> QuarantinedPump:
    row = session.scalars(
        select(QuarantinedPump).where(
            QuarantinedPump.serial == serial,
            QuarantinedPump.admitted_at.is_(None),
            QuarantinedPump.rejected_at.is_(None),
        )
    ).first()
    if row is None:
        raise NotFoundError(f"no pump {serial!r} waiting in quarantine", code="quarantine.not_found")
    return row
