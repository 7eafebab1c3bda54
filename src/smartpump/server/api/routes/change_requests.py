"""Library change requests: who asked for what, why, and the decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from smartpump.server.api.deps import ClockDep, PageDep, SessionDep, require_roles
from smartpump.server.api.schemas import (
    ChangeRequestCreate,
    ChangeRequestDecision,
    ChangeRequestLink,
    ChangeRequestOut,
)
from smartpump.server.auth import Access, Role
from smartpump.server.services import change_requests as service
from smartpump.server.vocabulary import ChangeRequestStatus

router = APIRouter(prefix="/change-requests", tags=["libraries"])
Reader = Annotated[Access, require_roles(Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.NURSE, Role.AUDITOR)]
Requester = Annotated[Access, require_roles(Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.NURSE)]
Decider = Annotated[Access, require_roles(Role.PHARMACIST, Role.PHARMACY_APPROVER)]
Author = Annotated[Access, require_roles(Role.PHARMACIST)]


@router.get("")
def list_change_requests(
    access: Reader,
    session: SessionDep,
    page: PageDep,
    response: Response,
    status: ChangeRequestStatus | None = None,
) -> list[ChangeRequestOut]:
    """Change requests of the caller's facilities, newest first."""
    rows, total = service.list_change_requests(
        session, access, status=status, limit=page.limit, offset=page.offset
    )
    page.headers(response, total)
    return [ChangeRequestOut.model_validate(r) for r in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_change_request(
    body: ChangeRequestCreate, access: Requester, session: SessionDep, clock: ClockDep
) -> ChangeRequestOut:
    """Ask for a library change, with a reason and a severity (low, medium, high, critical)."""
    request = service.create_change_request(
        session,
        clock,
        access,
        facility_id=body.facility_id,
        library_id=body.library_id,
        title=body.title,
        reason=body.reason,
        severity=body.severity,
    )
    return ChangeRequestOut.model_validate(request)


@router.post("/{request_id}/decision")
def decide(
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ChangeRequestDecision,
    access: Decider,
    session: SessionDep,
    clock: ClockDep,
) -> ChangeRequestOut:
    """Accept, reject or close a change request."""
    request = service.decide_change_request(
        session, clock, access, request_id, status=ChangeRequestStatus(body.status), note=body.note
    )
    return ChangeRequestOut.model_validate(request)


@router.post("/{request_id}/draft")
def link_draft(
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ChangeRequestLink,
    access: Author,
    session: SessionDep,
    clock: ClockDep,
) -> ChangeRequestOut:
    """Link the draft that resolves a change request (an open one becomes accepted); its release closes it."""
    request = service.link_change_request(session, clock, access, request_id, library_id=body.library_id)
    return ChangeRequestOut.model_validate(request)
