"""Signed commands to one pump: issue (sign, queue, audit), dispatch over the link, record the result.

None of these commits (ADR 0008): the route, the CLI command or the worker's step does; the outbound sender
is woken only after that commit (``after_commit``), and the worker dispatches one command per unit of work.
Every command is Ed25519-signed with the server key and bound to the pump, an expiry, a random nonce
and a per-pump counter (``transport.commands``); the pump refuses anything else (SEC-CMD-01/02).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartpump.errors import SignatureError
from smartpump.library.keys import KeyPurpose
from smartpump.server import audit
from smartpump.server.auth import Access, Role
from smartpump.server.db.models import Pump
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.unit_of_work import after_commit, in_own_transaction
from smartpump.server.errors import AccessDeniedError, InvalidInputError, NotFoundError
from smartpump.server.services.context import CommandContext, DeploymentContext
from smartpump.server.vocabulary import CommandStatus
from smartpump.transport.commands import (
    ASSOCIATE_PATIENT,
    INSTALL_CONFIGURATION,
    INSTALL_LIBRARY,
    INSTALL_SOFTWARE,
    INSTALL_TRUST,
    OFFER_PROGRAM,
    sign_command,
)
from smartpump.transport.messages import Envelope, command_message
from smartpump.transport.offers import OfferError, read_offer

ALIASES: Final = {
    "install_library": INSTALL_LIBRARY,
    "install_configuration": INSTALL_CONFIGURATION,
    "offer_program": OFFER_PROGRAM,
}
PATIENT_FIELDS: Final = frozenset({"patient_id", "authority", "id_type", "family_name", "given_name"})
COMMANDS: Final = frozenset(
    {
        INSTALL_LIBRARY,
        INSTALL_CONFIGURATION,
        OFFER_PROGRAM,
        INSTALL_SOFTWARE,
        ASSOCIATE_PATIENT,
        INSTALL_TRUST,
    }
)
MAX_EXPIRY_S: Final = 7 * 24 * 3600
DISPATCH_LIMIT: Final = 500
"""Commands one outbound step sends (or expires) at most, a ``dispatch_next`` each; the rest go next step."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRecord:
    """A command as the API shows it."""

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


def record_of(row: PumpCommand, serial: str) -> CommandRecord:
    """The API view of a command row."""
    return CommandRecord(
        id=row.id,
        pump=serial,
        command=row.command,
        nonce=row.nonce,
        counter=row.counter,
        status=row.status,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        issued_by=row.issued_by,
        result_code=row.result_code,
        result_reason=row.result_reason,
    )


def require_configuration_role(
    session: Session,
    state: CommandContext,
    access: Access,
    facility_id: int,
    *,
    action: str,
    object_type: str,
    object_id: str | None,
    code: str,
) -> None:
    """Pump configurations are biomedical engineering's to install or deploy: anyone else is refused, and
    the refusal is audited.

    Raises:
        AccessDeniedError: with ``code`` when the caller holds no biomed role in the facility.
    """
    if Role.BIOMED in access.principal.roles_in(facility_id):
        return
    with in_own_transaction(session):
        audit.append(
            session,
            state.clock,
            actor=access.principal.username,
            action=action,
            object_type=object_type,
            object_id=object_id,
            facility_id=facility_id,
            outcome="denied",
            details={"kind": "configuration", "reason": "biomed role required"},
        )
    raise AccessDeniedError("only biomedical engineering installs or deploys pump configurations", code=code)


def issue_command(
    session: Session,
    state: CommandContext,
    *,
    pump_serial: str,
    command: str,
    args: dict[str, object],
    actor: str,
    expires_in_s: int = 600,
    deployment_target_id: int | None = None,
) -> CommandRecord:
    """Sign a command for one pump, queue it for the link and audit it; the outbound sender is woken once
    the caller's transaction commits.

    Raises:
        NotFoundError: ``pump.not_found``.
        InvalidInputError: ``command.unknown`` for a name outside ``COMMANDS`` (or its alias),
            ``command.args`` for an offered program that is not a ``transport.offers`` program offer,
            ``command.expiry`` for an expiry outside 1 s - 7 days.
    """
    name = ALIASES.get(command, command)
    if name not in COMMANDS:
        raise InvalidInputError(
            f"unknown command {command!r} (known: {', '.join(sorted(COMMANDS | set(ALIASES)))})",
            code="command.unknown",
        )
    if not 1 <= expires_in_s <= MAX_EXPIRY_S:
        raise InvalidInputError(f"expiry must be within 1-{MAX_EXPIRY_S} s", code="command.expiry")
    if name == OFFER_PROGRAM:
        _check_offer(args)
    if name == ASSOCIATE_PATIENT and (
        set(args) != PATIENT_FIELDS or not all(isinstance(v, str) for v in args.values())
    ):
        raise InvalidInputError(
            f"a patient association carries exactly {', '.join(sorted(PATIENT_FIELDS))} as text",
            code="command.args",
        )
    pump = fleet_repo.pump_by_serial(session, pump_serial)
    if pump is None:
        raise NotFoundError(f"no pump {pump_serial!r}", code="pump.not_found")
    now = state.clock.now()
    for _ in range(5):
        counter = int(
            session.scalar(select(func.max(PumpCommand.counter)).where(PumpCommand.pump_id == pump.id)) or 0
        )
        row = _signed_row(
            state, pump, name, args, now, expires_in_s, counter + 1, actor, deployment_target_id
        )
        try:
            with session.begin_nested():  # a concurrent issuer took the counter: only this insert is undone
                session.add(row)
                session.flush()
        except IntegrityError:
            continue
        break
    else:
        raise InvalidInputError("could not allocate a command counter", code="command.counter")
    audit.append(
        session,
        state.clock,
        actor=actor,
        action="command.issued",
        object_type="pump",
        object_id=pump.serial,
        facility_id=pump.facility_id,
        details={"command": name, "nonce": row.nonce, "counter": row.counter, "expires_at": row.expires_at},
    )
    after_commit(session, state.wake)
    return record_of(row, pump.serial)


def _signed_row(
    state: CommandContext,
    pump: Pump,
    name: str,
    args: Mapping[str, object],
    now: datetime,
    expires_in_s: int,
    counter: int,
    actor: str,
    deployment_target_id: int | None,
) -> PumpCommand:
    expires_at = now + timedelta(seconds=expires_in_s)
    nonce = secrets.token_hex(16)
    signer = state.keys.signer(KeyPurpose.COMMAND)
    try:
        signed = sign_command(
            pump_id=pump.serial,
            command=name,
            args=args,
            issued_at=now,
            expires_at=expires_at,
            nonce=nonce,
            counter=counter,
            private_key_pem=signer.private_pem,
            key_id=signer.key_id,
        )
    except SignatureError as error:
        raise InvalidInputError(error.message, code="command.args") from None
    return PumpCommand(
        pump_id=pump.id,
        counter=counter,
        nonce=nonce,
        command=name,
        signed=json.dumps(signed.to_dict(), sort_keys=True, separators=(",", ":")),
        issued_at=now,
        expires_at=expires_at,
        issued_by=actor,
        status="queued",
        deployment_target_id=deployment_target_id,
    )


def _check_offer(args: Mapping[str, object]) -> None:
    try:
        read_offer(args)
    except OfferError as error:
        raise InvalidInputError(error.message, code="command.args") from None


def dispatch_next(session: Session, state: DeploymentContext, send: Callable[[Envelope], bool]) -> bool:
    """Send the oldest queued command over the link and mark it sent (an expired one is marked expired, not
    sent); returns whether one left the queue (False: none queued, or the link did not take it)."""
    now = state.clock.now()
    found = session.execute(
        select(PumpCommand, Pump.serial)
        .join(Pump, Pump.id == PumpCommand.pump_id)
        .where(PumpCommand.status == "queued")
        .order_by(PumpCommand.id)
        .limit(1)
    ).first()
    if found is None:
        return False
    row, serial = found
    if row.expires_at < now:
        row.status = CommandStatus.EXPIRED
        row.result_code = "command.expired"
        row.result_at = now
        _tell_deployment(session, state, row)
        return True
    signed: dict[str, Any] = json.loads(row.signed)
    if not send(command_message(serial, signed)):
        return False
    # only while still queued: the pump's answer may already have been recorded by the ingest side
    # (a fast refusal), and "sent" must never overwrite it
    session.execute(
        update(PumpCommand)
        .where(PumpCommand.id == row.id, PumpCommand.status == "queued")
        .values(status="sent", sent_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


def record_result(
    session: Session,
    state: DeploymentContext,
    *,
    pump_id: int,
    nonce: str,
    ok: bool,
    code: str | None,
    reason: str | None,
) -> None:
    """Apply a pump's answer to a command (a result for an unknown nonce is audited as suspicious); the
    caller commits."""
    row = session.scalars(
        select(PumpCommand).where(PumpCommand.pump_id == pump_id, PumpCommand.nonce == nonce)
    ).one_or_none()
    pump = fleet_repo.pump_by_id(session, pump_id)
    if row is None:
        audit.append(
            session,
            state.clock,
            actor=None,
            action="command.result_unknown",
            object_type="pump",
            object_id=None if pump is None else pump.serial,
            facility_id=None if pump is None else pump.facility_id,
            outcome="alert",
            details={"nonce": nonce[:64], "ok": ok, "code": code},
        )
        return
    if row.status in ("accepted", "refused"):
        return
    row.status = CommandStatus.ACCEPTED if ok else CommandStatus.REFUSED
    row.result_code = code
    row.result_reason = reason
    row.result_at = state.clock.now()
    if not ok:
        audit.append(
            session,
            state.clock,
            actor=None,
            action="command.refused",
            object_type="pump",
            object_id=None if pump is None else pump.serial,
            facility_id=None if pump is None else pump.facility_id,
            outcome="denied",
            details={"command": row.command, "nonce": nonce, "code": code, "reason": reason},
        )
    _tell_deployment(session, state, row)


def _tell_deployment(session: Session, state: DeploymentContext, row: PumpCommand) -> None:
    if row.deployment_target_id is None:
        return
    from smartpump.server.services import deployment

    deployment.on_command_result(session, state, row)


def list_commands(session: Session, pump: Pump, *, limit: int = 100) -> list[CommandRecord]:
    """The latest commands of one pump, newest first."""
    rows = session.scalars(
        select(PumpCommand).where(PumpCommand.pump_id == pump.id).order_by(PumpCommand.id.desc()).limit(limit)
    ).all()
    return [record_of(row, pump.serial) for row in rows]


def queued(session: Session) -> int:
    """How many commands wait to be sent."""
    return int(
        session.scalar(select(func.count()).select_from(PumpCommand).where(PumpCommand.status == "queued"))
        or 0
    )
