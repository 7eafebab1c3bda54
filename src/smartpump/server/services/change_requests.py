"""Change requests: a pharmacist's or CQI's request to change a library, with a severity, and the draft
that resolves it (released with it, then done)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.library.model import LibraryStatus
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models import ChangeRequest, LibraryVersion
from smartpump.server.db.repositories import libraries as repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.services.library_lifecycle import EDITABLE, get_version
from smartpump.server.vocabulary import ChangeRequestSeverity, ChangeRequestStatus

logger = logging.getLogger("smartpump.server.library")


def create_change_request(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    facility_id: int,
    library_id: int | None,
    title: str,
    reason: str,
    severity: ChangeRequestSeverity = ChangeRequestSeverity.MEDIUM,
) -> ChangeRequest:
    """Ask for a library change, with the reason and how much it matters."""
    if not access.allows(facility_id):
        raise AccessDeniedError(
            "you cannot request changes in this facility", code="change_request.forbidden"
        )
    if users_repo.facility_by_id(session, facility_id) is None:
        raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
    if library_id is not None and get_version(session, access, library_id).facility_id != facility_id:
        raise InvalidInputError(
            "the library version belongs to another facility", code="change_request.facility"
        )
    request = ChangeRequest(
        facility_id=facility_id,
        library_version_id=library_id,
        title=title,
        reason=reason,
        severity=severity.value,
        status=ChangeRequestStatus.OPEN.value,
        requested_by=access.principal.user_id,
        created_at=clock.now(),
    )
    session.add(request)
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="change_request.created",
        object_type="change_request",
        object_id=request.id,
        facility_id=facility_id,
        details={"title": title, "severity": severity.value},
    )
    return request


def link_change_request(
    session: Session, clock: Clock, access: Access, request_id: int, *, library_id: int
) -> ChangeRequest:
    """Record which draft resolves a change request (an open request becomes accepted); releasing that
    draft closes it."""
    request = repo.change_request_by_id(session, request_id)
    if request is None or not access.allows(request.facility_id):
        raise NotFoundError("no such change request", code="change_request.not_found")
    if request.status in (ChangeRequestStatus.REJECTED.value, ChangeRequestStatus.DONE.value):
        raise ConflictError(f"change request is {request.status}", code="change_request.closed")
    row = get_version(session, access, library_id)
    if row.facility_id != request.facility_id:
        raise InvalidInputError("the draft belongs to another facility", code="change_request.facility")
    if LibraryStatus(row.status) not in EDITABLE:
        raise ConflictError(
            f"a change request is resolved by a draft, not a {row.status} version", code="library.state"
        )
    request.resolved_by_id = row.id
    if request.status == ChangeRequestStatus.OPEN.value:
        request.status = ChangeRequestStatus.ACCEPTED
        request.decided_by = access.principal.user_id
        request.decided_at = clock.now()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="change_request.linked",
        object_type="change_request",
        object_id=request.id,
        facility_id=request.facility_id,
        details={"library": row.id, "version": row.version},
    )
    return request


def change_requests_of(session: Session, access: Access, row: LibraryVersion) -> list[ChangeRequest]:
    """The change requests of the version's facility that are open or linked to this version."""
    requests, _ = repo.change_requests(
        session, facility_ids=frozenset({row.facility_id}), status=None, limit=200, offset=0
    )
    return [
        r
        for r in requests
        if r.resolved_by_id == row.id
        or r.status in (ChangeRequestStatus.OPEN.value, ChangeRequestStatus.ACCEPTED.value)
    ]


def list_change_requests(
    session: Session, access: Access, *, status: ChangeRequestStatus | None, limit: int, offset: int
) -> tuple[Sequence[ChangeRequest], int]:
    """Change requests of the caller's facilities, newest first."""
    return repo.change_requests(
        session,
        facility_ids=access.scope,
        status=None if status is None else status.value,
        limit=limit,
        offset=offset,
    )


def decide_change_request(
    session: Session, clock: Clock, access: Access, request_id: int, *, status: ChangeRequestStatus, note: str
) -> ChangeRequest:
    """Accept, reject or close a change request, with a note."""
    request = repo.change_request_by_id(session, request_id)
    if request is None or not access.allows(request.facility_id):
        raise NotFoundError("no such change request", code="change_request.not_found")
    if status is ChangeRequestStatus.OPEN:
        raise InvalidInputError("a decision is accepted, rejected or done", code="change_request.decision")
    if request.status in (ChangeRequestStatus.REJECTED.value, ChangeRequestStatus.DONE.value):
        raise ConflictError(f"change request is {request.status}", code="change_request.closed")
    request.status = status
    request.decided_by = access.principal.user_id
    request.decided_at = clock.now()
    request.decision_note = note
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="change_request.decided",
        object_type="change_request",
        object_id=request.id,
        facility_id=request.facility_id,
        details={"status": status.value},
    )
    return request
