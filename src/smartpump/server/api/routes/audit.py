"""The audit log: read (auditors) and chain verification."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from smartpump.server import audit_anchors
from smartpump.server.api.deps import PageDep, SessionDep, StateDep, require_roles
from smartpump.server.api.schemas import AuditRecordOut, AuditVerifyOut
from smartpump.server.auth import Access, Role
from smartpump.server.db.repositories import audit as repo
from smartpump.server.errors import AccessDeniedError

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Access, require_roles(Role.AUDITOR)]


@router.get("")
def list_audit(
    access: Auditor,
    session: SessionDep,
    page: PageDep,
    response: Response,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditRecordOut]:
    """Audit records in chain order (facility auditors see their facilities' records)."""
    records, total = repo.list_records(
        session,
        facility_ids=access.scope,
        action=action,
        actor=actor,
        since=since,
        until=until,
        limit=page.limit,
        offset=page.offset,
    )
    page.headers(response, total)
    return [
        AuditRecordOut(
            seq=r.seq,
            ts=r.ts,
            actor=r.actor,
            action=r.action,
            object_type=r.object_type,
            object_id=r.object_id,
            facility_id=r.facility_id,
            outcome=r.outcome,
            details=json.loads(r.details),
            prev_hash=r.prev_hash,
            hash=r.hash,
        )
        for r in records
    ]


@router.get("/verify")
def verify_audit(
    access: Annotated[Access, require_roles(Role.AUDITOR, Role.ADMIN)], session: SessionDep, state: StateDep
) -> AuditVerifyOut:
    """Recompute the whole chain and check it against the signed checkpoints kept outside the database
    (deployment-wide auditors and admins only)."""
    if not access.is_global:
        raise AccessDeniedError(
            "verifying the whole chain needs a deployment-wide grant", code="audit.forbidden"
        )
    report = audit_anchors.verify_anchored(session, state.settings.audit_anchor_dir, state.keys)
    return AuditVerifyOut(
        ok=report.ok,
        records_checked=report.records_checked,
        checkpoints_checked=report.checkpoints_checked,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
    )
