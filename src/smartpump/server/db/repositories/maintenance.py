"""Maintenance schedules, records, fault reports and recalls."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartpump.server.db.models import (
    FaultReport,
    MaintenanceRecord,
    MaintenanceSchedule,
    Pump,
    Recall,
    RecallAction,
)


def schedules(session: Session, *, facility_ids: frozenset[int] | None) -> Sequence[MaintenanceSchedule]:
    """Preventive-maintenance schedules in the allowed facilities."""
    query = select(MaintenanceSchedule)
    if facility_ids is not None:
        query = query.where(MaintenanceSchedule.facility_id.in_(facility_ids))
    return session.scalars(
        query.order_by(MaintenanceSchedule.facility_id, MaintenanceSchedule.model, MaintenanceSchedule.kind)
    ).all()


def schedule(session: Session, facility_id: int, model: str, kind: str) -> MaintenanceSchedule | None:
    """The schedule for one (facility, model, kind), if any."""
    return session.scalars(
        select(MaintenanceSchedule).where(
            MaintenanceSchedule.facility_id == facility_id,
            MaintenanceSchedule.model == model,
            MaintenanceSchedule.kind == kind,
        )
    ).one_or_none()


def list_records(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    pump_id: int | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[tuple[MaintenanceRecord, str]], int]:
    """Maintenance records (with the pump serial), newest first; page and total."""
    query = select(MaintenanceRecord, Pump.serial).join(Pump, Pump.id == MaintenanceRecord.pump_id)
    if facility_ids is not None:
        query = query.where(Pump.facility_id.in_(facility_ids))
    if pump_id is not None:
        query = query.where(MaintenanceRecord.pump_id == pump_id)
    if kind is not None:
        query = query.where(MaintenanceRecord.kind == kind)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.execute(
        query.order_by(MaintenanceRecord.performed_at.desc(), MaintenanceRecord.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(row[0], row[1]) for row in rows], total


def last_records_by_kind(
    session: Session, pump_ids: Sequence[int]
) -> dict[tuple[int, str], MaintenanceRecord]:
    """The latest record of each (pump, kind)."""
    latest: dict[tuple[int, str], MaintenanceRecord] = {}
    if not pump_ids:
        return latest
    rows = session.scalars(
        select(MaintenanceRecord)
        .where(MaintenanceRecord.pump_id.in_(pump_ids))
        .order_by(MaintenanceRecord.performed_at, MaintenanceRecord.id)
    )
    for record in rows:
        latest[(record.pump_id, record.kind)] = record
    return latest


def battery_checks(session: Session, pump_id: int, count: int) -> Sequence[MaintenanceRecord]:
    """The latest battery checks carrying a health figure, newest first."""
    return session.scalars(
        select(MaintenanceRecord)
        .where(
            MaintenanceRecord.pump_id == pump_id,
            MaintenanceRecord.kind == "battery_check",
            MaintenanceRecord.battery_health_percent.is_not(None),
        )
        .order_by(MaintenanceRecord.performed_at.desc(), MaintenanceRecord.id.desc())
        .limit(count)
    ).all()


def faults(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    pump_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[tuple[FaultReport, str]], int]:
    """Fault reports (with pump serial), newest first; page and total."""
    query = select(FaultReport, Pump.serial).join(Pump, Pump.id == FaultReport.pump_id)
    if facility_ids is not None:
        query = query.where(Pump.facility_id.in_(facility_ids))
    if pump_id is not None:
        query = query.where(FaultReport.pump_id == pump_id)
    if status is not None:
        query = query.where(FaultReport.status == status)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.execute(
        query.order_by(FaultReport.reported_at.desc(), FaultReport.id.desc()).limit(limit).offset(offset)
    ).all()
    return [(row[0], row[1]) for row in rows], total


def fault_by_id(session: Session, fault_id: int) -> FaultReport | None:
    """The fault report with this id, if any."""
    return session.get(FaultReport, fault_id)


def open_fault(session: Session, pump_id: int, category: str) -> FaultReport | None:
    """An open fault of this category on the pump, if any."""
    return session.scalars(
        select(FaultReport).where(
            FaultReport.pump_id == pump_id, FaultReport.category == category, FaultReport.status == "open"
        )
    ).first()


def recalls(session: Session) -> Sequence[Recall]:
    """Every recall, newest first."""
    return session.scalars(select(Recall).order_by(Recall.issued_at.desc(), Recall.id.desc())).all()


def recall_by_id(session: Session, recall_id: int) -> Recall | None:
    """The recall with this id, if any."""
    return session.get(Recall, recall_id)


def recall_by_reference(session: Session, reference: str) -> Recall | None:
    """The recall with this reference, if any."""
    return session.scalars(select(Recall).where(Recall.reference == reference)).one_or_none()


def affected_pumps(
    session: Session, recall: Recall, *, facility_ids: frozenset[int] | None
) -> Sequence[Pump]:
    """Pumps of the recalled model (and firmware, when the recall names one) in the allowed facilities."""
    query = select(Pump).where(Pump.model == recall.model, Pump.status != "retired")
    if recall.firmware is not None:
        query = query.where(Pump.firmware == recall.firmware)
    if facility_ids is not None:
        query = query.where(Pump.facility_id.in_(facility_ids))
    return session.scalars(query.order_by(Pump.serial)).all()


def recall_actions(session: Session, recall_id: int) -> dict[int, RecallAction]:
    """Completed actions of a recall, by pump id."""
    return {
        a.pump_id: a for a in session.scalars(select(RecallAction).where(RecallAction.recall_id == recall_id))
    }
