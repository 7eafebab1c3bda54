"""Ed25519 signatures over a library's canonical bytes, and the rules a pump applies before installing.

``verify`` refuses, in this order: a malformed document or unknown algorithm, a signature that does
not match the exact payload, a payload that is not a canonical library, a library for another
hospital, and a version not strictly newer than the installed one (anti-rollback).

The signed envelope (``SignedDocument``) and the signature primitives (``sign_payload``,
``verify_signature``) are shared with the pump configuration (``smartpump.pump.configuration``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from cryptography.exceptions import InvalidSignature

from smartpump.errors import LibraryFormatError, RollbackError, SignatureError
from smartpump.library.formats import json_format
from smartpump.library.keys import ALGORITHM as ALGORITHM
from smartpump.library.keys import generate_keypair as generate_keypair
from smartpump.library.keys import key_fingerprint as key_fingerprint
from smartpump.library.keys import private_key_from_pem, public_key_from_pem
from smartpump.library.keys import public_key_of as public_key_of
from smartpump.library.keys import public_key_pem as public_key_pem
from smartpump.library.model import DrugLibrary

SIGNED_FORMAT: Final = "smartpump.signed-library/1"
SIGNATURE_BYTES: Final = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedDocument:
    """Canonical bytes with who signed them (``key_id``), how, and the signature; each subclass names its
    ``FORMAT`` and what it is (``WHAT``, for messages)."""

    FORMAT: ClassVar[str]
    WHAT: ClassVar[str]

    payload: bytes
    key_id: str
    algorithm: str
    signature: bytes

    def to_json(self) -> str:
        """The signed document: payload and signature in base64, so the signed bytes travel exactly."""
        document = {
            "format": self.FORMAT,
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "payload": base64.b64encode(self.payload).decode("ascii"),
        }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Read a signed document written by ``to_json``.

        Raises:
            SignatureError: ``signature.malformed`` when it is not such a document.
        """
        try:
            document = json.loads(text)
        except ValueError as error:
            raise SignatureError(f"{cls.WHAT} is not JSON: {error}", code="signature.malformed") from None
        if not isinstance(document, dict):
            raise SignatureError(f"{cls.WHAT} must be a JSON object", code="signature.malformed")
        if document.get("format") != cls.FORMAT:
            raise SignatureError(
                f"{cls.WHAT} format must be {cls.FORMAT!r}, got {document.get('format')!r}",
                code="signature.malformed",
            )
        texts: dict[str, str] = {}
        for name in ("algorithm", "key_id", "signature", "payload"):
            value = document.get(name)
            if not isinstance(value, str) or not value:
                raise SignatureError(f"{cls.WHAT} lacks a {name!r} text", code="signature.malformed")
            texts[name] = value
        return cls(
            payload=_b64(texts["payload"], "payload"),
            key_id=texts["key_id"],
            algorithm=texts["algorithm"],
            signature=_b64(texts["signature"], "signature"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedLibrary(SignedDocument):
    """A library's canonical bytes with who signed them (``key_id``), how, and the signature."""

    FORMAT: ClassVar[str] = SIGNED_FORMAT
    WHAT: ClassVar[str] = "signed library"


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what} is not valid base64", code="signature.malformed") from None


def sign(library: DrugLibrary, private_key_pem: bytes, key_id: str) -> SignedLibrary:
    """Sign the library's canonical bytes (``json_format.canonical_bytes``) with an Ed25519 key.

    Raises:
        SignatureError: ``key.malformed`` / ``key.wrong_type`` for a key that is not an unencrypted
            Ed25519 PEM key,
            ``signature.key_id`` for an empty key id.
    """
    payload = json_format.canonical_bytes(library)
    return SignedLibrary(
        payload=payload,
        key_id=key_id,
        algorithm=ALGORITHM,
        signature=sign_payload(payload, private_key_pem, key_id),
    )


def sign_payload(payload: bytes, private_key_pem: bytes, key_id: str) -> bytes:
    """The Ed25519 signature of exact bytes.

    Raises:
        SignatureError: ``key.malformed`` / ``key.wrong_type`` for a key that is not an unencrypted
            Ed25519 PEM key,
            ``signature.key_id`` for an empty key id.
    """
    if not key_id.strip():
        raise SignatureError("a key id is needed to sign", code="signature.key_id")
    return private_key_from_pem(private_key_pem).sign(payload)


def verify_signature(signed: SignedDocument, public_key_pem: bytes) -> None:
    """Accept a document only when its algorithm is Ed25519 and its signature matches the exact payload.

    Raises:
        SignatureError: ``signature.algorithm``, ``key.malformed``, ``key.wrong_type``, ``signature.invalid``.
    """
    if signed.algorithm != ALGORITHM:
        raise SignatureError(
            f"unsupported signature algorithm {signed.algorithm!r} (only {ALGORITHM})",
            code="signature.algorithm",
        )
    key = public_key_from_pem(public_key_pem)
    if len(signed.signature) != SIGNATURE_BYTES:
        raise SignatureError(
            f"an {ALGORITHM} signature has {SIGNATURE_BYTES} bytes, got {len(signed.signature)}",
            code="signature.invalid",
        )
    try:
        key.verify(signed.signature, signed.payload)
    except InvalidSignature:
        raise SignatureError(
            f"signature does not verify with this key (signed by key {signed.key_id!r})",
            code="signature.invalid",
        ) from None


def verify(
    signed: SignedLibrary,
    public_key_pem: bytes,
    *,
    installed_version: int | None = None,
    hospital_id: str | None = None,
) -> DrugLibrary:
    """The signed library, once its signature, hospital and version are all accepted.

    Args:
        signed: the signed document.
        public_key_pem: the trusted Ed25519 public key (PEM).
        installed_version: version installed now; the signed one must be strictly greater.
        hospital_id: the hospital the library must be for.

    Raises:
        SignatureError: ``signature.algorithm``, ``key.malformed``, ``key.wrong_type``,
            ``signature.invalid`` (the signature does not match the exact payload), ``signature.payload``
            (signed bytes that are not a canonical library), ``signature.wrong_hospital``.
        RollbackError: ``signature.rollback``, the version is not newer than the installed one.
    """
    verify_signature(signed, public_key_pem)
    library = _load_payload(signed.payload)
    if hospital_id is not None and library.hospital_id != hospital_id:
        raise SignatureError(
            f"library is for hospital {library.hospital_id!r}, not {hospital_id!r}",
            code="signature.wrong_hospital",
        )
    if installed_version is not None and library.version <= installed_version:
        raise RollbackError(
            f"library version {library.version} is not newer than installed version {installed_version}"
        )
    return library


def _load_payload(payload: bytes) -> DrugLibrary:
    """The library in signed bytes, refused unless those bytes are exactly its canonical form."""
    try:
        library = json_format.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, LibraryFormatError) as error:
        raise SignatureError(
            f"signed payload is not a valid library: {error}", code="signature.payload"
        ) from None
    if json_format.canonical_bytes(library) != payload:
        raise SignatureError("signed payload is not in canonical form", code="signature.payload")
    return library
