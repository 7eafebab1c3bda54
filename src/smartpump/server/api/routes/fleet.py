"""Fleet-wide views: library currency (which pumps run which library version) and the alarms the pumps
show now (``services.fleet_view``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter

from smartpump.server.api.deps import SessionDep, require_roles
from smartpump.server.api.schemas import LibraryCurrencyOut, Response
from smartpump.server.auth import ALL_ROLES, Access
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.services import fleet, fleet_view

router = APIRouter(prefix="/fleet", tags=["pumps"])


@router.get("/library-currency")
def library_currency(
    access: Annotated[Access, require_roles(*ALL_ROLES)], session: SessionDep
) -> list[LibraryCurrencyOut]:
    """Per facility: the released version and hash, pumps per installed version, pumps not yet current (a
    pump is current only when it runs the release's content hash) and those running other content under
    the released version number."""
    return [
        LibraryCurrencyOut(
            facility_id=c.facility_id,
            released_version=c.released_version,
            released_sha256=c.released_sha256,
            pumps_by_version=c.pumps_by_version,
            current=c.current,
            outdated_serials=list(c.outdated_serials),
            same_version_other_content=list(c.same_version_other_content),
        )
        for c in fleet.library_currency(session, access)
    ]


class ActiveAlarmOut(Response):
    """An alarm a pump shows now: channel (None: the whole pump), priority, since (the pump's time)."""

    pump: str
    channel: str | None
    alarm: str
    priority: str
    since: datetime


@router.get("/alarms")
def active_alarms(
    access: Annotated[Access, require_roles(*ALL_ROLES)], session: SessionDep
) -> list[ActiveAlarmOut]:
    """Every alarm the visible pumps show now, per pump highest priority first (the active-alarm table,
    fed by alarm events and reconciled by each pump's heartbeat)."""
    pumps = fleet_repo.all_pumps(session, facility_ids=access.scope)
    shown = fleet_view.alarms_of(session, [p.id for p in pumps])
    return [
        ActiveAlarmOut(pump=p.serial, channel=a.channel, alarm=a.alarm, priority=a.priority, since=a.since)
        for p in sorted(pumps, key=lambda p: p.serial)
        for a in shown[p.id]
    ]
