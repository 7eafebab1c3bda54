"""Publishing the keyring to the pumps: sign the current trust list with the trust-root key and send it to
every pump of a facility as a ``trust.install`` command (queued, audited), then show per pump how far it
got (queued, sent, accepted, refused, expired).

The keyring is read from its directory at each publication, so a rotation made with ``smartpump keys`` is
published without restarting the server; the version comes from ``keys.next_trust_list_version``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.errors import SignatureError
from smartpump.library.keys import KeyPurpose
from smartpump.library.trust_list import SignedTrustList, read_payload, sign_trust_list
from smartpump.server import audit
from smartpump.server.db.models import Facility, Pump
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.errors import NotFoundError
from smartpump.server.keys import Keyring, next_trust_list_version
from smartpump.server.services.commands import CommandRecord, issue_command
from smartpump.server.services.context import CommandContext
from smartpump.server.vocabulary import CommandStatus
from smartpump.transport.commands import (
    INSTALL_TRUST,
    SignedCommand,
    install_trust_args,
    signed_trust_list_of,
)

TRUST_EXPIRY_S: Final = 24 * 3600
"""How long a trust list waits for an offline pump before its command expires (publish again after)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Publication:
    """One published trust list: its version, the root key that signed it, what it trusts and the commands
    that carry it."""

    version: int
    signed_by: str
    key_ids: tuple[str, ...]
    commands: tuple[CommandRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpTrust:
    """Where one pump stands with the trust lists sent to it: the last one's version and command status."""

    serial: str
    version: int | None
    status: CommandStatus | None
    result_code: str | None


def sign_current(keyring: Keyring, directory: Path) -> SignedTrustList:
    """The keyring's trust list at the next version, signed by the active trust-root key.

    Raises:
        SigningKeyError: ``key.missing`` without an active trust key, ``key.malformed`` for a bad version
            file.
    """
    root = keyring.signer(KeyPurpose.TRUST)
    return sign_trust_list(
        keyring.trust_list(next_trust_list_version(directory)), root.private_pem, root.key_id
    )


def publish(
    session: Session,
    state: CommandContext,
    signed: SignedTrustList,
    *,
    facility_ids: Iterable[int],
    actor: str,
) -> Publication:
    """Send a signed trust list to every pump of the facilities (one ``trust.install`` each) and audit it.

    Raises:
        NotFoundError: ``facility.not_found`` for an id with no facility (nothing is sent).
    """
    trust_list = read_payload(signed.payload)
    key_ids = tuple(f"{k.purpose.value}:{k.key_id}" for k in trust_list.trusted())
    wanted = sorted(set(facility_ids))
    known = set(session.scalars(select(Facility.id).where(Facility.id.in_(wanted))))
    if missing := [f for f in wanted if f not in known]:
        raise NotFoundError(f"no facility {missing[0]}", code="facility.not_found")
    serials = session.scalars(
        select(Pump.serial).where(Pump.facility_id.in_(wanted)).order_by(Pump.serial)
    ).all()
    for facility_id in wanted:
        audit.append(
            session,
            state.clock,
            actor=actor,
            action="trust_list.published",
            object_type="trust_list",
            object_id=str(trust_list.version),
            facility_id=facility_id,
            details={
                "signed_by": signed.key_id,
                "keys": list(key_ids),
                "revoked": sorted(trust_list.retired()),
            },
        )
    commands = tuple(
        issue_command(
            session,
            state,
            pump_serial=serial,
            command=INSTALL_TRUST,
            args=install_trust_args(signed),
            actor=actor,
            expires_in_s=TRUST_EXPIRY_S,
        )
        for serial in serials
    )
    return Publication(
        version=trust_list.version, signed_by=signed.key_id, key_ids=key_ids, commands=commands
    )


def pump_trust(session: Session, facility_id: int) -> list[PumpTrust]:
    """Every pump of a facility with the version and status of the last trust list sent to it."""
    pumps = session.execute(
        select(Pump.id, Pump.serial).where(Pump.facility_id == facility_id).order_by(Pump.serial)
    ).all()
    last: dict[int, PumpCommand] = {}
    rows = session.scalars(
        select(PumpCommand)
        .where(PumpCommand.pump_id.in_([p.id for p in pumps]), PumpCommand.command == INSTALL_TRUST)
        .order_by(PumpCommand.counter)
    )
    for row in rows:
        last[row.pump_id] = row
    result = []
    for pump_id, serial in pumps:
        sent = last.get(pump_id)
        result.append(
            PumpTrust(
                serial=serial,
                version=None if sent is None else _version_of(sent),
                status=None if sent is None else CommandStatus(sent.status),
                result_code=None if sent is None else sent.result_code,
            )
        )
    return result


def _version_of(row: PumpCommand) -> int | None:
    """The trust-list version a stored ``trust.install`` command carries (None if it cannot be read)."""
    try:
        signed = SignedCommand.from_dict(json.loads(row.signed))
        return read_payload(signed_trust_list_of(signed.command).payload).version
    except (SignatureError, ValueError):
        return None
