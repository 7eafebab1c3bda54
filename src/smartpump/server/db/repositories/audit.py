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
    actor_contains: str | None = None,
    action_contains: str | None = None,
    target_contains: str | None = None,
    newest_first: bool = False,
) -> tuple[Sequence[AuditRecord], int]:
    """Records in seq order (or newest first), filtered exactly (``action``, ``actor``) or by text a field
    contains, case-insensitively (the target is "<object type> <object id>"); records without a facility
    only when unrestricted."""
    query = select(AuditRecord)
    if facility_ids is not None:
        query = query.where(AuditRecord.facility_id.in_(facility_ids))
    if action is not None:
        query = query.where(AuditRecord.action == action)
    if actor is not None:
        query = query.where(AuditRecord.actor == actor)
    if actor_contains:
        query = query.where(func.lower(AuditRecord.actor).contains(actor_contains.lower(), autoescape=True))
    if action_contains:
        query = query.where(func.lower(AuditRecord.action).contains(action_contains.lower(), autoescape=True))
    if target_contains:
        target = func.lower(AuditRecord.object_type + " " + func.coalesce(AuditRecord.object_id, ""))
        query = query.where(target.contains(target_contains.lower(), autoescape=True))
    if since is not None:
        query = query.where(AuditRecord.ts >= since)
    if until is not None:
        query = query.where(AuditRecord.ts < until)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    order = AuditRecord.seq.desc() if newest_first else AuditRecord.seq
    rows = session.scalars(query.order_by(order).limit(limit).offset(offset)).all()
    return rows, total
