"""Connected fleet: deployments (staged rollout of libraries, software and configurations), software packages,
signed commands, link state and gaps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, UploadFile, status
from pydantic import Field
from sqlalchemy import select

from smartpump.server.api.deps import MAX_ID, SessionDep, StateDep, require_roles
from smartpump.server.api.schemas import Request, Response
from smartpump.server.auth import ALL_ROLES, Access, Role
from smartpump.server.db.models import Pump
from smartpump.server.db.models_fleet_ops import PumpLink, SeqGap
from smartpump.server.errors import AccessDeniedError
from smartpump.server.services import commands, deployment, fleet, fleet_view, software_packages
from smartpump.server.services.deployment import DeploymentKind, TargetKind
from smartpump.server.vocabulary import PackageStatus
from smartpump.transport.commands import INSTALL_CONFIGURATION, INSTALL_TRUST

router = APIRouter(tags=["fleet"])
Reader = Annotated[Access, require_roles(*ALL_ROLES)]
Deployer = Annotated[Access, require_roles(Role.BIOMED, Role.PHARMACY_APPROVER)]
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
PackageApprover = Annotated[Access, require_roles(Role.BIOMED, Role.ADMIN)]
PackageId = Annotated[int, Path(ge=1, le=MAX_ID)]
Commander = Annotated[Access, require_roles(Role.BIOMED, Role.NURSE)]
Serial = Annotated[str, Path(max_length=64)]
DeploymentId = Annotated[int, Path(ge=1, le=MAX_ID)]


class DeploymentCreate(Request):
    """What to offer to which pumps, and how to stage it (a configuration: biomed only)."""

    facility_id: int = Field(ge=1, le=MAX_ID)
    kind: DeploymentKind = DeploymentKind.LIBRARY
    library_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    package_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    configuration_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    target_kind: TargetKind
    target_value: str | None = Field(default=None, max_length=64)
    waves: list[int] = Field(default=[100], min_length=1, max_length=10)
    pause_s: int = Field(default=600, ge=0, le=7 * 24 * 3600)


class TargetOut(Response):
    """One pump's progress in a deployment (``reason``: why an accepted pump has not activated yet;
    ``activates_at``: when it is expected to, None when a busy channel has no end)."""

    pump: str
    wave: int
    state: str
    code: str | None
    reason: str | None
    activates_at: datetime | None = None


class DeploymentOut(Response):
    """A deployment and its progress."""

    id: int
    facility_id: int
    kind: str
    library_version: int | None
    software_version: str | None
    configuration_version: int | None
    target_kind: str
    target_value: str | None
    waves: list[int]
    pause_s: int
    status: str
    current_wave: int
    counts: dict[str, int]
    targets: list[TargetOut]


class PackageOut(Response):
    """A software package: the SHA-256 and size the server computed from the uploaded artefact, who uploaded
    it and, once a second person approved it, who (it is then signed and deployable)."""

    id: int
    model: str
    version: str
    sha256: str
    size_bytes: int | None
    status: PackageStatus
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None


class CommandCreate(Request):
    """A command for one pump: ``install_library`` or ``offer_program`` (args: the order's program)."""

    command: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)
    expires_in_s: int = Field(default=600, ge=1, le=7 * 24 * 3600)


class CommandOut(Response):
    """A signed command and what became of it."""

    id: int
    pump: str
    command: str
    nonce: str
    counter: int
    status: str
    issued_at: datetime
    expires_at: datetime
    issued_by: str
    result_code: str | None
    result_reason: str | None


class LinkOut(Response):
    """A pump's link: online (status / last will), presence (``services.presence``: online, idle, silent,
    offline), last seen (``silent``: not reachable by the presence rule), highest seq stored, open gaps,
    events with a skewed clock."""

    pump: str
    online: bool
    presence: str
    last_seen: datetime | None
    silent: bool
    max_seq: int
    open_gaps: int
    missing_events: int
    skewed_events: int


class GapOut(Response):
    """A run of seqs the server has not received (explained: shed by the pump on purpose)."""

    pump: str
    first_seq: int
    last_seq: int
    missing: int
    explained: bool
    detected_at: datetime


class SoftwareCurrencyOut(Response):
    """Per model: the latest package version, pumps per installed version, pumps not on it."""

    model: str
    latest_version: str | None
    pumps_by_version: dict[str, int]
    outdated_serials: list[str]


def _out(view: deployment.DeploymentView) -> DeploymentOut:
    return DeploymentOut(
        id=view.id,
        facility_id=view.facility_id,
        kind=view.kind,
        library_version=view.library_version,
        software_version=view.software_version,
        configuration_version=view.configuration_version,
        target_kind=view.target_kind,
        target_value=view.target_value,
        waves=list(view.waves),
        pause_s=view.pause_s,
        status=view.status,
        current_wave=view.current_wave,
        counts=view.counts,
        targets=[
            TargetOut(
                pump=t.pump,
                wave=t.wave,
                state=t.state,
                code=t.code,
                reason=t.reason,
                activates_at=t.activates_at,
            )
            for t in view.targets
        ],
    )


@router.post("/deployments", status_code=status.HTTP_201_CREATED)
def create_deployment(
    body: DeploymentCreate, access: Deployer, session: SessionDep, state: StateDep
) -> DeploymentOut:
    """Offer a released library, a software package or a released configuration to a pump or a group, in
    waves; a configuration only by biomedical engineering (403 ``deployment.configuration_role``)."""
    return _out(
        deployment.create_deployment(
            session,
            state,
            access,
            facility_id=body.facility_id,
            kind=body.kind,
            library_id=body.library_id,
            package_id=body.package_id,
            target_kind=body.target_kind,
            target_value=body.target_value,
            waves=body.waves,
            pause_s=body.pause_s,
            configuration_id=body.configuration_id,
        )
    )


@router.get("/deployments")
def list_deployments(access: Reader, session: SessionDep) -> list[DeploymentOut]:
    """Recent deployments of the caller's facilities."""
    return [_out(v) for v in deployment.list_deployments(session, access)]


@router.get("/deployments/{deployment_id}")
def get_deployment(deployment_id: DeploymentId, access: Reader, session: SessionDep) -> DeploymentOut:
    """One deployment with every pump's progress."""
    return _out(deployment.view(session, access, deployment_id))


@router.post("/software-packages", status_code=status.HTTP_201_CREATED)
def create_package(
    access: Biomed,
    session: SessionDep,
    state: StateDep,
    model: Annotated[str, Form(min_length=1, max_length=64)],
    version: Annotated[str, Form(min_length=1, max_length=32)],
    artefact: Annotated[UploadFile, File(description="the software image; the server computes its SHA-256")],
) -> PackageOut:
    """Upload a pump software artefact (multipart: model, version, artefact); it waits for a second person's
    approval before it is signed (a version not above the model's latest is refused)."""
    row = software_packages.register_package(
        session, state, access, model=model, version=version, artefact=artefact.file.read()
    )
    return PackageOut.model_validate(row)


@router.post("/software-packages/{package_id}/approve")
def approve_package(
    package_id: PackageId, access: PackageApprover, session: SessionDep, state: StateDep
) -> PackageOut:
    """Approve and sign a package as a second person: another biomedical engineer or an admin, never its
    uploader (``software.separation_of_duties``)."""
    return PackageOut.model_validate(software_packages.approve_package(session, state, access, package_id))


@router.get("/software-packages")
def list_packages(access: Reader, session: SessionDep) -> list[PackageOut]:
    """Every software package with its status."""
    return [PackageOut.model_validate(row) for row in software_packages.list_packages(session)]


@router.get("/fleet/software-currency")
def software_currency(access: Reader, session: SessionDep) -> list[SoftwareCurrencyOut]:
    """Software version currency per pump model."""
    return [
        SoftwareCurrencyOut(
            model=c.model,
            latest_version=c.latest_version,
            pumps_by_version=c.pumps_by_version,
            outdated_serials=list(c.outdated_serials),
        )
        for c in deployment.software_currency(session, access)
    ]


@router.post("/pumps/{serial}/commands", status_code=status.HTTP_201_CREATED)
def issue_command(
    serial: Serial, body: CommandCreate, access: Commander, session: SessionDep, state: StateDep
) -> CommandOut:
    """Sign and queue a command for one pump (it verifies it and answers; delivery still needs the nurse);
    ``configuration.install`` is for biomedical engineering only; a trust list reaches pumps only through
    ``POST /keys/publish`` (its facility's admin), never relayed here (403 ``command.trust_via_publish``)."""
    pump = fleet.get_pump(session, access, serial)
    if body.command == INSTALL_TRUST:
        raise AccessDeniedError(
            "a trust list is published to a facility's pumps with POST /api/v1/keys/publish (its admin)",
            code="command.trust_via_publish",
        )
    if commands.ALIASES.get(body.command, body.command) == INSTALL_CONFIGURATION:
        commands.require_configuration_role(
            session,
            state,
            access,
            pump.facility_id,
            action="command.issued",
            object_type="pump",
            object_id=serial,
            code="command.configuration_role",
        )
    record = commands.issue_command(
        session,
        state,
        pump_serial=serial,
        command=body.command,
        args=body.args,
        actor=access.principal.username,
        expires_in_s=body.expires_in_s,
    )
    return CommandOut.model_validate(record)


@router.get("/pumps/{serial}/commands")
def list_commands(serial: Serial, access: Reader, session: SessionDep) -> list[CommandOut]:
    """The latest commands of one pump."""
    pump = fleet.get_pump(session, access, serial)
    return [CommandOut.model_validate(c) for c in commands.list_commands(session, pump)]


@router.get("/fleet/links")
def links(access: Reader, session: SessionDep, state: StateDep) -> list[LinkOut]:
    """Link state of every visible pump: online, last seen, highest seq stored, gaps, clock skew."""
    query = select(Pump, PumpLink).outerjoin(PumpLink, PumpLink.pump_id == Pump.id).order_by(Pump.serial)
    if access.scope is not None:
        query = query.where(Pump.facility_id.in_(access.scope))
    gaps: dict[int, list[SeqGap]] = {}
    for gap in session.scalars(select(SeqGap)):
        gaps.setdefault(gap.pump_id, []).append(gap)
    rows = session.execute(query).all()
    presence = fleet_view.presence_by_pump(
        session, [pump for pump, _ in rows], state.clock.now(), state.settings.offline_after_s
    )
    result = []
    for pump, link in rows:
        open_gaps = [g for g in gaps.get(pump.id, []) if not g.explained]
        result.append(
            LinkOut(
                pump=pump.serial,
                online=bool(link is not None and link.online),
                presence=presence[pump.id].value,
                last_seen=pump.last_seen,
                silent=not presence[pump.id].reachable,
                max_seq=0 if link is None else link.max_seq,
                open_gaps=len(open_gaps),
                missing_events=sum(g.missing for g in open_gaps),
                skewed_events=0 if link is None else link.skewed_events,
            )
        )
    return result


@router.get("/fleet/gaps")
def list_gaps(access: Reader, session: SessionDep) -> list[GapOut]:
    """Every seq gap of the visible pumps, open or explained."""
    query = (
        select(SeqGap, Pump.serial)
        .join(Pump, Pump.id == SeqGap.pump_id)
        .order_by(Pump.serial, SeqGap.first_seq)
    )
    if access.scope is not None:
        query = query.where(Pump.facility_id.in_(access.scope))
    return [
        GapOut(
            pump=serial,
            first_seq=gap.first_seq,
            last_seq=gap.last_seq,
            missing=gap.missing,
            explained=gap.explained,
            detected_at=gap.detected_at,
        )
        for gap, serial in session.execute(query).all()
    ]
