"""Signed commands: a valid one verifies once; forged, foreign, expired and replayed ones are refused."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest

from smartpump.clock import EPOCH
from smartpump.errors import RollbackError, SignatureError
from smartpump.library import signing
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore
from smartpump.pump.software import sign_package, verify_package
from smartpump.transport.commands import (
    INSTALL_LIBRARY,
    INSTALL_SOFTWARE,
    CommandLedger,
    SignedCommand,
    install_library_args,
    install_software_args,
    package_document_of,
    sign_command,
    signed_library_of,
    verify_command,
)
from smartpump.transport.messages import command_message, decode
from tests.factories import make_library

PUMP = "pump-1"
NOW = EPOCH + timedelta(hours=3)
PRIVATE, PUBLIC = signing.generate_keypair()
TRUST = TrustStore([TrustedKey(key_id="server-1", purpose=KeyPurpose.COMMAND, public_pem=PUBLIC)])


def _signed(**overrides: Any) -> SignedCommand:
    fields: dict[str, Any] = {
        "pump_id": PUMP,
        "command": "config.set",
        "args": {"occlusion_level": "medium", "kvo_rate_ml_per_h": "1.5"},
        "issued_at": NOW - timedelta(minutes=1),
        "expires_at": NOW + timedelta(minutes=10),
        "nonce": "nonce-1",
        "counter": 5,
        "private_key_pem": PRIVATE,
        "key_id": "server-1",
    }
    fields.update(overrides)
    return sign_command(**fields)


def _refusal(cmd: SignedCommand, ledger: CommandLedger | None = None, *, now: datetime = NOW) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_command(cmd, TRUST, PUMP, now, ledger if ledger is not None else CommandLedger())
    return caught.value.code


def test_valid_command_verifies_and_is_recorded() -> None:
    ledger = CommandLedger()
    command = verify_command(_signed(), TRUST, PUMP, NOW, ledger)
    assert command.command == "config.set"
    assert command.args["kvo_rate_ml_per_h"] == "1.5"
    assert ledger.last_counter == 5
    assert "nonce-1" in ledger.nonces


def test_command_survives_the_wire() -> None:
    signed = _signed()
    received = SignedCommand.from_dict(
        decode(command_message(PUMP, signed.to_dict()).encode()).body["signed"]
    )
    assert received == signed
    assert verify_command(received, TRUST, PUMP, NOW, CommandLedger()).nonce == "nonce-1"


def test_command_signed_with_another_key_is_forged() -> None:
    other_private, _ = signing.generate_keypair()
    assert _refusal(_signed(private_key_pem=other_private)) == "command.forged"


def test_tampered_args_are_forged() -> None:
    doc = _signed().to_dict()
    doc["command"]["args"]["kvo_rate_ml_per_h"] = "15"
    assert _refusal(SignedCommand.from_dict(doc)) == "command.forged"


def test_retargeted_command_is_forged_not_foreign() -> None:
    doc = _signed(pump_id="pump-2").to_dict()
    doc["command"]["pump_id"] = PUMP
    assert _refusal(SignedCommand.from_dict(doc)) == "command.forged"


def test_unknown_algorithm_is_forged() -> None:
    doc = _signed().to_dict()
    doc["algorithm"] = "none"
    assert _refusal(SignedCommand.from_dict(doc)) == "command.forged"


def test_command_for_another_pump_is_foreign() -> None:
    assert _refusal(_signed(pump_id="pump-2")) == "command.foreign"


def test_command_past_its_expiry_is_expired() -> None:
    assert _refusal(_signed(), now=NOW + timedelta(minutes=10, seconds=1)) == "command.expired"


def test_command_at_its_exact_expiry_is_still_valid() -> None:
    assert verify_command(_signed(), TRUST, PUMP, NOW + timedelta(minutes=10), CommandLedger()).counter == 5


def test_command_issued_in_the_future_is_refused_as_expired() -> None:
    cmd = _signed(issued_at=NOW + timedelta(hours=1), expires_at=NOW + timedelta(hours=2))
    assert _refusal(cmd) == "command.expired"


def test_same_command_twice_is_replayed() -> None:
    ledger = CommandLedger()
    verify_command(_signed(), TRUST, PUMP, NOW, ledger)
    assert _refusal(_signed(), ledger) == "command.replayed"


def test_new_nonce_with_an_old_counter_is_replayed() -> None:
    ledger = CommandLedger(last_counter=5)
    assert _refusal(_signed(nonce="fresh"), ledger) == "command.replayed"


def test_refused_command_is_not_recorded() -> None:
    ledger = CommandLedger()
    _refusal(_signed(pump_id="pump-2"), ledger)
    assert ledger == CommandLedger()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("signature"),
        lambda d: d.update(format="other/1"),
        lambda d: d["command"].pop("nonce"),
        lambda d: d["command"].update(counter=0),
        lambda d: d["command"].update(issued_at="today"),
        lambda d: d["command"].update(expires_at="2026-01-01T00:00:00"),
        lambda d: d.update(signature="***"),
        lambda d: d["command"].update(args=[]),
    ],
    ids=[
        "no-signature",
        "format",
        "no-nonce",
        "counter-0",
        "bad-time",
        "naive-time",
        "bad-base64",
        "args-list",
    ],
)
def test_malformed_document_is_refused(mutate: Any) -> None:
    doc = _signed().to_dict()
    mutate(doc)
    with pytest.raises(SignatureError) as caught:
        SignedCommand.from_dict(doc)
    assert caught.value.code == "command.malformed"


@pytest.mark.parametrize(
    "overrides",
    [
        {"nonce": ""},
        {"counter": 0},
        {"expires_at": NOW - timedelta(minutes=2)},
        {"issued_at": datetime(2026, 1, 1)},
        {"args": {"rate": object()}},
    ],
    ids=["empty-nonce", "counter-0", "expires-before-issue", "naive", "not-json"],
)
def test_signing_refuses_an_unusable_command(overrides: dict[str, Any]) -> None:
    with pytest.raises(SignatureError) as caught:
        _signed(**overrides)
    assert caught.value.code == "command.malformed"


def test_signature_is_over_the_canonical_bytes() -> None:
    signed = _signed()
    raw = base64.b64decode(signed.to_dict()["signature"])
    assert raw == signed.signature
    assert signed.command.canonical_bytes().startswith(b'{"args":{"kvo_rate_ml_per_h":"1.5"')


def test_library_install_carries_the_signed_library_byte_for_byte() -> None:
    library = signing.sign(make_library(version=3), PRIVATE, "pharmacy-1")
    cmd = _signed(command=INSTALL_LIBRARY, args=install_library_args(library))
    received = SignedCommand.from_dict(decode(command_message(PUMP, cmd.to_dict()).encode()).body["signed"])
    command = verify_command(received, TRUST, PUMP, NOW, CommandLedger())
    assert signed_library_of(command) == library


def test_rollback_of_an_installed_library_is_the_library_signings_refusal() -> None:
    library = signing.sign(make_library(version=3), PRIVATE, "pharmacy-1")
    command = verify_command(
        _signed(command=INSTALL_LIBRARY, args=install_library_args(library)),
        TRUST,
        PUMP,
        NOW,
        CommandLedger(),
    )
    with pytest.raises(RollbackError) as caught:
        signing.verify(signed_library_of(command), PUBLIC, installed_version=4)
    assert caught.value.code == "signature.rollback"


def test_other_command_carries_no_library() -> None:
    command = verify_command(_signed(), TRUST, PUMP, NOW, CommandLedger())
    with pytest.raises(SignatureError) as caught:
        signed_library_of(command)
    assert caught.value.code == "command.malformed"


def test_software_install_carries_a_package_the_pump_verifies_after_the_wire() -> None:
    package = sign_package("lvp", "1.4.0", "ab" * 32, PRIVATE, "biomed-1")
    cmd = _signed(command=INSTALL_SOFTWARE, args=install_software_args(package))
    received = SignedCommand.from_dict(decode(command_message(PUMP, cmd.to_dict()).encode()).body["signed"])
    command = verify_command(received, TRUST, PUMP, NOW, CommandLedger())
    assert verify_package(package_document_of(command), PUBLIC, model="lvp", installed="1.3.9") == "1.4.0"


@pytest.mark.parametrize(
    "name, args",
    [("config.set", {"package": {}}), (INSTALL_SOFTWARE, {}), (INSTALL_SOFTWARE, {"package": "x"})],
)
def test_a_command_without_a_package_object_carries_no_package(name: str, args: dict[str, Any]) -> None:
    command = verify_command(_signed(command=name, args=args), TRUST, PUMP, NOW, CommandLedger())
    with pytest.raises(SignatureError) as caught:
        package_document_of(command)
    assert caught.value.code == "command.malformed"
