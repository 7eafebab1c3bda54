"""The server's keyring: one Ed25519 signing key per purpose (library, configuration, software, command,
trust root, audit checkpoint), each with its id and status, kept in one directory, rotatable.

The directory holds ``keyring.json`` (every key's id, purpose, status and creation time) and, per key,
``<purpose>-<key_id>.key.pem`` (mode 0600) and ``<purpose>-<key_id>.pub.pem``. A key is

* ``published``: pumps are told to trust it, nothing is signed with it yet (the first step of a rotation);
* ``active``: the one key that signs for its purpose (published too);
* ``retired``: neither signs nor is published; pumps drop it.

The pumps learn these states from the trust list (``trust_list``), signed by the trust-root key and
numbered from ``trust-list.json`` in the same directory (``next_trust_list_version``).

In development a missing key of a purpose is made on start; in production the server refuses to start
without one (``key.missing``), so no key is ever made up behind the operator's back.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from smartpump.errors import SigningKeyError
from smartpump.keyfiles import read_private_key, read_public_key, write_private_key, write_public_key
from smartpump.library.keys import (
    KeyPurpose,
    TrustedKey,
    TrustStore,
    generate_keypair,
    key_fingerprint,
    public_key_of,
)
from smartpump.library.trust_list import ListedKey, ListedStatus, TrustList

KEYRING_FILE: Final = "keyring.json"
KEYRING_FORMAT: Final = "smartpump.keyring/1"
TRUST_LIST_FILE: Final = "trust-list.json"
TRUST_LIST_FORMAT: Final = "smartpump.trust-list-version/1"
PUMP_PURPOSES: Final = (
    KeyPurpose.LIBRARY,
    KeyPurpose.CONFIGURATION,
    KeyPurpose.SOFTWARE,
    KeyPurpose.COMMAND,
    KeyPurpose.TRUST,
)
"""Purposes whose keys pumps verify (the trust root signs their trust list); the audit key signs checkpoints
only the server and auditors read."""


class KeyStatus(StrEnum):
    """Where a key is in its life: published (trusted, not signing), active (signing), retired."""

    PUBLISHED = "published"
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    """One key of the keyring: its id (the public key's fingerprint), purpose, status and PEM halves
    (``private_pem`` is empty for a retired key, whose private file is not read)."""

    key_id: str
    purpose: KeyPurpose
    status: KeyStatus
    created_at: str
    private_pem: bytes
    public_pem: bytes


@dataclass(frozen=True, slots=True)
class Keyring:
    """Every key the server holds; ``signer(purpose)`` is the one that signs for a purpose."""

    keys: tuple[SigningKey, ...]

    def signer(self, purpose: KeyPurpose) -> SigningKey:
        """The active key of a purpose.

        Raises:
            SigningKeyError: ``key.missing`` when the purpose has no active key.
        """
        for key in self.keys:
            if key.purpose is purpose and key.status is KeyStatus.ACTIVE:
                return key
        raise SigningKeyError(f"no active {purpose.value} signing key", code="key.missing")

    def published(self) -> tuple[SigningKey, ...]:
        """The keys pumps and auditors are told to trust: active and published, not retired."""
        return tuple(k for k in self.keys if k.status is not KeyStatus.RETIRED)

    def trust_store(self) -> TrustStore:
        """What a pump of this deployment trusts: every published key of the pump purposes."""
        return TrustStore(
            TrustedKey(key_id=k.key_id, purpose=k.purpose, public_pem=k.public_pem)
            for k in self.published()
            if k.purpose in PUMP_PURPOSES
        )

    def trust_list(self, version: int) -> TrustList:
        """The pumps' trust list at ``version``: every key of the pump purposes with its status (retired keys
        listed so pumps revoke them)."""
        return TrustList(
            version=version,
            keys=tuple(
                ListedKey(
                    key_id=k.key_id,
                    purpose=k.purpose,
                    public_pem=k.public_pem,
                    status=ListedStatus(k.status.value),
                )
                for k in self.keys
                if k.purpose in PUMP_PURPOSES
            ),
        )

    def key(self, key_id: str) -> SigningKey:
        """The key with this id.

        Raises:
            SigningKeyError: ``key.unknown``.
        """
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise SigningKeyError(f"no key {key_id!r} in the keyring", code="key.unknown")


def load(directory: Path, *, create_missing: bool, now: datetime) -> Keyring:
    """The keyring in ``directory``; with ``create_missing`` (development) a purpose without an active key
    gets a new one.

    Raises:
        SigningKeyError: ``key.missing`` (no active key of a purpose, outside development), ``key.malformed``
            (a keyring file that is not one, or a key whose id is not its fingerprint), and any refusal of
            ``keyfiles`` for a key file (unreadable, open to others, not Ed25519).
    """
    entries = _read_manifest(directory)
    active = {e["purpose"] for e in entries if e["status"] == KeyStatus.ACTIVE}
    missing = [p for p in KeyPurpose if p.value not in active]
    if missing and not create_missing:
        names = ", ".join(p.value for p in missing)
        raise SigningKeyError(
            f"no active signing key for {names} in {directory}; create each with "
            "`smartpump keys add --purpose PURPOSE`",
            code="key.missing",
        )
    for purpose in missing:
        entries.append(_new_key(directory, purpose, KeyStatus.ACTIVE, now))
    if missing:
        _write_manifest(directory, entries)
    return Keyring(tuple(_load_key(directory, entry) for entry in entries))


def add_key(directory: Path, purpose: KeyPurpose, now: datetime) -> SigningKey:
    """A new key for a purpose: active when the purpose has none, else published (trusted, not signing)
    until ``activate``."""
    entries = _read_manifest(directory)
    has_active = any(e["purpose"] == purpose and e["status"] == KeyStatus.ACTIVE for e in entries)
    entry = _new_key(directory, purpose, KeyStatus.PUBLISHED if has_active else KeyStatus.ACTIVE, now)
    entries.append(entry)
    _write_manifest(directory, entries)
    return _load_key(directory, entry)


def activate(directory: Path, key_id: str) -> SigningKey:
    """Make a published key the signer of its purpose; the former active key stays published.

    Raises:
        SigningKeyError: ``key.unknown``, ``key.retired`` (a retired key never comes back).
    """
    entries = _read_manifest(directory)
    entry = _entry(entries, key_id)
    if entry["status"] == KeyStatus.RETIRED:
        raise SigningKeyError(f"key {key_id} is retired and cannot sign again", code="key.retired")
    for other in entries:
        if other["purpose"] == entry["purpose"] and other["status"] == KeyStatus.ACTIVE:
            other["status"] = KeyStatus.PUBLISHED.value
    entry["status"] = KeyStatus.ACTIVE.value
    _write_manifest(directory, entries)
    return _load_key(directory, entry)


def retire(directory: Path, key_id: str) -> SigningKey:
    """Stop publishing a key that no longer signs (pumps drop it).

    Raises:
        SigningKeyError: ``key.unknown``, ``key.active`` (activate its successor first).
    """
    entries = _read_manifest(directory)
    entry = _entry(entries, key_id)
    if entry["status"] == KeyStatus.ACTIVE:
        raise SigningKeyError(
            f"key {key_id} still signs {entry['purpose']} documents; activate its successor first",
            code="key.active",
        )
    entry["status"] = KeyStatus.RETIRED.value
    _write_manifest(directory, entries)
    return _load_key(directory, entry)


def next_trust_list_version(directory: Path) -> int:
    """Take the next trust-list version (one above the last taken, 1 at first) and record it in
    ``trust-list.json`` beside the keyring, under an exclusive lock, so versions only grow and are never
    given twice, whichever replica or console publishes.

    Raises:
        SigningKeyError: ``key.malformed`` for a version file that is not one.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / f"{TRUST_LIST_FILE}.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _take_trust_list_version(directory / TRUST_LIST_FILE)


def _take_trust_list_version(path: Path) -> int:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        last = 0
    except (OSError, ValueError) as error:
        raise SigningKeyError(f"cannot read {path}: {error}", code="key.malformed") from None
    else:
        version = document.get("version") if isinstance(document, dict) else None
        if (
            not isinstance(document, dict)
            or document.get("format") != TRUST_LIST_FORMAT
            or isinstance(version, bool)
            or not isinstance(version, int)
        ):
            raise SigningKeyError(f"{path} is not a trust-list version file", code="key.malformed")
        last = version
    partial = path.with_suffix(".json.partial")
    partial.write_text(
        json.dumps({"format": TRUST_LIST_FORMAT, "version": last + 1}) + "\n", encoding="utf-8"
    )
    os.replace(partial, path)
    return last + 1


def manifest(directory: Path) -> list[dict[str, str]]:
    """Every key of the keyring as listed (id, purpose, status, creation time), without reading key files.

    Raises:
        SigningKeyError: ``key.unreadable``, ``key.malformed`` for a keyring file that is not one.
    """
    return _read_manifest(directory)


def _stem(purpose: str, key_id: str) -> str:
    return f"{purpose}-{key_id}"


def _new_key(directory: Path, purpose: KeyPurpose, status: KeyStatus, now: datetime) -> dict[str, str]:
    private_pem, public_pem = generate_keypair()
    key_id = key_fingerprint(public_pem)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = _stem(purpose.value, key_id)
    write_private_key(directory / f"{stem}.key.pem", private_pem)
    write_public_key(directory / f"{stem}.pub.pem", public_pem)
    return {"key_id": key_id, "purpose": purpose.value, "status": status.value, "created_at": now.isoformat()}


def _load_key(directory: Path, entry: dict[str, str]) -> SigningKey:
    purpose, status, key_id = KeyPurpose(entry["purpose"]), KeyStatus(entry["status"]), entry["key_id"]
    stem = _stem(purpose.value, key_id)
    if status is KeyStatus.RETIRED:
        private_pem, public_pem = b"", read_public_key(directory / f"{stem}.pub.pem")
    else:
        private_pem = read_private_key(directory / f"{stem}.key.pem")
        public_pem = public_key_of(private_pem)
    if key_fingerprint(public_pem) != key_id:
        raise SigningKeyError(
            f"key file {stem} does not hold key {key_id} (its fingerprint differs)", code="key.malformed"
        )
    return SigningKey(
        key_id=key_id,
        purpose=purpose,
        status=status,
        created_at=entry["created_at"],
        private_pem=private_pem,
        public_pem=public_pem,
    )


def _entry(entries: Iterable[dict[str, str]], key_id: str) -> dict[str, str]:
    for entry in entries:
        if entry["key_id"] == key_id:
            return entry
    raise SigningKeyError(f"no key {key_id!r} in the keyring", code="key.unknown")


def _read_manifest(directory: Path) -> list[dict[str, str]]:
    path = directory / KEYRING_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise SigningKeyError(f"cannot read keyring {path}: {error}", code="key.unreadable") from None
    try:
        document = json.loads(text)
        if document.get("format") != KEYRING_FORMAT:
            raise ValueError(f"format is not {KEYRING_FORMAT!r}")
        entries: list[dict[str, str]] = []
        for raw in document["keys"]:
            entry = {name: str(raw[name]) for name in ("key_id", "purpose", "status", "created_at")}
            KeyPurpose(entry["purpose"])
            KeyStatus(entry["status"])
            entries.append(entry)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SigningKeyError(f"keyring {path} is not a keyring: {error}", code="key.malformed") from None
    return entries


def _write_manifest(directory: Path, entries: list[dict[str, str]]) -> None:
    """Replace ``keyring.json`` atomically (write a sibling, then rename)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / KEYRING_FILE
    partial = path.with_suffix(".json.partial")
    text = json.dumps({"format": KEYRING_FORMAT, "keys": entries}, indent=2) + "\n"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
