"""Staged rollout of released libraries, signed software packages and released pump configurations to a
pump or a group of pumps.

A deployment splits its target pumps into waves (cumulative percentages, the last one 100); each wave
is offered as signed commands; the next starts once every pump offered so far has answered and
``pause_s`` has passed, and a refusal halts the rollout. Each pump's progress: pending -> offered ->
accepted -> activated, or refused (with the code). An accepted target is activated only by its pump's
activation event (``library.activated``, ``configuration.activated``, ``software.activated``), which the
pump emits once every channel is idle; until then the view says how many channels the server sees busy.
Software packages are Ed25519-signed over (model, version, sha256) in the pump's own format
(``smartpump.pump.software``); pumps refuse a downgrade. A configuration goes only to pumps of its model,
and only biomedical engineering deploys one.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.library.model import LibraryStatus
from smartpump.library.signing import SignedLibrary
from smartpump.pump.channel import ChannelState as PumpChannelState
from smartpump.pump.configuration import SignedConfiguration
from smartpump.pump.events import EventType
from smartpump.pump.software import SignedPackage, is_version, version_key
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models import ChannelState, LibraryVersion, Pump
from smartpump.server.db.models_fleet_ops import (
    ConfigurationVersion,
    Deployment,
    DeploymentTarget,
    PumpCommand,
    SoftwarePackage,
)
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.repositories import libraries as libraries_repo
from smartpump.server.db.unit_of_work import after_commit
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.services import commands, fleet
from smartpump.server.services.context import DeploymentContext
from smartpump.server.vocabulary import ConfigurationStatus, DeploymentStatus, PackageStatus
from smartpump.transport.commands import (
    INSTALL_CONFIGURATION,
    INSTALL_SOFTWARE,
    install_configuration_args,
    install_library_args,
    install_software_args,
)
from smartpump.transport.messages import EventRecord

COMMAND_EXPIRY_S: Final = 24 * 3600


class DeploymentKind(StrEnum):
    """What is offered."""

    LIBRARY = "library"
    SOFTWARE = "software"
    CONFIGURATION = "configuration"


class TargetKind(StrEnum):
    """Which pumps of the facility: one pump, a care area, a model, or all."""

    PUMP = "pump"
    CARE_AREA = "care_area"
    MODEL = "model"
    ALL = "all"


class Progress(StrEnum):
    """Where one pump is in a deployment."""

    PENDING = "pending"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ACTIVATED = "activated"
    REFUSED = "refused"


TERMINAL: Final = frozenset({Progress.ACTIVATED.value, Progress.REFUSED.value})


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetView:
    """One pump's progress; ``reason`` says why an accepted target is not activated yet and
    ``activates_at`` when it is expected to: when the last of its busy channels ends, from the time left
    its heartbeat reported (None when one has no end: a continuous infusion, a pause, a held program)."""

    pump: str
    wave: int
    state: str
    code: str | None
    reason: str | None = None
    activates_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentView:
    """A deployment with its counts per progress state and every pump's progress."""

    id: int
    facility_id: int
    kind: str
    library_version: int | None
    software_version: str | None
    configuration_version: int | None
    target_kind: str
    target_value: str | None
    waves: tuple[int, ...]
    pause_s: int
    status: str
    current_wave: int
    counts: dict[str, int]
    targets: tuple[TargetView, ...]


def create_deployment(
    session: Session,
    state: DeploymentContext,
    access: Access,
    *,
    facility_id: int,
    kind: DeploymentKind,
    library_id: int | None,
    package_id: int | None,
    target_kind: TargetKind,
    target_value: str | None,
    waves: Sequence[int],
    pause_s: int,
    configuration_id: int | None = None,
) -> DeploymentView:
    """Plan a deployment: pick the target pumps, split them into waves, launch the first wave now."""
    if not access.allows(facility_id):
        raise AccessDeniedError("you cannot deploy in this facility", code="deployment.forbidden")
    _check_waves(waves)
    library: LibraryVersion | None = None
    package: SoftwarePackage | None = None
    configuration: ConfigurationVersion | None = None
    if kind is DeploymentKind.LIBRARY:
        library = session.get(LibraryVersion, library_id) if library_id is not None else None
        if library is None or library.facility_id != facility_id:
            raise NotFoundError(f"no library {library_id} in this facility", code="library.not_found")
        if library.status != LibraryStatus.RELEASED.value or library.signed_document is None:
            raise ConflictError("only the released library can be deployed", code="library.not_released")
    elif kind is DeploymentKind.CONFIGURATION:
        configuration = _deployable_configuration(session, state, access, facility_id, configuration_id)
    else:
        package = session.get(SoftwarePackage, package_id) if package_id is not None else None
        if package is None:
            raise NotFoundError(f"no software package {package_id}", code="software.not_found")
        if package.status != PackageStatus.APPROVED.value or package.signed is None:
            raise ConflictError(
                f"software {package.model} {package.version} is not approved: a second person approves a "
                "package before it can be deployed",
                code="software.not_approved",
            )
    if (target_value is None) != (target_kind is TargetKind.ALL):
        raise InvalidInputError("target_value is required unless the target is all", code="deployment.target")
    model = (
        package.model if package is not None else configuration.model if configuration is not None else None
    )
    pumps = _targets(session, facility_id, target_kind, target_value, model)
    if not pumps:
        raise InvalidInputError("no pump matches the target", code="deployment.no_pumps")
    running: frozenset[int] = frozenset()
    if library is not None:
        running = _running_release(session, library, pumps)
    now = state.clock.now()
    row = Deployment(
        facility_id=facility_id,
        kind=kind.value,
        library_version_id=None if library is None else library.id,
        package_id=None if package is None else package.id,
        configuration_id=None if configuration is None else configuration.id,
        target_kind=target_kind.value,
        target_value=target_value,
        waves=json.dumps(list(waves)),
        pause_s=pause_s,
        status="active",
        current_wave=0,
        next_wave_at=now,
        created_by=access.principal.username,
        created_at=now,
    )
    session.add(row)
    session.flush()
    for index, pump in enumerate(pumps):
        wave = next(i + 1 for i, pct in enumerate(waves) if index < math.ceil(len(pumps) * pct / 100))
        progress = Progress.ACTIVATED if pump.id in running else Progress.PENDING
        session.add(
            DeploymentTarget(
                deployment_id=row.id, pump_id=pump.id, wave=wave, state=progress.value, updated_at=now
            )
        )
    audit.append(
        session,
        state.clock,
        actor=access.principal.username,
        action="deployment.created",
        object_type="deployment",
        object_id=row.id,
        facility_id=facility_id,
        details={
            "kind": kind.value,
            "library_version": None if library is None else library.version,
            "software": None if package is None else f"{package.model}:{package.version}",
            "configuration": None
            if configuration is None
            else f"{configuration.model}:{configuration.version}",
            "target": f"{target_kind.value}:{target_value}",
            "pumps": len(pumps),
            "already_running": len(running),
            "waves": list(waves),
        },
    )
    advance(session, state)
    return view(session, access, row.id)


def _running_release(session: Session, library: LibraryVersion, pumps: Sequence[Pump]) -> frozenset[int]:
    """The target pumps already running the release's content (nothing to offer them).

    Raises:
        ConflictError: ``deployment.same_version`` when a pump runs other content under the release's
            version number: the pump would refuse it as a rollback, so it must be released as a new version.
    """
    digest = fleet.released_sha256(library)
    other = [
        p.serial
        for p in pumps
        if p.installed_library_version == library.version and p.library_sha256 != digest
    ]
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        next_version = libraries_repo.highest_version(session, library.facility_id) + 1
        raise ConflictError(
            f"same version, different content: release as v{next_version} "
            f"({shown} run{'s' if len(other) == 1 else ''} another library numbered v{library.version})",
            code="deployment.same_version",
        )
    return frozenset(p.id for p in pumps if digest is not None and p.library_sha256 == digest)


def _deployable_configuration(
    session: Session, state: DeploymentContext, access: Access, facility_id: int, configuration_id: int | None
) -> ConfigurationVersion:
    """A released configuration of the facility, deployed by biomedical engineering only (audited)."""
    commands.require_configuration_role(
        session,
        state,
        access,
        facility_id,
        action="deployment.created",
        object_type="deployment",
        object_id=None,
        code="deployment.configuration_role",
    )
    row = session.get(ConfigurationVersion, configuration_id) if configuration_id is not None else None
    if row is None or row.facility_id != facility_id:
        raise NotFoundError(
            f"no configuration {configuration_id} in this facility", code="configuration.not_found"
        )
    if row.status != ConfigurationStatus.RELEASED.value or row.signed_document is None:
        raise ConflictError(
            "only a released configuration can be deployed", code="configuration.not_released"
        )
    return row


def _check_waves(waves: Sequence[int]) -> None:
    if not waves or waves[-1] != 100 or any(not 0 < w <= 100 for w in waves):
        raise InvalidInputError("waves are percentages in (0, 100] ending with 100", code="deployment.waves")
    if any(b <= a for a, b in itertools.pairwise(waves)):
        raise InvalidInputError("waves must increase", code="deployment.waves")


def _targets(
    session: Session, facility_id: int, kind: TargetKind, value: str | None, model: str | None
) -> list[Pump]:
    pumps = list(fleet_repo.all_pumps(session, facility_ids=frozenset({facility_id})))
    if kind is TargetKind.PUMP:
        pumps = [p for p in pumps if p.serial == value]
    elif kind is TargetKind.CARE_AREA:
        pumps = [p for p in pumps if p.care_area == value]
    elif kind is TargetKind.MODEL:
        pumps = [p for p in pumps if p.model == value]
    if model is not None:
        pumps = [p for p in pumps if p.model == model]
    return sorted(pumps, key=lambda p: p.serial)


def advance(session: Session, state: DeploymentContext) -> int:
    """Launch every wave that is due (halting a deployment with a refusal); returns commands issued."""
    now = state.clock.now()
    issued = 0
    due = session.scalars(
        select(Deployment).where(Deployment.status == "active", Deployment.next_wave_at <= now)
    ).all()
    for row in due:
        waves: list[int] = json.loads(row.waves)
        targets = session.scalars(
            select(DeploymentTarget).where(DeploymentTarget.deployment_id == row.id)
        ).all()
        launched = [t for t in targets if t.wave <= row.current_wave]
        if any(t.state == Progress.REFUSED.value for t in launched):
            row.status = DeploymentStatus.HALTED
            row.next_wave_at = None
            _progress(session, state, row, targets)
            continue
        if any(t.state == Progress.OFFERED.value for t in launched):
            continue
        if row.current_wave >= len(waves):
            row.next_wave_at = None
            continue
        row.current_wave += 1
        row.next_wave_at = now + timedelta(seconds=row.pause_s) if row.current_wave < len(waves) else None
        args, command = _offer(session, row)
        for target in [t for t in targets if t.wave == row.current_wave and t.state not in TERMINAL]:
            pump = fleet_repo.pump_by_id(session, target.pump_id)
            if pump is None:
                continue
            commands.issue_command(
                session,
                state,
                pump_serial=pump.serial,
                command=command,
                args=args,
                actor=row.created_by,
                expires_in_s=COMMAND_EXPIRY_S,
                deployment_target_id=target.id,
            )
            target.state = Progress.OFFERED.value
            target.updated_at = now
            issued += 1
        _finish_if_done(session, state, row)
    return issued


def has_pending_waves(session: Session) -> bool:
    """Whether an active deployment still has a wave to launch."""
    return (
        session.scalars(
            select(Deployment.id)
            .where(Deployment.status == "active", Deployment.next_wave_at.is_not(None))
            .limit(1)
        ).first()
        is not None
    )


def _offer(session: Session, row: Deployment) -> tuple[dict[str, object], str]:
    if row.kind == DeploymentKind.LIBRARY.value:
        library = session.get(LibraryVersion, row.library_version_id)
        assert library is not None and library.signed_document is not None
        return dict(install_library_args(SignedLibrary.from_json(library.signed_document))), "library.install"
    if row.kind == DeploymentKind.CONFIGURATION.value:
        configuration = session.get(ConfigurationVersion, row.configuration_id)
        assert configuration is not None and configuration.signed_document is not None
        signed = SignedConfiguration.from_json(configuration.signed_document)
        return dict(install_configuration_args(signed)), INSTALL_CONFIGURATION
    package = session.get(SoftwarePackage, row.package_id)
    assert package is not None and package.signed is not None
    return install_software_args(SignedPackage.from_document(json.loads(package.signed))), INSTALL_SOFTWARE


def on_command_result(session: Session, state: DeploymentContext, command: PumpCommand) -> None:
    """Move a deployment target along after its pump accepted or refused (or the command expired)."""
    target = session.get(DeploymentTarget, command.deployment_target_id)
    if target is None or target.state in TERMINAL:
        return
    row = session.get(Deployment, target.deployment_id)
    assert row is not None
    now = state.clock.now()
    if command.status == "accepted":
        target.state = Progress.ACCEPTED.value
        if row.kind == DeploymentKind.CONFIGURATION.value:
            pump = fleet_repo.pump_by_id(session, target.pump_id)
            configuration = session.get(ConfigurationVersion, row.configuration_id)
            if (
                pump is not None
                and configuration is not None
                and pump.configuration_version == configuration.version
            ):
                target.state = Progress.ACTIVATED.value
        elif row.kind == DeploymentKind.LIBRARY.value:
            pump = fleet_repo.pump_by_id(session, target.pump_id)
            library = session.get(LibraryVersion, row.library_version_id)
            if (
                pump is not None
                and library is not None
                and pump.library_sha256 is not None
                and pump.library_sha256 == fleet.released_sha256(library)
            ):
                target.state = Progress.ACTIVATED.value
        else:
            pump = fleet_repo.pump_by_id(session, target.pump_id)
            package = session.get(SoftwarePackage, row.package_id)
            if pump is not None and package is not None and pump.firmware == package.version:
                target.state = Progress.ACTIVATED.value
    else:
        target.state = Progress.REFUSED.value
        target.code = command.result_code
    target.updated_at = now
    _finish_if_done(session, state, row)


def on_events(
    session: Session, state: DeploymentContext, pump_id: int, records: Sequence[EventRecord]
) -> None:
    """A pump activated a library, a configuration or a software version: mark it activated in the
    deployments of that version (a software package is never activated by the command's acceptance)."""
    query = select(DeploymentTarget, Deployment).join(
        Deployment, Deployment.id == DeploymentTarget.deployment_id
    )
    rows: list[tuple[DeploymentTarget, Deployment]] = []
    libraries = _activated(records, EventType.LIBRARY_ACTIVATED)
    if libraries:
        hashes = _activated_hashes(records)
        for target, row, library in session.execute(
            select(DeploymentTarget, Deployment, LibraryVersion)
            .join(Deployment, Deployment.id == DeploymentTarget.deployment_id)
            .join(LibraryVersion, LibraryVersion.id == Deployment.library_version_id)
            .where(DeploymentTarget.pump_id == pump_id, LibraryVersion.version.in_(libraries))
        ).all():
            if library.version not in hashes or fleet.released_sha256(library) in hashes[library.version]:
                rows.append((target, row))
    configurations = _activated(records, EventType.CONFIGURATION_ACTIVATED)
    if configurations:
        rows += session.execute(
            query.join(ConfigurationVersion, ConfigurationVersion.id == Deployment.configuration_id).where(
                DeploymentTarget.pump_id == pump_id, ConfigurationVersion.version.in_(configurations)
            )
        ).all()
    software = software_activated(records)
    if software:
        rows += session.execute(
            query.join(SoftwarePackage, SoftwarePackage.id == Deployment.package_id)
            .join(Pump, Pump.id == DeploymentTarget.pump_id)
            .where(
                DeploymentTarget.pump_id == pump_id,
                SoftwarePackage.model == Pump.model,
                SoftwarePackage.version.in_(software),
            )
        ).all()
    if not rows:
        return
    for target, row in rows:
        if target.state not in TERMINAL:
            target.state = Progress.ACTIVATED.value
            target.updated_at = state.clock.now()
            _finish_if_done(session, state, row)


def _activated(records: Sequence[EventRecord], event_type: EventType) -> set[int]:
    return {
        int(r.data["version"])
        for r in records
        if r.type == event_type.value and isinstance(r.data.get("version"), int)
    }


def _activated_hashes(records: Sequence[EventRecord]) -> dict[int, set[str]]:
    """Per activated library version, the content hashes the pump reported for it (a pump that reports
    none is matched by version alone)."""
    hashes: dict[int, set[str]] = {}
    for r in records:
        if (
            r.type == EventType.LIBRARY_ACTIVATED.value
            and isinstance(r.data.get("version"), int)
            and isinstance(r.data.get("sha256"), str)
        ):
            hashes.setdefault(int(r.data["version"]), set()).add(str(r.data["sha256"]))
    return hashes


def software_activated(records: Sequence[EventRecord]) -> list[str]:
    """The software versions a pump reports activated in these events, in order."""
    return [
        str(r.data["version"])
        for r in records
        if r.type == EventType.SOFTWARE_ACTIVATED.value
        and isinstance(r.data.get("version"), str)
        and is_version(str(r.data["version"]))
    ]


def _finish_if_done(session: Session, state: DeploymentContext, row: Deployment) -> None:
    targets = session.scalars(select(DeploymentTarget).where(DeploymentTarget.deployment_id == row.id)).all()
    waves: list[int] = json.loads(row.waves)
    if (
        row.status == "active"
        and row.current_wave >= len(waves)
        and all(t.state in TERMINAL for t in targets)
    ):
        refused = any(t.state == Progress.REFUSED.value for t in targets)
        row.status = DeploymentStatus.HALTED if refused else DeploymentStatus.COMPLETED
    _progress(session, state, row, targets)


def _progress(
    session: Session, state: DeploymentContext, row: Deployment, targets: Sequence[DeploymentTarget]
) -> None:
    """Publish the deployment's progress as it stands now, once the unit of work commits."""
    counts = Counter(t.state for t in targets)
    payload: dict[str, object] = {"deployment": row.id, "status": row.status, "wave": row.current_wave}
    payload.update(dict(counts))
    facility_id = row.facility_id
    after_commit(session, lambda: state.live.publish(facility_id, "deployment.progress", payload))


def view(session: Session, access: Access, deployment_id: int) -> DeploymentView:
    """A deployment the caller may see, with every pump's progress."""
    row = session.get(Deployment, deployment_id)
    if row is None or not access.allows(row.facility_id):
        raise NotFoundError(f"no deployment {deployment_id}", code="deployment.not_found")
    rows = session.execute(
        select(DeploymentTarget, Pump.serial)
        .join(Pump, Pump.id == DeploymentTarget.pump_id)
        .where(DeploymentTarget.deployment_id == row.id)
        .order_by(Pump.serial)
    ).all()
    library = session.get(LibraryVersion, row.library_version_id) if row.library_version_id else None
    package = session.get(SoftwarePackage, row.package_id) if row.package_id else None
    configuration = session.get(ConfigurationVersion, row.configuration_id) if row.configuration_id else None
    counts = Counter(target.state for target, _ in rows)
    busy = _busy_channels(session, [t.pump_id for t, _ in rows if t.state == Progress.ACCEPTED.value])
    return DeploymentView(
        id=row.id,
        facility_id=row.facility_id,
        kind=row.kind,
        library_version=None if library is None else library.version,
        software_version=None if package is None else package.version,
        configuration_version=None if configuration is None else configuration.version,
        target_kind=row.target_kind,
        target_value=row.target_value,
        waves=tuple(json.loads(row.waves)),
        pause_s=row.pause_s,
        status=row.status,
        current_wave=row.current_wave,
        counts={p.value: counts.get(p.value, 0) for p in Progress},
        targets=tuple(
            TargetView(
                pump=serial,
                wave=t.wave,
                state=t.state,
                code=t.code,
                reason=busy[t.pump_id].reason if t.pump_id in busy else None,
                activates_at=busy[t.pump_id].ends_at if t.pump_id in busy else None,
            )
            for t, serial in rows
        ),
    )


def waiting_reason(infusing: int, programmed: int = 0) -> str:
    """Why a pump holds an installed version without activating it: it activates once every channel is
    idle; ``infusing`` channels hold a therapy (running, paused, complete, KVO), ``programmed`` ones a
    program not started, as the server last saw them."""

    def channels(count: int) -> str:
        return f"{count} {'channel' if count == 1 else 'channels'}"

    if infusing > 0 and programmed > 0:
        return f"waiting for {channels(infusing)} infusing and {channels(programmed)} programmed"
    if infusing > 0:
        return f"waiting for {infusing} infusing channel{'s' if infusing != 1 else ''}"
    if programmed > 0:
        return f"waiting for {channels(programmed)} programmed, to start or be cleared"
    return "waiting for idle channels"


@dataclass(frozen=True, slots=True)
class Busy:
    """A pump's channels holding a therapy or a program, and when the last of them ends (None: one has
    no end)."""

    infusing: int
    programmed: int
    ends_at: datetime | None

    @property
    def reason(self) -> str:
        """Why the pump has not activated yet (``waiting_reason``)."""
        return waiting_reason(self.infusing, self.programmed)


def _busy_channels(session: Session, pump_ids: Sequence[int]) -> dict[int, Busy]:
    """Per pump waiting to activate: its channels the server last saw holding a therapy (any state but
    idle) and when the last one ends, from each running channel's heartbeat time left."""
    ends: dict[int, list[datetime | None]] = {pump_id: [] for pump_id in pump_ids}
    programmed: dict[int, int] = dict.fromkeys(pump_ids, 0)
    rows = session.scalars(
        select(ChannelState).where(
            ChannelState.pump_id.in_(pump_ids), ChannelState.state != PumpChannelState.IDLE
        )
    )
    for row in rows:
        if row.state == PumpChannelState.PROGRAMMED:
            programmed[row.pump_id] += 1
        ends[row.pump_id].append(channel_end(row))
    found: dict[int, Busy] = {}
    for pump_id, channel_ends in ends.items():
        known = [end for end in channel_ends if end is not None]
        last = max(known) if known and len(known) == len(channel_ends) else None
        infusing = len(channel_ends) - programmed[pump_id]
        found[pump_id] = Busy(infusing=infusing, programmed=programmed[pump_id], ends_at=last)
    return found


def channel_end(row: ChannelState) -> datetime | None:
    """When a running channel's infusion ends by itself: its heartbeat's report time plus the time left
    it reported; None for any other state or without a heartbeat since the channel changed."""
    if row.state != PumpChannelState.RUNNING or row.reported_at is None or row.remaining_min is None:
        return None
    return row.reported_at + timedelta(minutes=float(row.remaining_min))


def list_deployments(
    session: Session, access: Access, *, limit: int = 100, configuration_id: int | None = None
) -> list[DeploymentView]:
    """Recent deployments in the caller's facilities (optionally those of one configuration), newest first."""
    query = select(Deployment.id).order_by(Deployment.id.desc()).limit(limit)
    if access.scope is not None:
        query = query.where(Deployment.facility_id.in_(access.scope))
    if configuration_id is not None:
        query = query.where(Deployment.configuration_id == configuration_id)
    return [view(session, access, i) for i in session.scalars(query)]


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftwareCurrency:
    """Per model: the latest registered version, pump count per firmware, pumps not on the latest."""

    model: str
    latest_version: str | None
    pumps_by_version: dict[str, int]
    outdated_serials: tuple[str, ...]


def software_currency(session: Session, access: Access) -> list[SoftwareCurrency]:
    """Software version currency per pump model in the caller's facilities."""
    pumps = fleet_repo.all_pumps(session, facility_ids=access.scope)
    latest: dict[str, str] = {}
    approved = select(SoftwarePackage).where(SoftwarePackage.status == PackageStatus.APPROVED.value)
    for package in session.scalars(approved):
        if package.model not in latest or version_key(package.version) > version_key(latest[package.model]):
            latest[package.model] = package.version
    result = []
    for model in sorted({p.model for p in pumps} | set(latest)):
        of_model = [p for p in pumps if p.model == model]
        counts = Counter(p.firmware for p in of_model)
        newest = latest.get(model)
        result.append(
            SoftwareCurrency(
                model=model,
                latest_version=newest,
                pumps_by_version=dict(sorted(counts.items())),
                outdated_serials=tuple(
                    sorted(p.serial for p in of_model if newest is not None and p.firmware != newest)
                ),
            )
        )
    return result
