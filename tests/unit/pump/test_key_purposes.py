"""Separate signing keys per purpose: the pump trusts each key for its one purpose, so a library, a
configuration or a software package signed with the command key (or a command signed with the library
key) is refused with ``signature.wrong_purpose`` and the refusal is an event; a key it does not hold is
``signature.unknown_key``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartpump.errors import SignatureError, SigningKeyError
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore, generate_keypair
from smartpump.library.signing import sign
from smartpump.pump.configuration import PumpConfiguration, sign_configuration
from smartpump.pump.events import EventType
from smartpump.pump.software import sign_package
from smartpump.transport.commands import CommandLedger, sign_command, verify_command
from tests.factories import HOSPITAL_ID
from tests.unit.pump.library import make_pump, pump_library

KEYS = {purpose: generate_keypair() for purpose in KeyPurpose}
IDS = {purpose: f"{purpose.value}-1" for purpose in KeyPurpose}
TRUST = TrustStore(
    TrustedKey(key_id=IDS[p], purpose=p, public_pem=KEYS[p][1])
    for p in KeyPurpose
    if p is not KeyPurpose.AUDIT
)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _configuration() -> PumpConfiguration:
    return PumpConfiguration.from_dict(
        {
            "format": "smartpump.pump-configuration/1",
            "hospital_id": HOSPITAL_ID,
            "model": "lvp-4",
            "version": 2,
            "name": "ICU pumps v2",
            "settings": {},
        }
    )


def _rejections(events: Any, kind: EventType) -> list[str]:
    return [e.data["code"] for e in events.of_type(kind)]


@pytest.mark.parametrize("signer", [KeyPurpose.COMMAND, KeyPurpose.CONFIGURATION, KeyPurpose.AUDIT])
def test_a_library_signed_with_another_purposes_key_is_refused_and_logged(signer: KeyPurpose) -> None:
    pump, _ = make_pump()
    signed = sign(pump_library(version=2), KEYS[signer][0], IDS[signer])
    with pytest.raises(SignatureError) as refused:
        pump.install_library(signed, TRUST, hospital_id=HOSPITAL_ID)
    expected = "signature.unknown_key" if signer is KeyPurpose.AUDIT else "signature.wrong_purpose"
    assert refused.value.code == expected
    assert _rejections(pump.events, EventType.LIBRARY_REJECTED) == [expected]
    assert pump.library is not None and pump.library.version == 1


def test_the_same_library_signed_with_the_library_key_installs() -> None:
    pump, _ = make_pump()
    library = KeyPurpose.LIBRARY
    pump.install_library(sign(pump_library(version=2), KEYS[library][0], IDS[library]), TRUST)
    assert pump.library is not None and pump.library.version == 2


def test_a_library_naming_the_library_key_but_signed_with_the_command_key_is_forged() -> None:
    pump, _ = make_pump()
    signed = sign(pump_library(version=2), KEYS[KeyPurpose.COMMAND][0], IDS[KeyPurpose.LIBRARY])
    with pytest.raises(SignatureError) as refused:
        pump.install_library(signed, TRUST)
    assert refused.value.code == "signature.invalid"


def test_a_configuration_signed_with_the_library_key_is_refused_and_logged() -> None:
    pump, _ = make_pump()
    library = KeyPurpose.LIBRARY
    signed = sign_configuration(_configuration(), KEYS[library][0], IDS[library])
    with pytest.raises(SignatureError) as refused:
        pump.install_configuration(signed, TRUST, hospital_id=HOSPITAL_ID)
    assert refused.value.code == "signature.wrong_purpose"
    assert _rejections(pump.events, EventType.CONFIGURATION_REJECTED) == ["signature.wrong_purpose"]
    configuration = KeyPurpose.CONFIGURATION
    pump.install_configuration(
        sign_configuration(_configuration(), KEYS[configuration][0], IDS[configuration]), TRUST
    )
    assert pump.configuration_version == 2


def test_a_software_package_signed_with_the_command_key_is_refused_and_logged() -> None:
    pump, _ = make_pump()
    command = KeyPurpose.COMMAND
    document = sign_package("lvp-4", "1.1.0", "a" * 64, KEYS[command][0], IDS[command]).to_document()
    with pytest.raises(SignatureError) as refused:
        pump.install_software(document, TRUST)
    assert refused.value.code == "signature.wrong_purpose"
    assert _rejections(pump.events, EventType.SOFTWARE_REJECTED) == ["signature.wrong_purpose"]
    assert pump.software.pending_version is None


def _command(purpose: KeyPurpose, key_id: str | None = None) -> Any:
    return sign_command(
        pump_id="pump-1",
        command="config.set",
        args={},
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
        nonce="n-1",
        counter=1,
        private_key_pem=KEYS[purpose][0],
        key_id=key_id or IDS[purpose],
    )


def test_a_command_signed_with_the_library_key_is_refused_before_anything_else() -> None:
    ledger = CommandLedger()
    with pytest.raises(SignatureError) as refused:
        verify_command(_command(KeyPurpose.LIBRARY), TRUST, "pump-1", NOW, ledger)
    assert refused.value.code == "signature.wrong_purpose"
    assert ledger.last_counter == 0 and not ledger.nonces
    assert verify_command(_command(KeyPurpose.COMMAND), TRUST, "pump-1", NOW, ledger).counter == 1


def test_a_command_naming_a_key_the_pump_does_not_hold_is_unknown() -> None:
    with pytest.raises(SignatureError) as refused:
        verify_command(_command(KeyPurpose.COMMAND, "someone"), TRUST, "pump-1", NOW, CommandLedger())
    assert refused.value.code == "signature.unknown_key"


def test_one_key_cannot_be_trusted_for_two_purposes_nor_one_id_twice() -> None:
    _, public = generate_keypair()
    with pytest.raises(SigningKeyError) as reused:
        TrustStore(
            [
                TrustedKey(key_id="a", purpose=KeyPurpose.LIBRARY, public_pem=public),
                TrustedKey(key_id="b", purpose=KeyPurpose.COMMAND, public_pem=public),
            ]
        )
    assert reused.value.code == "key.duplicate"
    _, other = generate_keypair()
    with pytest.raises(SigningKeyError) as twice:
        TrustStore(
            [
                TrustedKey(key_id="a", purpose=KeyPurpose.LIBRARY, public_pem=public),
                TrustedKey(key_id="a", purpose=KeyPurpose.COMMAND, public_pem=other),
            ]
        )
    assert twice.value.code == "key.duplicate"


def test_the_published_key_set_round_trips() -> None:
    again = TrustStore.from_document(TRUST.to_document())
    assert again.keys == TRUST.keys
    assert again.key_for(IDS[KeyPurpose.SOFTWARE], KeyPurpose.SOFTWARE) == KEYS[KeyPurpose.SOFTWARE][1]


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"keys": "x"},
        {"keys": [1]},
        {"keys": [{"key_id": "a", "purpose": "library"}]},
        {"keys": [{"key_id": "a", "purpose": "firmware", "public_key_pem": "x"}]},
        {"keys": [{"key_id": "a", "purpose": "library", "public_key_pem": "not a key"}]},
        {"keys": [{"key_id": " ", "purpose": "library", "public_key_pem": "x"}]},
    ],
)
def test_a_malformed_published_key_set_is_refused_with_a_code(document: object) -> None:
    with pytest.raises(SigningKeyError) as refused:
        TrustStore.from_document(document)
    assert refused.value.code == "key.malformed"


def test_a_key_of_another_algorithm_in_the_set_is_refused() -> None:
    document = TRUST.to_document()
    document["keys"][0]["algorithm"] = "RSA"
    with pytest.raises(SigningKeyError) as refused:
        TrustStore.from_document(document)
    assert refused.value.code == "key.wrong_type"
