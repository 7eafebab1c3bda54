"""Library versions, their contributors and approvals, and change requests."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartpump.server.db.models import (
    ChangeRequest,
    LibraryApproval,
    LibraryContributor,
    LibraryVersion,
    Pump,
)


def version_by_id(session: Session, library_id: int) -> LibraryVersion | None:
    """The library version with this id, if any."""
    return session.get(LibraryVersion, library_id)


def released_in(session: Session, facility_id: int) -> LibraryVersion | None:
    """The facility's released library version, if any."""
    return session.scalars(
        select(LibraryVersion).where(
            LibraryVersion.facility_id == facility_id, LibraryVersion.status == "released"
        )
    ).first()


def released_versions(session: Session, *, facility_ids: frozenset[int] | None) -> Sequence[LibraryVersion]:
    """Released versions of the allowed facilities."""
    query = select(LibraryVersion).where(LibraryVersion.status == "released")
    if facility_ids is not None:
        query = query.where(LibraryVersion.facility_id.in_(facility_ids))
    return session.scalars(query.order_by(LibraryVersion.facility_id)).all()


def highest_version(session: Session, facility_id: int) -> int:
    """The highest library version number used in a facility (0 when none): its versions and the versions
    its pumps report running (a factory-installed library included), so the next release is newer than
    anything a pump holds and the pumps never refuse it as a rollback."""
    stored = session.scalar(
        select(func.max(LibraryVersion.version)).where(LibraryVersion.facility_id == facility_id)
    )
    reported = session.scalar(
        select(func.max(Pump.installed_library_version)).where(Pump.facility_id == facility_id)
    )
    return max(int(stored or 0), int(reported or 0))


def list_versions(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    facility_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[LibraryVersion], int]:
    """Library versions, newest first; page and total."""
    query = select(LibraryVersion)
    if facility_ids is not None:
        query = query.where(LibraryVersion.facility_id.in_(facility_ids))
    if facility_id is not None:
        query = query.where(LibraryVersion.facility_id == facility_id)
    if status is not None:
        query = query.where(LibraryVersion.status == status)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(LibraryVersion.facility_id, LibraryVersion.version.desc()).limit(limit).offset(offset)
    ).all()
    return rows, total


def contributors(session: Session, library_id: int) -> frozenset[int]:
    """Ids of the users who authored or edited a version."""
    return frozenset(
        session.scalars(
            select(LibraryContributor.user_id).where(LibraryContributor.library_version_id == library_id)
        )
    )


def add_contributor(session: Session, library_id: int, user_id: int) -> None:
    """Remember that a user edited a version (once)."""
    if user_id not in contributors(session, library_id):
        session.add(LibraryContributor(library_version_id=library_id, user_id=user_id))


def approvals(session: Session, library_id: int) -> Sequence[LibraryApproval]:
    """Every approval ever given to a version, oldest first."""
    return session.scalars(
        select(LibraryApproval)
        .where(LibraryApproval.library_version_id == library_id)
        .order_by(LibraryApproval.approved_at, LibraryApproval.id)
    ).all()


def change_requests(
    session: Session, *, facility_ids: frozenset[int] | None, status: str | None, limit: int, offset: int
) -> tuple[Sequence[ChangeRequest], int]:
    """Change requests, newest first; page and total."""
    query = select(ChangeRequest)
    if facility_ids is not None:
        query = query.where(ChangeRequest.facility_id.in_(facility_ids))
    if status is not None:
        query = query.where(ChangeRequest.status == status)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(ChangeRequest.created_at.desc(), ChangeRequest.id.desc()).limit(limit).offset(offset)
    ).all()
    return rows, total


def change_request_by_id(session: Session, request_id: int) -> ChangeRequest | None:
    """The change request with this id, if any."""
    return session.get(ChangeRequest, request_id)


def change_requests_resolved_by(session: Session, library_id: int) -> Sequence[ChangeRequest]:
    """Change requests linked to the version that resolves them."""
    return session.scalars(
        select(ChangeRequest).where(ChangeRequest.resolved_by_id == library_id).order_by(ChangeRequest.id)
    ).all()
