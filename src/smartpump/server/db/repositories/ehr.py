"""EHR rows: inbound de-duplication, orders and their infusion links, the outbound queue, worker cursors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from smartpump.server.db.models import Event, Pump
from smartpump.server.db.models_ehr import EhrCursor, EhrInbound, EhrOrder, EhrOutbound

OPEN_ORDER_STATES = ("offered", "started")


def inbound(session: Session, sender: str, control_id: str) -> EhrInbound | None:
    """The stored inbound message with this (sender, MSH-10), if any."""
    return session.scalars(
        select(EhrInbound).where(EhrInbound.sender == sender, EhrInbound.control_id == control_id)
    ).one_or_none()


def offered_order(session: Session, pump_id: int, channel: str, *, received_by: datetime) -> EhrOrder | None:
    """The newest order offered on a pump channel no later than ``received_by`` and not yet started."""
    return session.scalars(
        select(EhrOrder)
        .where(
            EhrOrder.pump_id == pump_id,
            EhrOrder.channel == channel,
            EhrOrder.status == "offered",
            EhrOrder.received_at <= received_by,
        )
        .order_by(EhrOrder.received_at.desc(), EhrOrder.id.desc())
        .limit(1)
    ).first()


def started_order(session: Session, pump_id: int, channel: str) -> EhrOrder | None:
    """The order whose infusion runs on a pump channel now (status ``started``)."""
    return session.scalars(
        select(EhrOrder)
        .where(EhrOrder.pump_id == pump_id, EhrOrder.channel == channel, EhrOrder.status == "started")
        .order_by(EhrOrder.start_event_id.desc())
        .limit(1)
    ).first()


def order_at_event(session: Session, pump_id: int, channel: str | None, event_id: int) -> EhrOrder | None:
    """The order whose infusion covered an event on a channel (started at or before it, not ended before)."""
    query = select(EhrOrder).where(
        EhrOrder.pump_id == pump_id,
        EhrOrder.start_event_id.is_not(None),
        EhrOrder.start_event_id <= event_id,
        or_(EhrOrder.end_event_id.is_(None), EhrOrder.end_event_id >= event_id),
    )
    if channel is not None:
        query = query.where(EhrOrder.channel == channel)
    return session.scalars(query.order_by(EhrOrder.start_event_id.desc()).limit(1)).first()


def orders(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    patient_id: str | None = None,
    order_id: str | None = None,
    pump_id: int | None = None,
    started_since: datetime | None = None,
    started_until: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[EhrOrder], int]:
    """Orders that became infusions (started), filtered; oldest start first; page and total."""
    query = select(EhrOrder).where(EhrOrder.start_event_id.is_not(None))
    if facility_ids is not None:
        query = query.where(EhrOrder.facility_id.in_(facility_ids))
    if patient_id is not None:
        query = query.where(EhrOrder.patient_id == patient_id)
    if order_id is not None:
        query = query.where(EhrOrder.order_id == order_id)
    if pump_id is not None:
        query = query.where(EhrOrder.pump_id == pump_id)
    if started_since is not None:
        query = query.where(EhrOrder.started_at >= started_since)
    if started_until is not None:
        query = query.where(EhrOrder.started_at < started_until)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(query.order_by(EhrOrder.started_at, EhrOrder.id).limit(limit).offset(offset)).all()
    return rows, total


def orders_of_request(session: Session, source: str, sender: str, order_id: str) -> EhrOrder | None:
    """The stored order a sender submitted under this order id (the newest one)."""
    return session.scalars(
        select(EhrOrder)
        .where(EhrOrder.source == source, EhrOrder.sender == sender, EhrOrder.order_id == order_id)
        .order_by(EhrOrder.id.desc())
        .limit(1)
    ).first()


def newest_order(session: Session, order_id: str, *, facility_ids: frozenset[int] | None) -> EhrOrder | None:
    """The newest order stored under this order id within the facilities (all when None)."""
    query = select(EhrOrder).where(EhrOrder.order_id == order_id)
    if facility_ids is not None:
        query = query.where(EhrOrder.facility_id.in_(facility_ids))
    return session.scalars(query.order_by(EhrOrder.id.desc()).limit(1)).first()


def cursor(session: Session, name: str, now: datetime) -> EhrCursor:
    """A worker's cursor row, locked for this transaction (created at 0 on first use)."""
    row = session.scalars(select(EhrCursor).where(EhrCursor.name == name).with_for_update()).one_or_none()
    if row is None:
        row = EhrCursor(name=name, last_event_id=0, updated_at=now)
        session.add(row)
        session.flush()
    return row


def events_after(
    session: Session, after_id: int, types: Sequence[str], *, upto_id: int | None = None, limit: int
) -> Sequence[tuple[Event, Pump]]:
    """Stored events of some types after an event id (in storage order), with their pumps."""
    query = (
        select(Event, Pump)
        .join(Pump, Pump.id == Event.pump_id)
        .where(Event.id > after_id, Event.type.in_(types))
    )
    if upto_id is not None:
        query = query.where(Event.id <= upto_id)
    return [(row[0], row[1]) for row in session.execute(query.order_by(Event.id).limit(limit)).all()]


def last_event_id(session: Session) -> int:
    """The highest event id stored (0 when none)."""
    return int(session.scalar(select(func.max(Event.id))) or 0)


def latest_event(
    session: Session, pump_id: int, channel: str | None, event_type: str, *, before_id: int, limit: int = 1
) -> Sequence[Event]:
    """The newest events of a type on a pump (channel) stored before an event id, newest first."""
    query = select(Event).where(Event.pump_id == pump_id, Event.type == event_type, Event.id < before_id)
    if channel is not None:
        query = query.where(Event.channel == channel)
    return session.scalars(query.order_by(Event.id.desc()).limit(limit)).all()


def event_by_id(session: Session, event_id: int) -> Event | None:
    """The event with this id."""
    return session.get(Event, event_id)


def infusion_events(
    session: Session, pump_id: int, channel: str, first_id: int, last_id: int | None, types: Sequence[str]
) -> Sequence[Event]:
    """Events of some types on a channel between two event ids (inclusive; open-ended when None)."""
    query = select(Event).where(
        Event.pump_id == pump_id, Event.channel == channel, Event.id >= first_id, Event.type.in_(types)
    )
    if last_id is not None:
        query = query.where(Event.id <= last_id)
    return session.scalars(query.order_by(Event.id)).all()


def outbound_head(session: Session, destination: str) -> EhrOutbound | None:
    """The oldest pending outbound message of a destination (due or not)."""
    return session.scalars(
        select(EhrOutbound)
        .where(EhrOutbound.destination == destination, EhrOutbound.state == "pending")
        .order_by(EhrOutbound.id)
        .limit(1)
    ).first()


def outbound(session: Session, destination: str, state: str | None = None) -> Sequence[EhrOutbound]:
    """Every outbound message of a destination in queue order, optionally of one state."""
    query = select(EhrOutbound).where(EhrOutbound.destination == destination)
    if state is not None:
        query = query.where(EhrOutbound.state == state)
    return session.scalars(query.order_by(EhrOutbound.id)).all()


def count_outbound(session: Session, destination: str, state: str) -> int:
    """How many outbound messages of a destination are in a state."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(EhrOutbound)
            .where(EhrOutbound.destination == destination, EhrOutbound.state == state)
        )
        or 0
    )


def outbound_by_source(session: Session, source_key: str) -> EhrOutbound | None:
    """The outbound message produced from this source key, if any."""
    return session.scalars(select(EhrOutbound).where(EhrOutbound.source_key == source_key)).one_or_none()


def pumps_with_started_orders(session: Session) -> Sequence[int]:
    """Ids of pumps with at least one infusion started from an order and not ended."""
    query = select(EhrOrder.pump_id).where(EhrOrder.status == "started", EhrOrder.pump_id.is_not(None))
    return [
        pump_id
        for pump_id in session.scalars(query.distinct().order_by(EhrOrder.pump_id))
        if pump_id is not None
    ]
