"""Reading the audit log (appending lives in ``server.audit``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartpump.server.db.models import AuditRecord


def list_records(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    action: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[AuditRecord], int]:
    """Records in seq order, filtered; records without a facility only when unrestricted."""
    query = select(AuditRecord)
    if facility_ids is not None:
        query = query.where(AuditRecord.facility_id.in_(facility_ids))
    if action is not None:
        query = query.where(AuditRecord.action == action)
    if actor is not None:
        query = query.where(AuditRecord.actor == actor)
    if since is not None:
        query = query.where(AuditRecord.ts >= since)
    if until is not None:
        query = query.where(AuditRecord.ts < until)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(query.order_by(AuditRecord.seq).limit(limit).offset(offset)).all()
    return rows, total
