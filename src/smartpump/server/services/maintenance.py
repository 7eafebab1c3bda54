"""Maintenance: preventive schedules per model, work records, due/overdue lists, fault reports, recalls,
and automatic inspection flags for pumps with repeated alarms or a degrading battery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.pump.events import EventType
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models import (
    FaultReport,
    MaintenanceRecord,
    MaintenanceSchedule,
    Pump,
    Recall,
    RecallAction,
)
from smartpump.server.db.repositories import events as events_repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.repositories import maintenance as repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.services.fleet import get_pump
from smartpump.server.settings import Settings
from smartpump.server.vocabulary import (
    SCHEDULABLE,
    FaultCategory,
    FaultStatus,
    MaintenanceKind,
    MaintenanceResult,
    PumpStatus,
)

ALARM_EVENT: Final = EventType.ALARM_RAISED


def set_schedule(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    facility_id: int,
    model: str,
    kind: MaintenanceKind,
    interval_days: int,
) -> MaintenanceSchedule:
    """Create or change the preventive-maintenance interval of a model in a facility."""
    if kind not in SCHEDULABLE:
        raise InvalidInputError(
            f"{kind.value} has no preventive schedule", code="maintenance.not_schedulable"
        )
    if not access.allows(facility_id):
        raise AccessDeniedError("you cannot plan maintenance in this facility", code="maintenance.forbidden")
    if users_repo.facility_by_id(session, facility_id) is None:
        raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
    schedule = repo.schedule(session, facility_id, model, kind.value)
    if schedule is None:
        schedule = MaintenanceSchedule(
            facility_id=facility_id, model=model, kind=kind.value, interval_days=interval_days
        )
        session.add(schedule)
    schedule.interval_days = interval_days
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="maintenance.schedule_set",
        object_type="schedule",
        object_id=schedule.id,
        facility_id=facility_id,
        details={"model": model, "kind": kind.value, "interval_days": interval_days},
    )
    return schedule


def schedules(session: Session, access: Access) -> Sequence[MaintenanceSchedule]:
    """Schedules of the caller's facilities."""
    return repo.schedules(session, facility_ids=access.scope)


def record_work(
    session: Session,
    clock: Clock,
    settings: Settings,
    access: Access,
    serial: str,
    *,
    kind: MaintenanceKind,
    result: MaintenanceResult,
    performed_at: datetime | None = None,
    battery_health_percent: int | None = None,
    from_version: str | None = None,
    to_version: str | None = None,
    notes: str = "",
) -> MaintenanceRecord:
    """Record maintenance work on a pump; a battery check updates battery health and may flag the pump."""
    pump = get_pump(session, access, serial)
    now = clock.now()
    when = performed_at or now
    if when > now:
        raise InvalidInputError("maintenance cannot be recorded in the future", code="maintenance.future")
    if kind is MaintenanceKind.PERFORMANCE_CHECK:
        raise InvalidInputError(
            "a performance check is filed by the bench with its measurements (/bench)",
            code="maintenance.kind_bench",
        )
    if battery_health_percent is not None and kind is not MaintenanceKind.BATTERY_CHECK:
        raise InvalidInputError(
            "battery health belongs to a battery check", code="maintenance.battery_health"
        )
    record = MaintenanceRecord(
        pump_id=pump.id,
        kind=kind.value,
        performed_at=when,
        performed_by=access.principal.user_id,
        result=result.value,
        battery_health_percent=battery_health_percent,
        from_version=from_version,
        to_version=to_version,
        notes=notes,
    )
    session.add(record)
    if battery_health_percent is not None:
        pump.battery_health_percent = battery_health_percent
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="maintenance.recorded",
        object_type="pump",
        object_id=serial,
        facility_id=pump.facility_id,
        details={"kind": kind.value, "result": result.value, "record": record.id},
    )
    if kind is MaintenanceKind.BATTERY_CHECK:
        _flag_battery(session, clock, settings, pump)
    session.flush()
    return record


def list_records(
    session: Session,
    access: Access,
    *,
    serial: str | None,
    kind: MaintenanceKind | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[tuple[MaintenanceRecord, str]], int]:
    """Maintenance records of the caller's facilities, newest first."""
    pump_id = None if serial is None else get_pump(session, access, serial).id
    return repo.list_records(
        session,
        facility_ids=access.scope,
        pump_id=pump_id,
        kind=None if kind is None else kind.value,
        limit=limit,
        offset=offset,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DueItem:
    """Preventive work on one pump: when it was last done and when it is due."""

    serial: str
    model: str
    facility_id: int
    kind: str
    last_done: datetime | None
    due_at: datetime
    is_overdue: bool


def due_list(
    session: Session, clock: Clock, settings: Settings, access: Access, *, within_days: int | None = None
) -> list[DueItem]:
    """Scheduled work that is overdue or due within ``within_days`` (default from settings), soonest first.

    Work never done is due one interval after the pump was registered.
    """
    now = clock.now()
    horizon = now + timedelta(days=settings.maintenance_due_soon_days if within_days is None else within_days)
    plans: dict[tuple[int, str], list[MaintenanceSchedule]] = {}
    for schedule in repo.schedules(session, facility_ids=access.scope):
        plans.setdefault((schedule.facility_id, schedule.model), []).append(schedule)
    pumps = [
        p
        for p in fleet_repo.all_pumps(session, facility_ids=access.scope)
        if (p.facility_id, p.model) in plans
    ]
    latest = repo.last_records_by_kind(session, [p.id for p in pumps])
    items = []
    for pump in pumps:
        for schedule in plans[(pump.facility_id, pump.model)]:
            last = latest.get((pump.id, schedule.kind))
            start = pump.created_at if last is None else last.performed_at
            due_at = start + timedelta(days=schedule.interval_days)
            if due_at <= horizon:
                items.append(
                    DueItem(
                        serial=pump.serial,
                        model=pump.model,
                        facility_id=pump.facility_id,
                        kind=schedule.kind,
                        last_done=None if last is None else last.performed_at,
                        due_at=due_at,
                        is_overdue=due_at < now,
                    )
                )
    return sorted(items, key=lambda item: (item.due_at, item.serial, item.kind))


def report_fault(
    session: Session, clock: Clock, access: Access, serial: str, *, category: FaultCategory, description: str
) -> FaultReport:
    """Report a fault or damage; the pump is flagged for inspection."""
    pump = get_pump(session, access, serial)
    fault = _open_fault(session, clock, pump, category, description, reported_by=access.principal.user_id)
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="maintenance.fault_reported",
        object_type="pump",
        object_id=serial,
        facility_id=pump.facility_id,
        details={"category": category.value, "fault": fault.id},
    )
    return fault


def list_faults(
    session: Session,
    access: Access,
    *,
    serial: str | None,
    status: FaultStatus | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[tuple[FaultReport, str]], int]:
    """Fault reports of the caller's facilities, newest first."""
    pump_id = None if serial is None else get_pump(session, access, serial).id
    return repo.faults(
        session,
        facility_ids=access.scope,
        pump_id=pump_id,
        status=None if status is None else status.value,
        limit=limit,
        offset=offset,
    )


def resolve_fault(
    session: Session, clock: Clock, access: Access, fault_id: int, *, resolution: str
) -> tuple[FaultReport, str]:
    """Close a fault report with what was done."""
    fault = repo.fault_by_id(session, fault_id)
    pump = None if fault is None else fleet_repo.pump_by_id(session, fault.pump_id)
    if fault is None or pump is None or not access.allows(pump.facility_id):
        raise NotFoundError("no such fault report", code="fault.not_found")
    if fault.status != FaultStatus.OPEN.value:
        raise ConflictError("fault report is already resolved", code="fault.resolved")
    fault.status = FaultStatus.RESOLVED
    fault.resolved_by = access.principal.user_id
    fault.resolved_at = clock.now()
    fault.resolution = resolution
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="maintenance.fault_resolved",
        object_type="fault",
        object_id=fault.id,
        facility_id=pump.facility_id,
    )
    return fault, pump.serial


def create_recall(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    reference: str,
    title: str,
    model: str,
    firmware: str | None,
    description: str,
    issued_at: datetime | None,
) -> Recall:
    """Register a manufacturer recall or field action for a model (optionally one firmware)."""
    if repo.recall_by_reference(session, reference) is not None:
        raise ConflictError(f"recall {reference!r} exists", code="recall.exists")
    recall = Recall(
        reference=reference,
        title=title,
        model=model,
        firmware=firmware,
        description=description,
        issued_at=issued_at or clock.now(),
        created_by=access.principal.user_id,
    )
    session.add(recall)
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="maintenance.recall_created",
        object_type="recall",
        object_id=recall.id,
        details={"reference": reference, "model": model},
    )
    return recall


@dataclass(frozen=True, slots=True, kw_only=True)
class RecallStatus:
    """A recall and how far its actions are done in the caller's facilities."""

    recall: Recall
    affected: tuple[str, ...]
    completed: tuple[str, ...]


def recall_statuses(session: Session, access: Access) -> list[RecallStatus]:
    """Every recall with the affected and completed pumps of the caller's facilities."""
    result = []
    for recall in repo.recalls(session):
        pumps = repo.affected_pumps(session, recall, facility_ids=access.scope)
        done = repo.recall_actions(session, recall.id)
        result.append(
            RecallStatus(
                recall=recall,
                affected=tuple(p.serial for p in pumps),
                completed=tuple(p.serial for p in pumps if p.id in done),
            )
        )
    return result


def complete_recall(
    session: Session, clock: Clock, access: Access, recall_id: int, serial: str, *, notes: str
) -> RecallAction:
    """Record that a recall's action was carried out on a pump."""
    recall = repo.recall_by_id(session, recall_id)
    if recall is None:
        raise NotFoundError("no such recall", code="recall.not_found")
    pump = get_pump(session, access, serial)
    if pump.model != recall.model or (recall.firmware is not None and pump.firmware != recall.firmware):
        raise ConflictError(f"pump {serial!r} is not affected by this recall", code="recall.not_affected")
    if pump.id in repo.recall_actions(session, recall.id):
        raise ConflictError("recall already completed on this pump", code="recall.completed")
    action = RecallAction(
        recall_id=recall.id,
        pump_id=pump.id,
        completed_at=clock.now(),
        completed_by=access.principal.user_id,
        notes=notes,
    )
    session.add(action)
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="maintenance.recall_completed",
        object_type="pump",
        object_id=serial,
        facility_id=pump.facility_id,
        details={"recall": recall.reference},
    )
    return action


def evaluate_flags(session: Session, clock: Clock, settings: Settings, access: Access | None) -> list[str]:
    """Flag for inspection pumps with repeated alarms or a degrading battery; returns newly flagged serials.

    ``access`` None evaluates every facility (the background job); otherwise the caller's facilities.
    """
    since = clock.now() - timedelta(hours=settings.alarm_flag_window_hours)
    flagged = []
    scope = None if access is None else access.scope
    noisy = set(
        events_repo.pumps_with_events(
            session, event_type=ALARM_EVENT, since=since, at_least=settings.alarm_flag_count
        )
    )
    for pump in fleet_repo.all_pumps(session, facility_ids=scope):
        was_flagged = False
        if (
            pump.id in noisy
            and repo.open_fault(session, pump.id, FaultCategory.REPEATED_ALARMS.value) is None
        ):
            count = events_repo.count_events(session, pump_id=pump.id, event_type=ALARM_EVENT, since=since)
            _open_fault(
                session,
                clock,
                pump,
                FaultCategory.REPEATED_ALARMS,
                f"{count} alarms in {settings.alarm_flag_window_hours} h",
                reported_by=None,
            )
            was_flagged = True
        was_flagged = _flag_battery(session, clock, settings, pump) or was_flagged
        if was_flagged:
            flagged.append(pump.serial)
    session.flush()
    return flagged


def _flag_battery(session: Session, clock: Clock, settings: Settings, pump: Pump) -> bool:
    checks = repo.battery_checks(session, pump.id, 2)
    if not checks or repo.open_fault(session, pump.id, FaultCategory.POOR_BATTERY.value) is not None:
        return False
    latest = checks[0].battery_health_percent
    assert latest is not None
    reason = None
    if latest < settings.battery_health_min_percent:
        reason = f"battery health {latest}% is below {settings.battery_health_min_percent}%"
    elif len(checks) == 2 and checks[1].battery_health_percent is not None:
        drop = checks[1].battery_health_percent - latest
        if drop >= settings.battery_health_drop_percent:
            reason = f"battery health fell {drop} points between checks"
    if reason is None:
        return False
    _open_fault(session, clock, pump, FaultCategory.POOR_BATTERY, reason, reported_by=None)
    return True


def _open_fault(
    session: Session,
    clock: Clock,
    pump: Pump,
    category: FaultCategory,
    description: str,
    *,
    reported_by: int | None,
) -> FaultReport:
    fault = FaultReport(
        pump_id=pump.id,
        category=category.value,
        description=description,
        status=FaultStatus.OPEN.value,
        reported_by=reported_by,
        reported_at=clock.now(),
    )
    session.add(fault)
    if pump.status == PumpStatus.IN_SERVICE.value:
        pump.status = PumpStatus.NEEDS_INSPECTION
    pump.inspection_reason = description if pump.inspection_reason is None else pump.inspection_reason
    session.flush()
    if reported_by is None:
        audit.append(
            session,
            clock,
            actor=None,
            action="maintenance.flagged",
            object_type="pump",
            object_id=pump.serial,
            facility_id=pump.facility_id,
            details={"category": category.value, "reason": description},
        )
    return fault
