"""Signing: Ed25519 over canonical bytes; tampering, wrong keys, wrong hospital and rollback refused."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smartpump.errors import RollbackError, SignatureError
from smartpump.library import signing
from smartpump.library.formats import json_format
from smartpump.library.signing import SignedLibrary, generate_keypair, key_fingerprint, sign, verify
from tests.factories import HOSPITAL_ID, make_library


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return generate_keypair()


@pytest.fixture
def signed(keys: tuple[bytes, bytes]) -> SignedLibrary:
    return sign(make_library(version=5), keys[0], "pharmacy-2025")


def _raw_signed(payload: bytes, private_pem: bytes) -> SignedLibrary:
    """A document whose signature is valid over arbitrary bytes (as a careless signer would make)."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return SignedLibrary(payload=payload, key_id="k", algorithm="Ed25519", signature=key.sign(payload))


def _code(error: pytest.ExceptionInfo[SignatureError]) -> str:
    return error.value.code


# --- valid ----------------------------------------------------------------------------------


def test_valid_signature_verifies_and_returns_the_library(
    signed: SignedLibrary, keys: tuple[bytes, bytes]
) -> None:
    library = verify(signed, keys[1], installed_version=4, hospital_id=HOSPITAL_ID)
    assert library == make_library(version=5)


def test_payload_is_the_canonical_bytes(signed: SignedLibrary) -> None:
    assert signed.payload == json_format.canonical_bytes(make_library(version=5))
    assert signed.algorithm == "Ed25519"
    assert signed.key_id == "pharmacy-2025"
    assert len(signed.signature) == 64


def test_verify_without_version_or_hospital_checks_only_the_signature(
    signed: SignedLibrary, keys: tuple[bytes, bytes]
) -> None:
    assert verify(signed, keys[1]).version == 5


def test_json_round_trip_keeps_every_byte(signed: SignedLibrary) -> None:
    assert SignedLibrary.from_json(signed.to_json()) == signed


def test_signed_document_holds_base64_payload(signed: SignedLibrary) -> None:
    document = json.loads(signed.to_json())
    assert document["format"] == signing.SIGNED_FORMAT
    assert base64.b64decode(document["payload"]) == signed.payload


def test_keypair_is_pem_ed25519(keys: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keys
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert signing.public_key_of(private_pem) == public_pem


def test_fingerprint_is_stable_and_differs_between_keys(keys: tuple[bytes, bytes]) -> None:
    other = generate_keypair()[1]
    assert key_fingerprint(keys[1]) == key_fingerprint(keys[1])
    assert key_fingerprint(keys[1]) != key_fingerprint(other)
    assert len(key_fingerprint(keys[1])) == 16


# --- refused --------------------------------------------------------------------------------


def test_tampered_payload_one_digit_is_refused(signed: SignedLibrary, keys: tuple[bytes, bytes]) -> None:
    assert b'"hard_max":500' in signed.payload
    tampered = replace(signed, payload=signed.payload.replace(b'"hard_max":500', b'"hard_max":900'))
    with pytest.raises(SignatureError) as error:
        verify(tampered, keys[1])
    assert _code(error) == "signature.invalid"


def test_wrong_key_is_refused(signed: SignedLibrary) -> None:
    with pytest.raises(SignatureError) as error:
        verify(signed, generate_keypair()[1])
    assert _code(error) == "signature.invalid"
    assert "pharmacy-2025" in error.value.message


def test_truncated_signature_is_refused(signed: SignedLibrary, keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError) as error:
        verify(replace(signed, signature=signed.signature[:-1]), keys[1])
    assert _code(error) == "signature.invalid"


def test_wrong_algorithm_field_is_refused(signed: SignedLibrary, keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError) as error:
        verify(replace(signed, algorithm="RS256"), keys[1])
    assert _code(error) == "signature.algorithm"


@pytest.mark.parametrize("installed", [5, 6], ids=["same-version", "older-than-installed"])
def test_rollback_is_refused(signed: SignedLibrary, keys: tuple[bytes, bytes], installed: int) -> None:
    with pytest.raises(RollbackError) as error:
        verify(signed, keys[1], installed_version=installed)
    assert _code(error) == "signature.rollback"


def test_library_for_another_hospital_is_refused(signed: SignedLibrary, keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError) as error:
        verify(signed, keys[1], hospital_id="another-hospital")
    assert _code(error) == "signature.wrong_hospital"


def test_wrong_hospital_is_checked_before_rollback(signed: SignedLibrary, keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError) as error:
        verify(signed, keys[1], installed_version=9, hospital_id="another-hospital")
    assert _code(error) == "signature.wrong_hospital"


def test_validly_signed_non_canonical_payload_is_refused(keys: tuple[bytes, bytes]) -> None:
    pretty = json_format.dumps(make_library()).encode("utf-8")
    with pytest.raises(SignatureError) as error:
        verify(_raw_signed(pretty, keys[0]), keys[1])
    assert _code(error) == "signature.payload"


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b'{"format": "smartpump.library/1"}'])
def test_validly_signed_payload_that_is_no_library_is_refused(
    keys: tuple[bytes, bytes], payload: bytes
) -> None:
    with pytest.raises(SignatureError) as error:
        verify(_raw_signed(payload, keys[0]), keys[1])
    assert _code(error) == "signature.payload"


def test_public_key_that_is_not_pem_is_refused(signed: SignedLibrary) -> None:
    with pytest.raises(SignatureError) as error:
        verify(signed, b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    assert _code(error) == "key.malformed"


def test_public_key_of_another_algorithm_is_refused(signed: SignedLibrary) -> None:
    ec_public = generate_private_key(SECP256R1()).public_key()
    pem = ec_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SignatureError) as error:
        verify(signed, pem)
    assert _code(error) == "key.wrong_type"


def test_signing_with_a_non_ed25519_key_is_refused() -> None:
    ec_private = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignatureError) as error:
        sign(make_library(), ec_private, "k")
    assert _code(error) == "key.wrong_type"


def test_signing_with_garbage_key_is_refused() -> None:
    with pytest.raises(SignatureError) as error:
        sign(make_library(), b"garbage", "k")
    assert _code(error) == "key.malformed"


def test_signing_needs_a_key_id(keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError) as error:
        sign(make_library(), keys[0], "  ")
    assert _code(error) == "signature.key_id"


# --- malformed signed documents -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"format": "other/1"}',
        '{"format": "smartpump.signed-library/1", "algorithm": "Ed25519", "key_id": "k", '
        '"signature": "AA=="}',
        '{"format": "smartpump.signed-library/1", "algorithm": "Ed25519", "key_id": "", '
        '"signature": "AA==", "payload": "AA=="}',
        '{"format": "smartpump.signed-library/1", "algorithm": "Ed25519", "key_id": "k", '
        '"signature": "!!not base64!!", "payload": "AA=="}',
    ],
    ids=["not-json", "not-object", "other-format", "no-payload", "empty-key-id", "bad-base64"],
)
def test_malformed_signed_document_is_refused(text: str) -> None:
    with pytest.raises(SignatureError) as error:
        SignedLibrary.from_json(text)
    assert _code(error) == "signature.malformed"
