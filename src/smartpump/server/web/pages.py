"""Pages: login and logout, the fleet dashboard, one pump, maintenance, the audit log, static assets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from smartpump.server import auth
from smartpump.server.api.deps import PUBLIC, SessionDep, StateDep, client_address, require_roles
from smartpump.server.api.errors import status_for
from smartpump.server.auth import PHI_ROLES, Access, Role
from smartpump.server.db.repositories import audit as audit_repo
from smartpump.server.errors import AuthenticationError, InvalidInputError, NotFoundError, ThrottledError
from smartpump.server.event_data import decimal_or_none
from smartpump.server.services import events as events_service
from smartpump.server.services import fleet, fleet_view, maintenance, patients
from smartpump.server.services.ehr_order_list import ORDER_READERS, pump_orders
from smartpump.server.services.tile_look import TileState
from smartpump.server.state import ServerState
from smartpump.server.vocabulary import FaultCategory, MaintenanceKind, MaintenanceResult
from smartpump.server.web import station
from smartpump.server.web.audit_view import detail_lines
from smartpump.server.web.display import NOTHING
from smartpump.server.web.panel_patient import PatientLine, patient_line
from smartpump.server.web.render import (
    AUDIT_ROLES,
    DASHBOARD_ROLES,
    EVENT_READERS,
    MAINTENANCE_ROLES,
    render,
)
from smartpump.server.web.session import CsrfChecked, end_session, session_token, start_session

router = APIRouter(include_in_schema=False)
DashboardUser = Annotated[Access, require_roles(*DASHBOARD_ROLES)]
MaintenanceUser = Annotated[Access, require_roles(*MAINTENANCE_ROLES)]
Auditor = Annotated[Access, require_roles(*AUDIT_ROLES)]
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
FAULT_REPORTERS: Final = frozenset({Role.BIOMED, Role.NURSE})
FaultReporter = Annotated[Access, require_roles(*FAULT_REPORTERS)]
WORK_KINDS: Final = (
    MaintenanceKind.CLEANING,
    MaintenanceKind.BATTERY_CHECK,
    MaintenanceKind.TUBING_CHECK,
    MaintenanceKind.SERVICE,
    MaintenanceKind.INSPECTION,
)
_E = TypeVar("_E", MaintenanceKind, MaintenanceResult, FaultCategory)
MAX_ROWS: Final = 500
STATIC_TYPES: Final = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@router.get("/", dependencies=[PUBLIC])
def root() -> RedirectResponse:
    """The server's home is the web UI."""
    return RedirectResponse("/ui/", status_code=303)


@router.get("/ui/static/{name}", dependencies=[PUBLIC])
def static(name: Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9_-]+\.(css|js|svg)$")]) -> Response:
    """The UI's own stylesheet, script and icon (served from the installed package: no CDN)."""
    suffix = name[name.rindex(".") :]
    path = resources.files("smartpump.server.web").joinpath("static", name)
    if not path.is_file():
        raise NotFoundError(f"no asset {name!r}", code="ui.asset_not_found")
    return Response(
        path.read_bytes(),
        media_type=STATIC_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


@router.get("/ui/login", dependencies=[PUBLIC])
def login_page(request: Request, next: Annotated[str | None, Query(max_length=256)] = None) -> Response:
    """The login form."""
    return render(request, "login.html", principal=None, next=_safe_next(next), error=None)


@router.post("/ui/login", dependencies=[PUBLIC])
def login(
    request: Request,
    _csrf: CsrfChecked,
    state: StateDep,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=256)] = "/ui/",
) -> Response:
    """Check the password; on success store the bearer token in the session cookie."""
    try:
        issued = auth.login(
            session,
            state.settings,
            state.clock,
            state.hasher,
            state.login_throttle,
            username,
            password,
            client=client_address(request),
        )
    except (AuthenticationError, ThrottledError) as error:
        state.metrics.logins.labels(outcome="failure").inc()
        status = 429 if isinstance(error, ThrottledError) else 401
        return render(
            request,
            "login.html",
            principal=None,
            next=_safe_next(next),
            error=error.message,
            status_code=status,
        )
    state.metrics.logins.labels(outcome="success").inc()
    response = RedirectResponse(_safe_next(next), status_code=303)
    start_session(request, response, issued.token, state.settings.token_ttl_minutes * 60)
    return response


@router.post("/ui/logout", dependencies=[PUBLIC])
def logout(request: Request, _csrf: CsrfChecked, state: StateDep, session: SessionDep) -> Response:
    """Revoke the session's token and drop the cookie."""
    token = session_token(request)
    if token:
        auth.revoke_token(session, state.settings, state.clock, token)
        session.commit()
    response = RedirectResponse("/ui/login", status_code=303)
    end_session(response)
    return response


@dataclass(slots=True, kw_only=True)
class ChannelView:
    """One channel as a tile shows it."""

    channel: str
    state: str
    drug: str | None
    dose: Decimal | None
    dose_unit: str | None
    rate_ml_per_h: Decimal | None
    vtbi_ml: Decimal | None
    remaining_ml: Decimal | None
    remaining_min: Decimal | None
    rate_text: str = NOTHING
    """The rate at the pump model's resolution."""
    remaining_text: str = NOTHING
    """The volume left at the pump model's VTBI resolution."""

    @property
    def time_left(self) -> str:
        """The time left as h:mm."""
        return station.hours_minutes(self.remaining_min)


@dataclass(slots=True, kw_only=True)
class PumpTile:
    """One pump on the dashboard."""

    serial: str
    model: str
    facility_id: int
    care_area: str | None
    location: str | None
    status: str
    battery_percent: int | None
    library_version: int | None
    released_version: int | None
    presence: str
    offline: bool
    last_seen: datetime | None
    channels: list[ChannelView] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    library_sha256: str | None = None
    released_sha256: str | None = None
    has_patient: bool = False
    patient: PatientLine | None = None
    """The associated patient, shown only to roles that may read PHI (others see that there is one)."""

    @property
    def library_current(self) -> bool:
        """True when the pump runs its facility's released library: the same content hash, not merely the
        same version number."""
        return self.released_sha256 is not None and self.library_sha256 == self.released_sha256

    @property
    def state(self) -> str:
        """What the tile is doing (``services.tile_look``)."""
        return station.look(self).state.value

    @property
    def sort_key(self) -> str:
        """The tile's place in the station's order, as the live view sends it (``services.tile_look``)."""
        return station.look(self).sort_key

    @property
    def top_alarm(self) -> dict[str, Any] | None:
        """The alarm the tile is coloured by (highest priority, then oldest)."""
        top = station.look(self).top
        return None if top is None else dict(top)


def _channel_view(row: Any, model: str, now: datetime, horizon_s: float) -> ChannelView:
    remaining, minutes = fleet_view.left_now(row, now, horizon_s=horizon_s)
    return ChannelView(
        channel=row.channel,
        state=row.state,
        drug=row.drug,
        dose=decimal_or_none(row.dose) if row.state in fleet.SHOWS_DOSE else None,
        dose_unit=row.dose_unit,
        rate_ml_per_h=row.rate_ml_per_h,
        vtbi_ml=row.vtbi_ml,
        remaining_ml=remaining,
        remaining_min=minutes,
        rate_text=station.rate_text(model, row.rate_ml_per_h),
        remaining_text=station.volume_text(model, remaining),
    )


def pump_tiles(session: Any, state: ServerState, access: Access, care_area: str | None) -> list[PumpTile]:
    """The dashboard's tiles: pumps of the caller's facilities (optionally one care area), with the alarms
    they show now and their presence (``services.fleet_view``, ``services.presence``)."""
    pumps, _ = fleet.list_pumps(
        session,
        access,
        facility_id=None,
        status=None,
        care_area=care_area,
        model=None,
        limit=MAX_ROWS,
        offset=0,
    )
    released = {
        c.facility_id: (c.released_version, c.released_sha256)
        for c in fleet.library_currency(session, access)
    }
    associated = patients.current_of(session, [p.id for p in pumps])
    sees_phi = access.principal.has_any_role(PHI_ROLES)
    now = state.clock.now()
    horizon_s = state.settings.offline_after_s
    alarms = fleet_view.alarms_of(session, [p.id for p in pumps])
    presence = fleet_view.presence_by_pump(session, pumps, now, horizon_s)
    tiles = []
    for pump in pumps:
        row = associated.get(pump.id)
        tiles.append(
            PumpTile(
                serial=pump.serial,
                model=pump.model,
                facility_id=pump.facility_id,
                care_area=pump.care_area,
                location=pump.location,
                status=pump.status,
                battery_percent=pump.battery_percent,
                library_version=pump.installed_library_version,
                released_version=released.get(pump.facility_id, (None, None))[0],
                library_sha256=pump.library_sha256,
                released_sha256=released.get(pump.facility_id, (None, None))[1],
                presence=presence[pump.id].value,
                offline=not presence[pump.id].reachable,
                last_seen=pump.last_seen,
                channels=[
                    _channel_view(c, pump.model, now, horizon_s)
                    for c in fleet.channels(session, access, pump.serial)
                ],
                alarms=[
                    {"alarm": a.alarm, "channel": a.channel, "priority": a.priority, "since": a.since}
                    for a in alarms[pump.id]
                ],
                has_patient=row is not None,
                patient=None
                if row is None or not sees_phi
                else patient_line(
                    row.patient_id, row.authority, row.id_type, row.family_name, row.given_name
                ),
            )
        )
    return tiles


@router.get("/ui/")
def dashboard(
    request: Request,
    access: DashboardUser,
    session: SessionDep,
    state: StateDep,
    care_area: Annotated[str | None, Query(max_length=64)] = None,
    show: Annotated[str | None, Query(alias="state", max_length=16)] = None,
    wall: Annotated[bool, Query()] = False,
) -> Response:
    """The central station: every pump of the caller's facilities (one care area, one state) at a glance,
    alarming first, updated live; ``wall`` drops the navigation for a wall screen."""
    wanted = station.parse_state(show)
    every, _ = fleet.list_pumps(
        session, access, facility_id=None, status=None, care_area=None, model=None, limit=MAX_ROWS, offset=0
    )
    areas = sorted({p.care_area for p in every if p.care_area})
    tiles = station.station_order(pump_tiles(session, state, access, care_area or None))
    return render(
        request,
        "dashboard.html",
        principal=access.principal,
        active="dashboard",
        tiles=tiles,
        care_areas=areas,
        care_area=care_area or "",
        states=[s.value for s in TileState],
        shown_state=wanted.value if wanted else "",
        wall=wall,
        server_now_ms=int(state.clock.now().timestamp() * 1000),
        shown=sum(1 for t in tiles if wanted is None or t.state == wanted.value),
        offline=sum(1 for t in tiles if t.offline),
        alarming=sum(1 for t in tiles if t.alarms),
    )


@router.get("/ui/pumps/{serial}")
def pump_page(
    request: Request,
    serial: Annotated[str, Path(max_length=64)],
    access: DashboardUser,
    session: SessionDep,
    state: StateDep,
) -> Response:
    """One pump: channels, alarms, battery, event timeline and maintenance history."""
    pump = fleet.get_pump(session, access, serial)
    tile = next(t for t in pump_tiles(session, state, access, None) if t.serial == pump.serial)
    events: list[events_service.EventView] = []
    if access.principal.roles_in(pump.facility_id) & EVENT_READERS:
        events, _ = events_service.query_events(
            session,
            state.clock,
            Access(principal=access.principal, roles=EVENT_READERS),
            pump=serial,
            patient_id=None,
            order_id=None,
            event_type=None,
            since=None,
            until=None,
            limit=100,
            offset=0,
        )
    orders = None
    if access.principal.roles_in(pump.facility_id) & ORDER_READERS:
        orders = pump_orders(session, state.clock, access, serial)
    history: list[Any] = []
    faults: list[Any] = []
    maintainer = Access(principal=access.principal, roles=MAINTENANCE_ROLES)
    if maintainer.allows(pump.facility_id):
        records, _ = maintenance.list_records(
            session, maintainer, serial=serial, kind=None, limit=50, offset=0
        )
        history = [r for r, _ in records]
        found, _ = maintenance.list_faults(
            session, maintainer, serial=serial, status=None, limit=50, offset=0
        )
        faults = [f for f, _ in found]
    return render(
        request,
        "pump.html",
        principal=access.principal,
        active="dashboard",
        pump=pump,
        tile=tile,
        server_now_ms=int(state.clock.now().timestamp() * 1000),
        events=sorted(events, key=lambda e: e.seq, reverse=True),
        orders=orders,
        history=history,
        faults=faults,
        dumps=_short_json,
        can_report=bool(access.principal.roles_in(pump.facility_id) & FAULT_REPORTERS),
        categories=[c.value for c in FaultCategory],
    )


def _short_json(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return text if len(text) <= 240 else text[:237] + "..."


def _maintenance_page(
    request: Request,
    access: Access,
    session: Any,
    state: ServerState,
    *,
    error: tuple[str, str, str] | None = None,
    status_code: int = 200,
) -> Response:
    due = maintenance.due_list(session, state.clock, state.settings, access)
    faults, _ = maintenance.list_faults(session, access, serial=None, status=None, limit=MAX_ROWS, offset=0)
    records, _ = maintenance.list_records(session, access, serial=None, kind=None, limit=MAX_ROWS, offset=0)
    pumps, _ = fleet.list_pumps(
        session, access, facility_id=None, status=None, care_area=None, model=None, limit=MAX_ROWS, offset=0
    )
    return render(
        request,
        "maintenance.html",
        principal=access.principal,
        active="maintenance",
        due=due,
        faults=faults,
        cleaning=[(r, s) for r, s in records if r.kind == MaintenanceKind.CLEANING.value],
        records=records,
        batteries=sorted(
            pumps, key=lambda p: (p.battery_health_percent is None, p.battery_health_percent or 0)
        ),
        serials=sorted(p.serial for p in pumps),
        battery_minimum=state.settings.battery_health_min_percent,
        can_edit=bool(access.principal.has_any_role({Role.BIOMED})),
        work_kinds=[k.value for k in WORK_KINDS],
        results=[r.value for r in MaintenanceResult],
        categories=[c.value for c in FaultCategory],
        error=error,
        status_code=status_code,
    )


@router.get("/ui/maintenance")
def maintenance_page(
    request: Request, access: MaintenanceUser, session: SessionDep, state: StateDep
) -> Response:
    """Due and overdue preventive maintenance, battery health, faults, work records, and the forms."""
    return _maintenance_page(request, access, session, state)


def _choice(enum: type[_E], value: str, code: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        raise InvalidInputError(f"{value!r} is not a {enum.__name__}", code=code) from None


def _health(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 100:
        raise InvalidInputError(
            "battery health is a whole percentage 0-100", code="maintenance.battery_health_invalid"
        )
    return int(text)


@router.post("/ui/maintenance/records")
def record_work(
    request: Request,
    access: Biomed,
    _csrf: CsrfChecked,
    session: SessionDep,
    state: StateDep,
    serial: Annotated[str, Form(min_length=1, max_length=64)],
    kind: Annotated[str, Form(max_length=32)],
    result: Annotated[str, Form(max_length=16)] = MaintenanceResult.PASS.value,
    battery_health_percent: Annotated[str, Form(max_length=8)] = "",
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Record cleaning, a battery check (with its health), a tubing/set check, service or an inspection."""
    try:
        work = _choice(MaintenanceKind, kind, "maintenance.kind_invalid")
        if work not in WORK_KINDS:
            raise InvalidInputError(
                f"{kind} is recorded by the system, not here", code="maintenance.kind_invalid"
            )
        health = _health(battery_health_percent)
        if work is MaintenanceKind.BATTERY_CHECK and health is None:
            raise InvalidInputError(
                "a battery check needs the measured health", code="maintenance.battery_health"
            )
        maintenance.record_work(
            session,
            state.clock,
            state.settings,
            access,
            serial,
            kind=work,
            result=_choice(MaintenanceResult, result, "maintenance.result_invalid"),
            battery_health_percent=health,
            notes=notes.strip(),
        )
    except (InvalidInputError, NotFoundError) as refused:
        session.rollback()
        return _maintenance_page(
            request,
            access,
            session,
            state,
            error=("record", refused.message, refused.code),
            status_code=status_for(refused),
        )
    return RedirectResponse("/ui/maintenance#records", status_code=303)


@router.post("/ui/maintenance/faults")
def report_fault(
    request: Request,
    access: FaultReporter,
    _csrf: CsrfChecked,
    session: SessionDep,
    state: StateDep,
    serial: Annotated[str, Form(min_length=1, max_length=64)],
    category: Annotated[str, Form(max_length=32)],
    description: Annotated[str, Form(max_length=4000)] = "",
    back: Annotated[str, Form(max_length=16)] = "maintenance",
) -> Response:
    """Report a fault or damage (the pump is flagged for inspection); returns to the page it came from."""
    try:
        if not description.strip():
            raise InvalidInputError("describe what is wrong", code="maintenance.description_required")
        maintenance.report_fault(
            session,
            state.clock,
            access,
            serial,
            category=_choice(FaultCategory, category, "maintenance.category_invalid"),
            description=description.strip(),
        )
    except (InvalidInputError, NotFoundError) as refused:
        session.rollback()
        if back == "pump" or not access.principal.has_any_role(MAINTENANCE_ROLES):
            raise
        return _maintenance_page(
            request,
            access,
            session,
            state,
            error=("fault", refused.message, refused.code),
            status_code=status_for(refused),
        )
    target = f"/ui/pumps/{quote(serial, safe='')}" if back == "pump" else "/ui/maintenance#faults"
    return RedirectResponse(target, status_code=303)


@router.get("/ui/audit")
def audit_page(
    request: Request,
    access: Auditor,
    session: SessionDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=160)] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """The audit log newest first, filtered by text the actor, the action or the target contains
    (case-insensitive); details shown as key: value lines."""
    records, total = audit_repo.list_records(
        session,
        facility_ids=access.scope,
        action=None,
        actor=None,
        since=None,
        until=None,
        limit=100,
        offset=offset,
        actor_contains=actor or None,
        action_contains=action or None,
        target_contains=target or None,
        newest_first=True,
    )
    return render(
        request,
        "audit.html",
        principal=access.principal,
        active="audit",
        records=records,
        total=total,
        offset=offset,
        action=action or "",
        actor=actor or "",
        target=target or "",
        details={r.seq: detail_lines(r.details) for r in records},
    )
