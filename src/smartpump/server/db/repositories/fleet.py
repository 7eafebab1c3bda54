"""Pumps and their channels' latest state."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartpump.server.db.models import ChannelState, LibraryVersion, Pump


def pump_by_serial(session: Session, serial: str) -> Pump | None:
    """The pump with this serial, if any."""
    return session.scalars(select(Pump).where(Pump.serial == serial)).one_or_none()


def pump_by_id(session: Session, pump_id: int) -> Pump | None:
    """The pump with this id, if any."""
    return session.get(Pump, pump_id)


def list_pumps(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    facility_id: int | None = None,
    status: str | None = None,
    care_area: str | None = None,
    model: str | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Pump], int]:
    """Pumps in the allowed facilities, filtered, in serial order; page and total."""
    query = select(Pump)
    if facility_ids is not None:
        query = query.where(Pump.facility_id.in_(facility_ids))
    if facility_id is not None:
        query = query.where(Pump.facility_id == facility_id)
    if status is not None:
        query = query.where(Pump.status == status)
    if care_area is not None:
        query = query.where(Pump.care_area == care_area)
    if model is not None:
        query = query.where(Pump.model == model)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    return session.scalars(query.order_by(Pump.serial).limit(limit).offset(offset)).all(), total


def all_pumps(session: Session, *, facility_ids: frozenset[int] | None) -> Sequence[Pump]:
    """Every pump in the allowed facilities (not retired)."""
    query = select(Pump).where(Pump.status != "retired")
    if facility_ids is not None:
        query = query.where(Pump.facility_id.in_(facility_ids))
    return session.scalars(query.order_by(Pump.serial)).all()


def channels_of(session: Session, pump_id: int) -> Sequence[ChannelState]:
    """Latest state of each channel of a pump."""
    return session.scalars(
        select(ChannelState).where(ChannelState.pump_id == pump_id).order_by(ChannelState.channel)
    ).all()


def channel(session: Session, pump_id: int, name: str) -> ChannelState | None:
    """One channel's state row."""
    return session.scalars(
        select(ChannelState).where(ChannelState.pump_id == pump_id, ChannelState.channel == name)
    ).one_or_none()


def released_versions(session: Session, *, facility_ids: frozenset[int] | None) -> dict[int, LibraryVersion]:
    """The released library version of each facility."""
    query = select(LibraryVersion).where(LibraryVersion.status == "released")
    if facility_ids is not None:
        query = query.where(LibraryVersion.facility_id.in_(facility_ids))
    return {v.facility_id: v for v in session.scalars(query)}
