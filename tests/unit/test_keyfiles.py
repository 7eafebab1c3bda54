"""The one key loader: PEM bytes in the core (``library.keys``), files at the edge (``keyfiles``); every
bad key is a coded ``SigningKeyError``, never a bare ``ValueError`` or ``TypeError``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smartpump.errors import SignatureError, SigningKeyError
from smartpump.keyfiles import read_private_key, read_public_key, write_private_key, write_public_key
from smartpump.library.keys import (
    generate_keypair,
    key_fingerprint,
    private_key_from_pem,
    public_key_from_pem,
    public_key_of,
)
from smartpump.library.signing import sign_payload
from smartpump.transport.commands import sign_command

EC_PRIVATE = generate_private_key(SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
EC_PUBLIC = (
    generate_private_key(SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)
ENCRYPTED = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.BestAvailableEncryption(b"passphrase"),
)
PRIVATE, PUBLIC = generate_keypair()


def _code(action: Callable[[], object]) -> str:
    with pytest.raises(SigningKeyError) as error:
        action()
    return error.value.code


@pytest.mark.parametrize(
    ("pem", "code"),
    [
        (b"", "key.malformed"),
        (b"garbage", "key.malformed"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "key.malformed"),
        (b"\xff\xfe\x00", "key.malformed"),
        (ENCRYPTED, "key.malformed"),
        (EC_PRIVATE, "key.wrong_type"),
        (PUBLIC, "key.wrong_type"),
    ],
)
def test_a_private_key_that_is_no_ed25519_pem_is_refused_with_a_code(pem: bytes, code: str) -> None:
    assert _code(lambda: private_key_from_pem(pem)) == code


@pytest.mark.parametrize(
    ("pem", "code"),
    [
        (b"", "key.malformed"),
        (b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "key.malformed"),
        (EC_PUBLIC, "key.wrong_type"),
        (PRIVATE, "key.wrong_type"),
    ],
)
def test_a_public_key_that_is_no_ed25519_pem_is_refused_with_a_code(pem: bytes, code: str) -> None:
    assert _code(lambda: public_key_from_pem(pem)) == code


def test_text_instead_of_bytes_is_malformed_not_a_type_error() -> None:
    text: object = PUBLIC.decode("ascii")
    assert _code(lambda: public_key_from_pem(text)) == "key.malformed"  # type: ignore[arg-type]
    assert _code(lambda: key_fingerprint(text)) == "key.malformed"  # type: ignore[arg-type]


def test_every_signer_refuses_a_bad_key_through_the_one_loader() -> None:
    assert _code(lambda: sign_payload(b"x", EC_PRIVATE, "k")) == "key.wrong_type"
    assert _code(lambda: public_key_of(b"garbage")) == "key.malformed"
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    command = lambda: sign_command(  # noqa: E731
        pump_id="P-1",
        command="x",
        args={},
        issued_at=now,
        expires_at=now + timedelta(minutes=1),
        nonce="n",
        counter=1,
        private_key_pem=b"garbage",
        key_id="k",
    )
    assert _code(command) == "key.malformed"


def test_a_signing_key_error_is_a_signature_error_so_pumps_log_it_as_a_refusal() -> None:
    assert issubclass(SigningKeyError, SignatureError)
    assert not issubclass(SigningKeyError, ValueError)


def _private_file(tmp_path: Path, data: bytes = PRIVATE, mode: int = 0o600) -> Path:
    path = tmp_path / "signing.key.pem"
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def test_a_good_private_key_file_reads_as_its_pem(tmp_path: Path) -> None:
    assert read_private_key(_private_file(tmp_path)) == PRIVATE


def test_a_missing_key_file_is_key_missing_and_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.pem"
    with pytest.raises(SigningKeyError) as error:
        read_private_key(path)
    assert error.value.code == "key.missing" and str(path) in error.value.message
    assert _code(lambda: read_public_key(path)) == "key.missing"


def test_a_key_path_that_is_no_regular_file_is_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.pem"
    folder.mkdir(mode=0o700)
    assert _code(lambda: read_private_key(folder)) == "key.unreadable"
    assert _code(lambda: read_public_key(folder)) == "key.unreadable"


def test_a_key_path_under_a_file_is_unreadable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _code(lambda: read_private_key(blocker / "key.pem")) == "key.unreadable"


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o660, 0o601])
def test_a_private_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _private_file(tmp_path, mode=mode)
    with pytest.raises(SigningKeyError) as error:
        read_private_key(path)
    assert error.value.code == "key.permissions"
    assert f"{mode:04o}" in error.value.message and "chmod 600" in error.value.message


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"not a key", "key.malformed"), (EC_PRIVATE, "key.wrong_type"), (PUBLIC, "key.wrong_type")],
)
def test_a_private_key_file_holding_no_ed25519_key_is_refused(tmp_path: Path, data: bytes, code: str) -> None:
    path = _private_file(tmp_path, data)
    with pytest.raises(SigningKeyError) as error:
        read_private_key(path)
    assert error.value.code == code and str(path) in error.value.message


def test_a_public_key_file_is_read_whatever_its_mode_but_must_be_ed25519(tmp_path: Path) -> None:
    path = tmp_path / "k.pub.pem"
    path.write_bytes(PUBLIC)
    os.chmod(path, 0o644)
    assert read_public_key(path) == PUBLIC
    path.write_bytes(EC_PUBLIC)
    assert _code(lambda: read_public_key(path)) == "key.wrong_type"


def test_a_written_private_key_is_owner_only_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "new.key.pem"
    write_private_key(path, PRIVATE)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_private_key(path) == PRIVATE
    with pytest.raises(FileExistsError):
        write_private_key(path, PRIVATE)


def test_a_written_public_key_is_readable_by_all_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "new.pub.pem"
    write_public_key(path, PUBLIC)
    assert path.stat().st_mode & 0o777 == 0o644
    assert read_public_key(path) == PUBLIC
    with pytest.raises(FileExistsError):
        write_public_key(path, PUBLIC)
