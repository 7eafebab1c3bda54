"""Maintenance: records, preventive schedules, due lists, fault reports, recalls, inspection flags."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from smartpump.server.api.deps import ClockDep, IdPath, PageDep, SessionDep, SettingsDep, require_roles
from smartpump.server.api.schemas import (
    DueOut,
    FaultCreate,
    FaultOut,
    FaultResolve,
    FlagsOut,
    MaintenanceCreate,
    MaintenanceOut,
    RecallComplete,
    RecallCreate,
    RecallOut,
    ScheduleOut,
    ScheduleSet,
)
from smartpump.server.auth import Access, Role
from smartpump.server.db.models import FaultReport, MaintenanceRecord
from smartpump.server.services import maintenance as service
from smartpump.server.services.maintenance import RecallStatus
from smartpump.server.vocabulary import FaultCategory, FaultStatus, MaintenanceKind, MaintenanceResult

router = APIRouter(prefix="/maintenance", tags=["maintenance"])
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
Reader = Annotated[Access, require_roles(Role.BIOMED, Role.AUDITOR)]
FaultReader = Annotated[Access, require_roles(Role.BIOMED, Role.NURSE, Role.AUDITOR)]
FaultReporter = Annotated[Access, require_roles(Role.BIOMED, Role.NURSE)]
SerialFilter = Annotated[str | None, Query(max_length=64, description="pump serial")]


def _record(record: MaintenanceRecord, serial: str) -> MaintenanceOut:
    return MaintenanceOut(
        id=record.id,
        serial=serial,
        kind=MaintenanceKind(record.kind),
        performed_at=record.performed_at,
        performed_by=record.performed_by,
        result=MaintenanceResult(record.result),
        battery_health_percent=record.battery_health_percent,
        from_version=record.from_version,
        to_version=record.to_version,
        notes=record.notes,
    )


def _fault(fault: FaultReport, serial: str) -> FaultOut:
    return FaultOut(
        id=fault.id,
        serial=serial,
        category=FaultCategory(fault.category),
        description=fault.description,
        status=FaultStatus(fault.status),
        reported_by=fault.reported_by,
        reported_at=fault.reported_at,
        resolved_at=fault.resolved_at,
        resolution=fault.resolution,
    )


def _recall(item: RecallStatus) -> RecallOut:
    r = item.recall
    return RecallOut(
        id=r.id,
        reference=r.reference,
        title=r.title,
        model=r.model,
        firmware=r.firmware,
        description=r.description,
        issued_at=r.issued_at,
        affected_serials=list(item.affected),
        completed_serials=list(item.completed),
    )


@router.get("")
def list_records(
    access: Reader,
    session: SessionDep,
    page: PageDep,
    response: Response,
    serial: SerialFilter = None,
    kind: MaintenanceKind | None = None,
) -> list[MaintenanceOut]:
    """Maintenance records (cleaning, battery, tubing, service, software/library updates), newest first."""
    rows, total = service.list_records(
        session, access, serial=serial, kind=kind, limit=page.limit, offset=page.offset
    )
    page.headers(response, total)
    return [_record(record, s) for record, s in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
def record_work(
    body: MaintenanceCreate, access: Biomed, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> MaintenanceOut:
    """Record work done on a pump (a poor battery check flags the pump)."""
    record = service.record_work(
        session,
        clock,
        settings,
        access,
        body.serial,
        kind=body.kind,
        result=body.result,
        performed_at=body.performed_at,
        battery_health_percent=body.battery_health_percent,
        from_version=body.from_version,
        to_version=body.to_version,
        notes=body.notes,
    )
    return _record(record, body.serial)


@router.get("/schedules")
def list_schedules(access: Reader, session: SessionDep) -> list[ScheduleOut]:
    """Preventive-maintenance schedules per model."""
    return [ScheduleOut.model_validate(s) for s in service.schedules(session, access)]


@router.put("/schedules")
def set_schedule(body: ScheduleSet, access: Biomed, session: SessionDep, clock: ClockDep) -> ScheduleOut:
    """Create or change the interval of one kind of work for one model."""
    schedule = service.set_schedule(
        session,
        clock,
        access,
        facility_id=body.facility_id,
        model=body.model,
        kind=body.kind,
        interval_days=body.interval_days,
    )
    return ScheduleOut.model_validate(schedule)


@router.get("/due")
def due(
    access: Reader,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    within_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
) -> list[DueOut]:
    """Scheduled work overdue or due soon, soonest first."""
    return [
        DueOut(**asdict(item))
        for item in service.due_list(session, clock, settings, access, within_days=within_days)
    ]


@router.get("/faults")
def list_faults(
    access: FaultReader,
    session: SessionDep,
    page: PageDep,
    response: Response,
    serial: SerialFilter = None,
    status: FaultStatus | None = None,
) -> list[FaultOut]:
    """Fault and damage reports, newest first."""
    rows, total = service.list_faults(
        session, access, serial=serial, status=status, limit=page.limit, offset=page.offset
    )
    page.headers(response, total)
    return [_fault(fault, s) for fault, s in rows]


@router.post("/faults", status_code=status.HTTP_201_CREATED)
def report_fault(body: FaultCreate, access: FaultReporter, session: SessionDep, clock: ClockDep) -> FaultOut:
    """Report a fault (cracked screen, repeated alarms, poor battery...); the pump is flagged."""
    fault = service.report_fault(
        session, clock, access, body.serial, category=body.category, description=body.description
    )
    return _fault(fault, body.serial)


@router.post("/faults/{fault_id}/resolve")
def resolve_fault(
    fault_id: IdPath,
    body: FaultResolve,
    access: Biomed,
    session: SessionDep,
    clock: ClockDep,
) -> FaultOut:
    """Close a fault report."""
    fault, serial = service.resolve_fault(session, clock, access, fault_id, resolution=body.resolution)
    return _fault(fault, serial)


@router.get("/recalls")
def list_recalls(access: Reader, session: SessionDep) -> list[RecallOut]:
    """Recalls with affected and completed pumps in the caller's facilities."""
    return [_recall(item) for item in service.recall_statuses(session, access)]


@router.post("/recalls", status_code=status.HTTP_201_CREATED)
def create_recall(body: RecallCreate, access: Biomed, session: SessionDep, clock: ClockDep) -> RecallOut:
    """Register a recall for a model (and firmware)."""
    recall = service.create_recall(
        session,
        clock,
        access,
        reference=body.reference,
        title=body.title,
        model=body.model,
        firmware=body.firmware,
        description=body.description,
        issued_at=body.issued_at,
    )
    item = next(i for i in service.recall_statuses(session, access) if i.recall.id == recall.id)
    return _recall(item)


@router.post("/recalls/{recall_id}/pumps/{serial}", status_code=status.HTTP_201_CREATED)
def complete_recall(
    recall_id: IdPath,
    serial: Annotated[str, Path(max_length=64)],
    body: RecallComplete,
    access: Biomed,
    session: SessionDep,
    clock: ClockDep,
) -> RecallOut:
    """Record a recall action done on one pump."""
    service.complete_recall(session, clock, access, recall_id, serial, notes=body.notes)
    item = next(i for i in service.recall_statuses(session, access) if i.recall.id == recall_id)
    return _recall(item)


@router.post("/flags/evaluate")
def evaluate_flags(access: Biomed, session: SessionDep, clock: ClockDep, settings: SettingsDep) -> FlagsOut:
    """Flag pumps with repeated alarms or a degrading battery for inspection."""
    return FlagsOut(flagged_serials=service.evaluate_flags(session, clock, settings, access))
