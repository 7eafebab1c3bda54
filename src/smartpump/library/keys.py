"""Ed25519 keys from PEM bytes: the one loader of signing keys, pure (``smartpump.keyfiles`` reads files).

Every signer and verifier of the system (libraries, configurations, software, commands, audit
checkpoints) loads its key here, so a key that is not an unencrypted Ed25519 PEM key is refused the
same way everywhere: ``key.malformed`` for bytes that are no usable PEM key, ``key.wrong_type`` for a
PEM key of another algorithm (or a public key given where a private one is needed, and back).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from smartpump.errors import SigningKeyError

__all__ = [
    "generate_keypair",
    "key_fingerprint",
    "private_key_from_pem",
    "public_key_from_pem",
    "public_key_of",
    "public_key_pem",
]

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
