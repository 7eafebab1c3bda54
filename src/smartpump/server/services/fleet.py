"""Fleet registry: pumps, their channels' latest state, status reports (library and configuration
versions) and library currency."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.library.signing import SignedLibrary
from smartpump.pump.channel import ChannelState as PumpChannelState
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models import ChannelState, LibraryVersion, MaintenanceRecord, Pump
from smartpump.server.db.repositories import fleet as repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.event_data import decimal_or_none
from smartpump.server.vocabulary import MaintenanceKind, MaintenanceResult, PumpStatus


def register_pump(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    facility_id: int,
    serial: str,
    model: str,
    firmware: str,
    care_area: str | None,
    location: str | None,
) -> Pump:
    """Add a pump to a facility's registry."""
    if not access.allows(facility_id):
        raise AccessDeniedError("you cannot register pumps in this facility", code="pump.forbidden")
    if users_repo.facility_by_id(session, facility_id) is None:
        raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
    if repo.pump_by_serial(session, serial) is not None:
        raise ConflictError(f"pump {serial!r} is registered already", code="pump.exists")
    pump = Pump(
        facility_id=facility_id,
        serial=serial,
        model=model,
        firmware=firmware,
        care_area=care_area,
        location=location,
        status=PumpStatus.IN_SERVICE.value,
        created_at=clock.now(),
    )
    session.add(pump)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"pump {serial!r} is registered already", code="pump.exists") from None
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="pump.registered",
        object_type="pump",
        object_id=serial,
        facility_id=facility_id,
        details={"model": model, "firmware": firmware},
    )
    return pump


def get_pump(session: Session, access: Access, serial: str) -> Pump:
    """A pump the caller may see (404 otherwise, whether absent or in another facility)."""
    pump = repo.pump_by_serial(session, serial)
    if pump is None or not access.allows(pump.facility_id):
        raise NotFoundError(f"no pump {serial!r}", code="pump.not_found")
    return pump


def list_pumps(
    session: Session,
    access: Access,
    *,
    facility_id: int | None,
    status: PumpStatus | None,
    care_area: str | None,
    model: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Pump], int]:
    """Pumps visible to the caller, filtered."""
    return repo.list_pumps(
        session,
        facility_ids=access.scope,
        facility_id=facility_id,
        status=None if status is None else status.value,
        care_area=care_area,
        model=model,
        limit=limit,
        offset=offset,
    )


def update_pump(
    session: Session,
    clock: Clock,
    access: Access,
    serial: str,
    *,
    location: str | None = None,
    care_area: str | None = None,
    status: PumpStatus | None = None,
) -> Pump:
    """Change where a pump is, its care area or its status; returning it to service clears its flag."""
    pump = get_pump(session, access, serial)
    changes: dict[str, object] = {}
    if location is not None:
        pump.location = location
        changes["location"] = location
    if care_area is not None:
        pump.care_area = care_area
        changes["care_area"] = care_area
    if status is not None:
        pump.status = status
        changes["status"] = status.value
        if status is PumpStatus.IN_SERVICE:
            pump.inspection_reason = None
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="pump.updated",
        object_type="pump",
        object_id=serial,
        facility_id=pump.facility_id,
        details=changes,
    )
    return pump


def channels(session: Session, access: Access, serial: str) -> Sequence[ChannelState]:
    """Latest state of each channel of a visible pump."""
    return repo.channels_of(session, get_pump(session, access, serial).id)


SHOWS_DOSE: Final = frozenset({PumpChannelState.RUNNING, PumpChannelState.PAUSED})


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelReport:
    """One channel's state as a pump reports it."""

    channel: str
    state: str
    drug: str | None = None
    dose: Decimal | None = None
    dose_unit: str | None = None
    rate_ml_per_h: Decimal | None = None
    volume_infused_ml: Decimal | None = None
    vtbi_ml: Decimal | None = None

    @classmethod
    def of_row(cls, row: ChannelState) -> ChannelReport:
        """The stored state of a channel as a report (what the next event changes)."""
        return cls(
            channel=row.channel,
            state=row.state,
            drug=row.drug,
            dose=decimal_or_none(row.dose),
            dose_unit=row.dose_unit,
            rate_ml_per_h=row.rate_ml_per_h,
            volume_infused_ml=row.volume_infused_ml,
            vtbi_ml=row.vtbi_ml,
        )


def record_status(
    session: Session,
    clock: Clock,
    serial: str,
    *,
    seen_at: datetime,
    battery_percent: int | None = None,
    firmware: str | None = None,
    installed_library_version: int | None = None,
    installed_library_sha256: str | None = None,
    configuration_version: int | None = None,
    care_area: str | None = None,
    channels: Sequence[ChannelReport] = (),
) -> Pump:
    """Apply a pump's status report (for the connectivity layer); firmware/library changes go to history,
    a configuration change to the audit log. A library is its version and content hash: a new hash under
    the same version number is a change too."""
    pump = repo.pump_by_serial(session, serial)
    if pump is None:
        raise NotFoundError(f"no pump {serial!r}", code="pump.unknown")
    now = clock.now()
    if pump.last_seen is None or seen_at > pump.last_seen:
        pump.last_seen = seen_at
    if battery_percent is not None:
        pump.battery_percent = battery_percent
    if care_area is not None:
        pump.care_area = care_area
    if firmware is not None and firmware != pump.firmware:
        session.add(
            MaintenanceRecord(
                pump_id=pump.id,
                kind=MaintenanceKind.SOFTWARE_UPDATE.value,
                performed_at=now,
                result=MaintenanceResult.INFO.value,
                from_version=pump.firmware,
                to_version=firmware,
                notes="reported by the pump",
            )
        )
        pump.firmware = firmware
    if installed_library_version is not None and (
        installed_library_version != pump.installed_library_version
        or installed_library_sha256 != pump.library_sha256
    ):
        previous = pump.installed_library_version
        session.add(
            MaintenanceRecord(
                pump_id=pump.id,
                kind=MaintenanceKind.LIBRARY_UPDATE.value,
                performed_at=now,
                result=MaintenanceResult.INFO.value,
                from_version=None if previous is None else str(previous),
                to_version=str(installed_library_version),
                notes="reported by the pump",
            )
        )
        audit.append(
            session,
            clock,
            actor=None,
            action="library.installed",
            object_type="pump",
            object_id=serial,
            facility_id=pump.facility_id,
            details={
                "from": previous,
                "to": installed_library_version,
                "from_sha256": pump.library_sha256,
                "to_sha256": installed_library_sha256,
            },
        )
        pump.installed_library_version = installed_library_version
        pump.library_sha256 = installed_library_sha256
    if configuration_version is not None and configuration_version != pump.configuration_version:
        audit.append(
            session,
            clock,
            actor=None,
            action="configuration.activated",
            object_type="pump",
            object_id=serial,
            facility_id=pump.facility_id,
            details={"from": pump.configuration_version, "to": configuration_version},
        )
        pump.configuration_version = configuration_version
    for report in channels:
        row = repo.channel(session, pump.id, report.channel)
        if row is None:
            row = ChannelState(pump_id=pump.id, channel=report.channel, state=report.state, updated_at=now)
            session.add(row)
        row.state = report.state
        row.drug = report.drug
        row.dose = None if report.dose is None else str(report.dose)
        row.dose_unit = report.dose_unit
        row.rate_ml_per_h = report.rate_ml_per_h
        row.volume_infused_ml = report.volume_infused_ml
        row.vtbi_ml = report.vtbi_ml
        row.updated_at = now
    session.flush()
    return pump


@dataclass(frozen=True, slots=True, kw_only=True)
class FacilityCurrency:
    """Which library each pump of a facility runs, against the released one: a pump is current only when
    its library's content hash is the release's; ``same_version_other_content`` lists the pumps that run
    another library under the released version number (not current)."""

    facility_id: int
    released_version: int | None
    released_sha256: str | None
    pumps_by_version: dict[str, int]
    current: int
    outdated_serials: tuple[str, ...]
    same_version_other_content: tuple[str, ...]


def released_sha256(row: LibraryVersion) -> str | None:
    """The content hash of a released version: SHA-256 of the signed canonical bytes the pumps receive."""
    if row.signed_document is None:
        return None
    return hashlib.sha256(SignedLibrary.from_json(row.signed_document).payload).hexdigest()


def library_currency(session: Session, access: Access) -> list[FacilityCurrency]:
    """Per facility: released version and hash, pump count per installed version, pumps not on the release
    (by content hash), and those among them that run other content under the released version number."""
    released = repo.released_versions(session, facility_ids=access.scope)
    by_facility: dict[int, list[Pump]] = {}
    for pump in repo.all_pumps(session, facility_ids=access.scope):
        by_facility.setdefault(pump.facility_id, []).append(pump)
    result = []
    for facility_id in sorted(set(by_facility) | set(released)):
        pumps = by_facility.get(facility_id, [])
        release = released.get(facility_id)
        version = None if release is None else release.version
        digest = None if release is None else released_sha256(release)
        counts: dict[str, int] = {}
        for pump in pumps:
            key = "none" if pump.installed_library_version is None else str(pump.installed_library_version)
            counts[key] = counts.get(key, 0) + 1
        outdated = tuple(p.serial for p in pumps if digest is None or p.library_sha256 != digest)
        result.append(
            FacilityCurrency(
                facility_id=facility_id,
                released_version=version,
                released_sha256=digest,
                pumps_by_version=counts,
                current=len(pumps) - len(outdated),
                outdated_serials=outdated,
                same_version_other_content=tuple(
                    p.serial
                    for p in pumps
                    if version is not None
                    and p.installed_library_version == version
                    and p.library_sha256 != digest
                ),
            )
        )
    return result
