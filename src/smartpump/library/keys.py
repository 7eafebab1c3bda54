"""Ed25519 keys: the one loader of signing keys (PEM bytes; ``smartpump.keyfiles`` reads files), the
purposes a key serves, and the keys a pump trusts for each purpose.

Every signer and verifier of the system (libraries, configurations, software, commands, audit
checkpoints) loads its key here, so a key that is not an unencrypted Ed25519 PEM key is refused the
same way everywhere: ``key.malformed`` for bytes that are no usable PEM key, ``key.wrong_type`` for a
PEM key of another algorithm (or a public key given where a private one is needed, and back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from smartpump.errors import SignatureError, SigningKeyError

__all__ = [
    "ALGORITHM",
    "KeyPurpose",
    "TrustStore",
    "TrustedKey",
    "generate_keypair",
    "key_fingerprint",
    "private_key_from_pem",
    "public_key_from_pem",
    "public_key_of",
    "public_key_pem",
]

ALGORITHM: Final = "Ed25519"
_PRIVATE_MARKER = b"PRIVATE KEY-----"
_PUBLIC_MARKER = b"-----BEGIN PUBLIC KEY-----"


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key in unencrypted PEM (PKCS#8) bytes.

    Raises:
        SigningKeyError: ``key.malformed`` for bytes that are no usable PEM private key (an encrypted
            one included), ``key.wrong_type`` for a key of another algorithm or a public key.
    """
    if not isinstance(pem, bytes):
        raise SigningKeyError(f"a PEM key is bytes, got {type(pem).__name__}", code="key.malformed")
    if _PUBLIC_MARKER in pem and _PRIVATE_MARKER not in pem:
        raise SigningKeyError("a public key was given where a private key is needed", code="key.wrong_type")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise SigningKeyError(f"not a usable PEM private key: {error}", code="key.malformed") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"the private key is {type(key).__name__}, not an Ed25519 key", code="key.wrong_type"
        )
    return key


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM (SubjectPublicKeyInfo) bytes.

    Raises:
        SigningKeyError: ``key.malformed`` for bytes that are no usable PEM public key,
            ``key.wrong_type`` for a key of another algorithm or a private key.
    """
    if not isinstance(pem, bytes):
        raise SigningKeyError(f"a PEM key is bytes, got {type(pem).__name__}", code="key.malformed")
    if _PRIVATE_MARKER in pem:
        raise SigningKeyError("a private key was given where a public key is needed", code="key.wrong_type")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise SigningKeyError(f"not a usable PEM public key: {error}", code="key.malformed") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(
            f"the public key is {type(key).__name__}, not an Ed25519 key", code="key.wrong_type"
        )
    return key


def generate_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (PEM PKCS#8 private key, PEM SubjectPublicKeyInfo public key)."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private_pem, public_key_pem(private_key.public_key())


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """A public key as PEM SubjectPublicKeyInfo."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_of(private_key_pem: bytes) -> bytes:
    """The PEM public key of a PEM Ed25519 private key.

    Raises:
        SigningKeyError: as ``private_key_from_pem``.
    """
    return public_key_pem(private_key_from_pem(private_key_pem).public_key())


def key_fingerprint(public_key_pem_bytes: bytes) -> str:
    """A short stable id of a public key: the first 16 hex digits of SHA-256 of its raw bytes.

    Raises:
        SigningKeyError: as ``public_key_from_pem``.
    """
    raw = public_key_from_pem(public_key_pem_bytes).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


class KeyPurpose(StrEnum):
    """What one signing key signs; each key serves exactly one purpose (key separation)."""

    LIBRARY = "library"
    CONFIGURATION = "configuration"
    SOFTWARE = "software"
    COMMAND = "command"
    AUDIT = "audit"
    TRUST = "trust"
    """The trust root: signs only the pump's trusted-key list (``library.trust_list``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustedKey:
    """One public key a pump trusts, with its id and the one purpose it is trusted for."""

    key_id: str
    purpose: KeyPurpose
    public_pem: bytes


class TrustStore:
    """The public keys a pump trusts, each for one purpose only: a library signed with the command key is
    refused (``signature.wrong_purpose``), and so is a document naming a key the pump does not hold
    (``signature.unknown_key``)."""

    __slots__ = ("_by_id",)

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        """Hold the keys, refusing an unusable one, an id given twice, or one key under two purposes.

        Raises:
            SigningKeyError: ``key.malformed``, ``key.wrong_type``, ``key.duplicate`` (an id twice, or
                the same key material trusted for two purposes).
        """
        by_id: dict[str, TrustedKey] = {}
        raw_seen: dict[bytes, str] = {}
        for key in keys:
            if not key.key_id.strip():
                raise SigningKeyError("a trusted key needs a key id", code="key.malformed")
            if key.key_id in by_id:
                raise SigningKeyError(f"key id {key.key_id!r} is given twice", code="key.duplicate")
            raw = public_key_from_pem(key.public_pem).public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            if raw in raw_seen:
                raise SigningKeyError(
                    f"key {key.key_id!r} is the same key as {raw_seen[raw]!r}: one key serves one purpose",
                    code="key.duplicate",
                )
            raw_seen[raw] = key.key_id
            by_id[key.key_id] = key
        self._by_id = by_id

    @property
    def keys(self) -> tuple[TrustedKey, ...]:
        """Every trusted key, in the order given."""
        return tuple(self._by_id.values())

    def key_for(self, key_id: str, purpose: KeyPurpose) -> bytes:
        """The public key (PEM) with this id, when it is trusted for this purpose.

        Raises:
            SignatureError: ``signature.unknown_key`` for an id the pump does not trust,
                ``signature.wrong_purpose`` for a key trusted only for another purpose.
        """
        key = self._by_id.get(key_id)
        if key is None:
            raise SignatureError(f"key {key_id!r} is not trusted by this pump", code="signature.unknown_key")
        if key.purpose is not purpose:
            raise SignatureError(
                f"key {key_id!r} is trusted for {key.purpose.value} signatures only, not {purpose.value}",
                code="signature.wrong_purpose",
            )
        return key.public_pem

    def to_document(self) -> dict[str, list[dict[str, str]]]:
        """The published form: ``{"keys": [{key_id, purpose, algorithm, public_key_pem}, ...]}``."""
        return {
            "keys": [
                {
                    "key_id": key.key_id,
                    "purpose": key.purpose.value,
                    "algorithm": ALGORITHM,
                    "public_key_pem": key.public_pem.decode("ascii"),
                }
                for key in self._by_id.values()
            ]
        }

    @classmethod
    def from_document(cls, document: object) -> TrustStore:
        """Read the published form (``to_document``, or the server's ``GET /api/v1/keys``).

        Raises:
            SigningKeyError: ``key.malformed`` naming what is wrong, or as the constructor.
        """
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise SigningKeyError("a key set is an object with a 'keys' list", code="key.malformed")
        keys: list[TrustedKey] = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise SigningKeyError(f"key {index} is not an object", code="key.malformed")
            fields = {name: entry.get(name) for name in ("key_id", "purpose", "public_key_pem")}
            if not all(isinstance(value, str) for value in fields.values()):
                raise SigningKeyError(
                    f"key {index} needs key_id, purpose and public_key_pem texts", code="key.malformed"
                )
            if entry.get("algorithm", ALGORITHM) != ALGORITHM:
                raise SigningKeyError(f"key {index} is not an {ALGORITHM} key", code="key.wrong_type")
            try:
                purpose = KeyPurpose(str(fields["purpose"]))
            except ValueError:
                raise SigningKeyError(
                    f"key {index} has an unknown purpose {fields['purpose']!r}", code="key.malformed"
                ) from None
            keys.append(
                TrustedKey(
                    key_id=str(fields["key_id"]),
                    purpose=purpose,
                    public_pem=str(fields["public_key_pem"]).encode("ascii", errors="replace"),
                )
            )
        return cls(keys)
