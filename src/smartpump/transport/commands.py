"""Signed remote commands: Ed25519 over canonical JSON, bound to one pump, an expiry, a nonce and a counter.

``verify_command`` refuses, in this order: a malformed document (``command.malformed``), a key the
pump does not trust for commands (``signature.unknown_key``, ``signature.wrong_purpose``), a signature
that does not verify (``command.forged``), another pump's command (``command.foreign``), one outside
its validity window (``command.expired``) and a replay (``command.replayed``: nonce already seen or
counter not above the last accepted one). A library install carries a ``SignedLibrary``, a
configuration install a ``SignedConfiguration``, a software install a ``SignedPackage`` document and a
trust install a ``SignedTrustList``; their own verification (signature, hospital, model, anti-rollback)
runs when the pump installs them. A
program offer carries a ``transport.offers.ProgramOffer``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.exceptions import InvalidSignature

from smartpump.errors import SignatureError
from smartpump.library.keys import ALGORITHM as ALGORITHM
from smartpump.library.keys import KeyPurpose, TrustStore, private_key_from_pem, public_key_from_pem
from smartpump.library.signing import SignedLibrary
from smartpump.library.trust_list import SignedTrustList
from smartpump.pump.configuration import SignedConfiguration
from smartpump.pump.software import SignedPackage
from smartpump.transport.messages import MessageError, pump_id

COMMAND_FORMAT: Final = "smartpump.signed-command/1"
INSTALL_LIBRARY: Final = "library.install"
INSTALL_CONFIGURATION: Final = "configuration.install"
INSTALL_SOFTWARE: Final = "software.install"
INSTALL_TRUST: Final = "trust.install"
"""Replace the pump's trusted keys with a signed trust list (args: ``signed_trust_list``)."""
OFFER_PROGRAM: Final = "program.offer"
"""Hold an EHR order's program on a channel for the nurse (args: ``transport.offers``)."""
ASSOCIATE_PATIENT: Final = "patient.associate"
"""Associate a patient with the pump (args: patient_id, authority, id_type, family_name, given_name)."""
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """What the server asks of one pump, valid from ``issued_at`` to ``expires_at`` (UTC)."""

    pump_id: str
    command: str
    args: Mapping[str, Any]
    issued_at: datetime
    expires_at: datetime
    nonce: str
    counter: int

    def canonical_bytes(self) -> bytes:
        """The exact signed bytes: sorted keys, no whitespace, UTF-8, times as ISO-8601 UTC."""
        document = {
            "pump_id": self.pump_id,
            "command": self.command,
            "args": dict(self.args),
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "nonce": self.nonce,
            "counter": self.counter,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedCommand:
    """A command with the id of the signing key and its Ed25519 signature over ``canonical_bytes``."""

    command: Command
    key_id: str
    signature: bytes
    algorithm: str = ALGORITHM

    def to_dict(self) -> dict[str, Any]:
        """The JSON document carried in a ``command`` message body."""
        return {
            "format": COMMAND_FORMAT,
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "command": json.loads(self.command.canonical_bytes()),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SignedCommand:
        """Read a document written by ``to_dict``; raises ``SignatureError`` ``command.malformed``."""
        try:
            if raw.get("format") != COMMAND_FORMAT:
                raise ValueError(f"format must be {COMMAND_FORMAT!r}")
            body = raw["command"]
            if not isinstance(body, dict) or set(body) != {
                "pump_id",
                "command",
                "args",
                "issued_at",
                "expires_at",
                "nonce",
                "counter",
            }:
                raise ValueError(
                    "command must hold exactly pump_id, command, args, issued_at, expires_at, nonce, counter"
                )
            counter = body["counter"]
            if isinstance(counter, bool) or not isinstance(counter, int) or counter < 1:
                raise ValueError("counter must be an integer >= 1")
            if not isinstance(body["args"], dict):
                raise ValueError("args must be an object")
            command = Command(
                pump_id=pump_id(body["pump_id"], "command.pump_id"),
                command=_text(body["command"], "command"),
                args=body["args"],
                issued_at=_utc(body["issued_at"], "issued_at"),
                expires_at=_utc(body["expires_at"], "expires_at"),
                nonce=_text(body["nonce"], "nonce"),
                counter=counter,
            )
            signature = base64.b64decode(_text(raw["signature"], "signature"), validate=True)
            return cls(
                command=command,
                key_id=_text(raw["key_id"], "key_id"),
                signature=signature,
                algorithm=_text(raw["algorithm"], "algorithm"),
            )
        except (KeyError, TypeError, ValueError, binascii.Error, MessageError) as error:
            raise SignatureError(f"not a signed command: {error}", code="command.malformed") from None


@dataclass(slots=True)
class CommandLedger:
    """What a pump remembers to refuse replays: the last accepted counter and the nonces seen."""

    last_counter: int = 0
    nonces: set[str] = field(default_factory=set)

    def record(self, command: Command) -> None:
        """Remember an accepted command."""
        self.last_counter = command.counter
        self.nonces.add(command.nonce)


def sign_command(
    *,
    pump_id: str,
    command: str,
    args: Mapping[str, Any],
    issued_at: datetime,
    expires_at: datetime,
    nonce: str,
    counter: int,
    private_key_pem: bytes,
    key_id: str,
) -> SignedCommand:
    """Sign one command for one pump with an Ed25519 private key (PEM).

    Raises:
        SignatureError: ``command.malformed`` for an empty nonce, a counter < 1, naive times, an
            expiry not after issue or args that are not plain JSON (Decimals go as strings);
            ``key.malformed`` / ``key.wrong_type`` for a key that is not Ed25519.
    """
    if not nonce or counter < 1 or issued_at.tzinfo is None or expires_at.tzinfo is None:
        raise SignatureError(
            "a command needs a nonce, a counter >= 1 and UTC times", code="command.malformed"
        )
    if expires_at <= issued_at:
        raise SignatureError("a command must expire after it is issued", code="command.malformed")
    body = Command(
        pump_id=pump_id,
        command=command,
        args=dict(args),
        issued_at=issued_at,
        expires_at=expires_at,
        nonce=nonce,
        counter=counter,
    )
    try:
        payload = body.canonical_bytes()
    except (TypeError, ValueError) as error:
        raise SignatureError(
            f"command args are not plain JSON values: {error}", code="command.malformed"
        ) from None
    signature = private_key_from_pem(private_key_pem).sign(payload)
    return SignedCommand(command=body, key_id=key_id, signature=signature)


def verify_command(
    cmd: SignedCommand,
    trust: TrustStore,
    pump_id: str,
    now: datetime,
    seen_nonces: CommandLedger,
    *,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Command:
    """The command, once it verifies for this pump at ``now`` with a key ``trust`` holds for commands; it is
    then recorded in the ledger.

    Raises:
        SignatureError: ``signature.unknown_key`` / ``signature.wrong_purpose`` for a key the pump does not
            trust for commands (a library key included), then ``command.forged``, ``command.foreign``,
            ``command.expired``, ``command.replayed`` (see the module docstring for the order).
    """
    key = public_key_from_pem(trust.key_for(cmd.key_id, KeyPurpose.COMMAND))
    try:
        if cmd.algorithm != ALGORITHM:
            raise InvalidSignature
        key.verify(cmd.signature, cmd.command.canonical_bytes())
    except InvalidSignature:
        raise SignatureError(
            f"command signature does not verify (key {cmd.key_id!r})", code="command.forged"
        ) from None
    body = cmd.command
    if body.pump_id != pump_id:
        raise SignatureError(f"command is for pump {body.pump_id!r}, not {pump_id!r}", code="command.foreign")
    if now > body.expires_at:
        raise SignatureError(f"command expired at {body.expires_at.isoformat()}", code="command.expired")
    if body.issued_at > now + max_skew:
        raise SignatureError(
            f"command issued in the future ({body.issued_at.isoformat()})", code="command.expired"
        )
    if body.nonce in seen_nonces.nonces:
        raise SignatureError(f"command nonce {body.nonce!r} was already used", code="command.replayed")
    if body.counter <= seen_nonces.last_counter:
        raise SignatureError(
            f"command counter {body.counter} is not above the last accepted {seen_nonces.last_counter}",
            code="command.replayed",
        )
    seen_nonces.record(body)
    return body


def install_library_args(signed: SignedLibrary) -> dict[str, Any]:
    """The args of a ``library.install`` command: the signed library document, byte for byte."""
    return {"signed_library": signed.to_json()}


def signed_library_of(command: Command) -> SignedLibrary:
    """The SignedLibrary a ``library.install`` command carries (verify it with ``signing.verify``).

    Raises:
        SignatureError: ``command.malformed`` for another command or args without the document.
    """
    text = command.args.get("signed_library")
    if command.command != INSTALL_LIBRARY or not isinstance(text, str):
        raise SignatureError(f"{command.command!r} does not carry a signed library", code="command.malformed")
    return SignedLibrary.from_json(text)


def install_configuration_args(signed: SignedConfiguration) -> dict[str, Any]:
    """The args of a ``configuration.install`` command: the signed configuration document, byte for byte."""
    return {"signed_configuration": signed.to_json()}


def signed_configuration_of(command: Command) -> SignedConfiguration:
    """The SignedConfiguration a ``configuration.install`` command carries (``Pump.install_configuration``
    verifies it).

    Raises:
        SignatureError: ``command.malformed`` for another command or args without the document;
            ``signature.malformed`` for a document that is not a signed configuration.
    """
    text = command.args.get("signed_configuration")
    if command.command != INSTALL_CONFIGURATION or not isinstance(text, str):
        raise SignatureError(
            f"{command.command!r} does not carry a signed configuration", code="command.malformed"
        )
    return SignedConfiguration.from_json(text)


def install_software_args(package: SignedPackage) -> dict[str, Any]:
    """The args of a ``software.install`` command: the signed package document."""
    return {"package": package.to_document()}


def package_document_of(command: Command) -> Mapping[str, object]:
    """The package document a ``software.install`` command carries (the pump's software slot verifies it).

    Raises:
        SignatureError: ``command.malformed`` for another command or args without a package object.
    """
    document = command.args.get("package")
    if command.command != INSTALL_SOFTWARE or not isinstance(document, dict):
        raise SignatureError(
            f"{command.command!r} does not carry a software package", code="command.malformed"
        )
    return document


def install_trust_args(signed: SignedTrustList) -> dict[str, Any]:
    """The args of a ``trust.install`` command: the signed trust list document, byte for byte."""
    return {"signed_trust_list": signed.to_json()}


def signed_trust_list_of(command: Command) -> SignedTrustList:
    """The SignedTrustList a ``trust.install`` command carries (``Pump.install_trust_list`` verifies it).

    Raises:
        SignatureError: ``command.malformed`` for another command or args without the document;
            ``signature.malformed`` for a document that is not a signed trust list.
    """
    text = command.args.get("signed_trust_list")
    if command.command != INSTALL_TRUST or not isinstance(text, str):
        raise SignatureError(
            f"{command.command!r} does not carry a signed trust list", code="command.malformed"
        )
    return SignedTrustList.from_json(text)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string")
    return value


def _utc(value: Any, where: str) -> datetime:
    moment = datetime.fromisoformat(_text(value, where))
    if moment.tzinfo is None:
        raise ValueError(f"{where} must carry its UTC offset")
    return moment
