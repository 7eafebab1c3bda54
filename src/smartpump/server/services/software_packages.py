"""Pump software packages under two-person control: the uploader's artefact is hashed by the server (never a
typed hash), and a second person approves it before it is signed with the software key and deployable.

The approver is another biomedical engineer or an admin, never the uploader
(``software.separation_of_duties``); every registration, approval and denial is audited.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.library.keys import KeyPurpose
from smartpump.pump.software import is_version, sign_package, version_key
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models_fleet_ops import SoftwarePackage
from smartpump.server.db.unit_of_work import in_own_transaction
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.services.context import SigningContext
from smartpump.server.vocabulary import PackageStatus

MODEL_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def register_package(
    session: Session, state: SigningContext, access: Access, *, model: str, version: str, artefact: bytes
) -> SoftwarePackage:
    """Record an uploaded software artefact for a model: its SHA-256 and size computed here; it waits for a
    second person's approval (refused: an empty artefact, a version not above the model's latest).

    Raises:
        InvalidInputError: ``software.invalid`` (model or version), ``software.empty``.
        ConflictError: ``software.downgrade``.
    """
    if not MODEL_PATTERN.fullmatch(model) or not is_version(version):
        raise InvalidInputError(
            "model must be a plain name and version dotted digits", code="software.invalid"
        )
    if not artefact:
        raise InvalidInputError("the uploaded software artefact is empty", code="software.empty")
    held = [p.version for p in session.scalars(select(SoftwarePackage).where(SoftwarePackage.model == model))]
    if held and version_key(version) <= max(version_key(v) for v in held):
        raise ConflictError(
            f"software {version} is not above the latest for {model}", code="software.downgrade"
        )
    sha256 = hashlib.sha256(artefact).hexdigest()
    row = SoftwarePackage(
        model=model,
        version=version,
        sha256=sha256,
        size_bytes=len(artefact),
        status=PackageStatus.PENDING.value,
        signed=None,
        created_by=access.principal.username,
        created_at=state.clock.now(),
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        state.clock,
        actor=access.principal.username,
        action="software.registered",
        object_type="software",
        object_id=f"{model}:{version}",
        details={"sha256": sha256, "size_bytes": len(artefact), "status": row.status},
    )
    return row


def approve_package(
    session: Session, state: SigningContext, access: Access, package_id: int
) -> SoftwarePackage:
    """A second person's approval: the package is signed with the software key and may be deployed.

    Raises:
        NotFoundError: ``software.not_found``.
        ConflictError: ``software.not_pending`` (approved already).
        AccessDeniedError: ``software.separation_of_duties`` for the uploader (audited).
    """
    row = session.get(SoftwarePackage, package_id)
    if row is None:
        raise NotFoundError(f"no software package {package_id}", code="software.not_found")
    if row.status != PackageStatus.PENDING.value:
        raise ConflictError(f"software package {package_id} is {row.status}", code="software.not_pending")
    where = f"{row.model}:{row.version}"
    if row.created_by == access.principal.username:
        with in_own_transaction(session):
            audit.append(
                session,
                state.clock,
                actor=access.principal.username,
                action="software.approved",
                object_type="software",
                object_id=where,
                outcome="denied",
                details={"reason": "uploader of this package"},
            )
        raise AccessDeniedError(
            "the uploader of a software package cannot approve it; a second person must",
            code="software.separation_of_duties",
        )
    signer = state.keys.signer(KeyPurpose.SOFTWARE)
    signed = sign_package(row.model, row.version, row.sha256, signer.private_pem, signer.key_id)
    row.signed = json.dumps(signed.to_document(), sort_keys=True)
    row.status = PackageStatus.APPROVED
    row.approved_by = access.principal.username
    row.approved_at = state.clock.now()
    audit.append(
        session,
        state.clock,
        actor=access.principal.username,
        action="software.approved",
        object_type="software",
        object_id=where,
        details={"sha256": row.sha256, "uploaded_by": row.created_by, "key_id": signer.key_id},
    )
    return row


def list_packages(session: Session) -> list[SoftwarePackage]:
    """Every software package, newest first."""
    return list(session.scalars(select(SoftwarePackage).order_by(SoftwarePackage.id.desc())))
