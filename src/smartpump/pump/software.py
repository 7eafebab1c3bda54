"""Pump software packages: the signed package format, its verification on the pump, and the slot that
holds the running version and a verified one waiting to activate.

A package is Ed25519-signed over ``package_payload`` (format, model, version and the image's SHA-256 as
sorted compact JSON). ``verify_package`` refuses, in this order: a document that is not a package
(``software.malformed``), an unusable key (``key.malformed``, ``key.wrong_type``), a signature that does
not match (``software.forged``), a package for another model (``software.wrong_model``) and a version not
strictly above the one the pump holds (``software.downgrade``). A ``SoftwareSlot`` keeps a verified
package pending; the pump activates it only when every channel is idle.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from smartpump.errors import PumpError, SignatureError
from smartpump.library.signing import ALGORITHM, SignedDocument, sign_payload, verify_signature

PACKAGE_FORMAT: Final = "smartpump.software/1"
FACTORY_VERSION: Final = "1.0.0"
_VERSION: Final = re.compile(r"\d{1,6}(\.\d{1,6}){0,3}")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")


def is_version(text: str) -> bool:
    """Whether ``text`` is a software version: one to four dot-separated groups of 1-6 digits."""
    return _VERSION.fullmatch(text) is not None


def version_key(version: str) -> tuple[int, ...]:
    """A software version as comparable integers ("1.10.0" > "1.9.3").

    Raises:
        PumpError: ``software.version_invalid`` for text that is not a version.
    """
    if not is_version(version):
        raise PumpError(f"{version!r} is not a software version", code="software.version_invalid")
    return tuple(int(part) for part in version.split("."))


def package_payload(model: str, version: str, sha256: str) -> bytes:
    """The exact bytes a software package signature covers."""
    body = {"format": PACKAGE_FORMAT, "model": model, "version": version, "sha256": sha256}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedPackage:
    """A software package as a ``software.install`` command carries it: what it is and its signature."""

    model: str
    version: str
    sha256: str
    key_id: str
    signature: bytes

    @property
    def payload(self) -> bytes:
        """The bytes the signature covers."""
        return package_payload(self.model, self.version, self.sha256)

    def to_document(self) -> dict[str, str]:
        """The JSON-ready document (signature in base64)."""
        return {
            "format": PACKAGE_FORMAT,
            "model": self.model,
            "version": self.version,
            "sha256": self.sha256,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, object]) -> SignedPackage:
        """Read a package document; every field is a string and the format is ``PACKAGE_FORMAT``.

        Raises:
            SignatureError: ``software.malformed`` naming what is wrong.
        """
        fields: dict[str, str] = {}
        for name in ("format", "model", "version", "sha256", "key_id", "signature"):
            value = document.get(name)
            if not isinstance(value, str):
                raise _malformed(f"{name} is missing or not text")
            fields[name] = value
        if fields["format"] != PACKAGE_FORMAT:
            raise _malformed(f"format {fields['format']!r} is not {PACKAGE_FORMAT!r}")
        problem = _problem(fields["model"], fields["version"], fields["sha256"])
        if problem is not None:
            raise _malformed(problem)
        try:
            signature = base64.b64decode(fields["signature"], validate=True)
        except (binascii.Error, ValueError):
            raise _malformed("the signature is not base64") from None
        return cls(
            model=fields["model"],
            version=fields["version"],
            sha256=fields["sha256"],
            key_id=fields["key_id"],
            signature=signature,
        )


def _malformed(problem: str) -> SignatureError:
    return SignatureError(f"not a software package: {problem}", code="software.malformed")


def _problem(model: str, version: str, sha256: str) -> str | None:
    """What makes a package's model, version or hash unusable, or None."""
    if not model:
        return "the model is empty"
    if not is_version(version):
        return f"version {version!r} is not dotted digits"
    if not _SHA256.fullmatch(sha256):
        return "sha256 is not 64 lowercase hex digits"
    return None


def sign_package(model: str, version: str, sha256: str, private_key_pem: bytes, key_id: str) -> SignedPackage:
    """Sign a package for one model (the server's side of the format).

    Raises:
        SignatureError: ``software.malformed`` for a version or hash that is not one,
            ``key.malformed``, ``key.wrong_type``, ``signature.key_id``.
    """
    problem = _problem(model, version, sha256)
    if problem is not None:
        raise SignatureError(f"cannot sign this software package: {problem}", code="software.malformed")
    return SignedPackage(
        model=model,
        version=version,
        sha256=sha256,
        key_id=key_id,
        signature=sign_payload(package_payload(model, version, sha256), private_key_pem, key_id),
    )


def verify_package(
    document: Mapping[str, object], public_key_pem: bytes, *, model: str, installed: str
) -> str:
    """The version of a package once it verifies for this model and is strictly above ``installed``.

    Raises:
        SignatureError: ``software.malformed``, ``key.malformed``, ``key.wrong_type``, ``software.forged``,
            ``software.wrong_model``, ``software.downgrade`` (same or older version).
        PumpError: ``software.version_invalid`` when ``installed`` is not a version.
    """
    held = version_key(installed)
    package = SignedPackage.from_document(document)
    signed = SignedDocument(
        payload=package.payload, key_id=package.key_id, algorithm=ALGORITHM, signature=package.signature
    )
    try:
        verify_signature(signed, public_key_pem)
    except SignatureError as error:
        if error.code != "signature.invalid":
            raise
        raise SignatureError(
            f"software package {package.version} signature does not verify (key {package.key_id!r})",
            code="software.forged",
        ) from None
    if package.model != model:
        raise SignatureError(
            f"software package is for {package.model}, this pump is {model}", code="software.wrong_model"
        )
    if version_key(package.version) <= held:
        raise SignatureError(
            f"software {package.version} is not newer than {installed} held by the pump",
            code="software.downgrade",
        )
    return package.version


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftwareActivation:
    """A pending version promoted to running, and the version it replaced."""

    version: str
    previous_version: str


@dataclass(slots=True)
class SoftwareSlot:
    """The version a pump runs and, once a package verified, the version waiting for every channel to be
    idle; a new package must be above both (anti-rollback)."""

    installed_version: str = FACTORY_VERSION
    pending_version: str | None = None

    def __post_init__(self) -> None:
        version_key(self.installed_version)
        if self.pending_version is not None and version_key(self.pending_version) <= version_key(
            self.installed_version
        ):
            raise PumpError(
                f"pending software {self.pending_version} is not above the installed "
                f"{self.installed_version}",
                code="software.version_invalid",
            )

    @property
    def held_version(self) -> str:
        """The highest version the pump holds: the pending one if any, else the installed one."""
        return self.pending_version if self.pending_version is not None else self.installed_version

    def install(self, document: Mapping[str, object], public_key_pem: bytes, model: str) -> str:
        """Verify a package against ``held_version`` and keep it pending; returns its version.

        Raises:
            SignatureError: as ``verify_package``; the slot is unchanged.
        """
        version = verify_package(document, public_key_pem, model=model, installed=self.held_version)
        self.pending_version = version
        return version

    def activate(self) -> SoftwareActivation:
        """Promote the pending version to installed (the caller checks that every channel is idle).

        Raises:
            PumpError: ``software.nothing_pending`` when no package waits.
        """
        if self.pending_version is None:
            raise PumpError("no software package waits to be activated", code="software.nothing_pending")
        activation = SoftwareActivation(version=self.pending_version, previous_version=self.installed_version)
        self.installed_version = self.pending_version
        self.pending_version = None
        return activation
