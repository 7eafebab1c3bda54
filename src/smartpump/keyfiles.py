"""Signing key files: read and checked at the edge (server, CLI), parsed by the core's one loader.

A private key file must exist (``key.missing``), be a readable regular file (``key.unreadable``), be
closed to the group and to others like an SSH key (``key.permissions``: no bit of 0o077), and hold an
unencrypted Ed25519 PEM key (``key.malformed``, ``key.wrong_type``). A public key file is checked the
same way, without the permission rule.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from smartpump.errors import SigningKeyError
from smartpump.library.keys import private_key_from_pem, public_key_from_pem

PRIVATE_KEY_MODE: Final = 0o600
PUBLIC_KEY_MODE: Final = 0o644
OPEN_BITS: Final = 0o077
"""Permission bits a private key file must not carry: any access for the group or for others."""

__all__ = ["read_private_key", "read_public_key", "write_private_key", "write_public_key"]


def read_private_key(path: Path) -> bytes:
    """The PEM bytes of the Ed25519 private key at ``path``, once the file and the key are accepted.

    Raises:
        SigningKeyError: ``key.missing``, ``key.unreadable``, ``key.permissions``, ``key.malformed``,
            ``key.wrong_type`` (each message names the file).
    """
    data, mode = _read(path, "private key")
    try:
        private_key_from_pem(data)
    except SigningKeyError as error:
        raise SigningKeyError(f"private key {path}: {error.message}", code=error.code) from None
    if mode & OPEN_BITS:
        raise SigningKeyError(
            f"private key {path} is open to others (mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}",
            code="key.permissions",
        )
    return data


def read_public_key(path: Path) -> bytes:
    """The PEM bytes of the Ed25519 public key at ``path``, once the file and the key are accepted.

    Raises:
        SigningKeyError: ``key.missing``, ``key.unreadable``, ``key.malformed``, ``key.wrong_type``.
    """
    data, _ = _read(path, "public key")
    try:
        public_key_from_pem(data)
    except SigningKeyError as error:
        raise SigningKeyError(f"public key {path}: {error.message}", code=error.code) from None
    return data


def write_private_key(path: Path, private_pem: bytes) -> None:
    """Create a private key file readable by its owner only, refusing to replace one (O_EXCL: no race).

    Raises:
        OSError: the file exists or cannot be written.
    """
    _write_new(path, private_pem, PRIVATE_KEY_MODE)


def write_public_key(path: Path, public_pem: bytes) -> None:
    """Create a public key file readable by all (0644), refusing to replace one (O_EXCL: no race).

    Raises:
        OSError: the file exists or cannot be written.
    """
    _write_new(path, public_pem, PUBLIC_KEY_MODE)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def _read(path: Path, what: str) -> tuple[bytes, int]:
    try:
        status = path.stat()
    except FileNotFoundError:
        raise SigningKeyError(f"{what} {path} does not exist", code="key.missing") from None
    except OSError as error:
        raise SigningKeyError(f"cannot read {what} {path}: {error.strerror}", code="key.unreadable") from None
    if not stat.S_ISREG(status.st_mode):
        raise SigningKeyError(f"{what} {path} is not a regular file", code="key.unreadable")
    try:
        return path.read_bytes(), status.st_mode
    except OSError as error:
        raise SigningKeyError(f"cannot read {what} {path}: {error.strerror}", code="key.unreadable") from None
