"""The quarantine page: pumps that spoke without being admitted, for a biomed to admit (register in one of
their facilities) or reject; auditors read it. Decisions go through ``services.quarantine`` (audited)."""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from smartpump.errors import SmartpumpError
from smartpump.pump.capabilities import PumpModel
from smartpump.server.api.deps import SessionDep, StateDep, require_roles
from smartpump.server.api.errors import status_for
from smartpump.server.auth import Access, Role
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.services import quarantine
from smartpump.server.services import users as users_service
from smartpump.server.web.render import QUARANTINE_ROLES, render
from smartpump.server.web.session import CsrfChecked

router = APIRouter(include_in_schema=False)
QuarantineUser = Annotated[Access, require_roles(*QUARANTINE_ROLES)]
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
Serial = Annotated[str, Path(min_length=1, max_length=64)]
MAX_ROWS: Final = 200
REFUSALS: Final = (AccessDeniedError, ConflictError, InvalidInputError, NotFoundError)


def _page(
    request: Request,
    access: Access,
    session: SessionDep,
    *,
    error: tuple[str, str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows, total = quarantine.pending(session, limit=MAX_ROWS, offset=0)
    return render(
        request,
        "quarantine.html",
        principal=access.principal,
        active="quarantine",
        rows=rows,
        total=total,
        unknown=quarantine.UNKNOWN,
        facilities=users_service.list_facilities(session, access),
        models=[m.value for m in PumpModel],
        can_decide=access.principal.has_any_role({Role.BIOMED}),
        error=error,
        status_code=status_code,
    )


@router.get("/ui/quarantine")
def quarantine_page(request: Request, access: QuarantineUser, session: SessionDep) -> Response:
    """Pumps waiting for a decision: why they are held, since when, what they tried to send."""
    return _page(request, access, session)


@router.post("/ui/quarantine/{serial}/admit")
def admit(
    request: Request,
    serial: Serial,
    access: Biomed,
    _csrf: CsrfChecked,
    session: SessionDep,
    state: StateDep,
    facility_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    model: Annotated[str, Form(min_length=1, max_length=32)],
    care_area: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Register the held pump in one of the caller's facilities, then show it (its next resend is stored)."""
    try:
        if model not in {m.value for m in PumpModel}:
            raise InvalidInputError(f"{model!r} is not a pump model", code="pump.model_invalid")
        quarantine.admit(
            session,
            state.clock,
            access,
            serial,
            facility_id=facility_id,
            model=model,
            firmware="unknown",
            care_area=care_area.strip() or None,
            location=None,
        )
    except REFUSALS as refused:
        session.rollback()
        return _refused(request, access, session, serial, refused)
    return RedirectResponse(f"/ui/pumps/{quote(serial, safe='')}", status_code=303)


@router.post("/ui/quarantine/{serial}/reject")
def reject(
    request: Request, serial: Serial, access: Biomed, _csrf: CsrfChecked, session: SessionDep, state: StateDep
) -> Response:
    """Keep the held pump refused and take it off the waiting list."""
    try:
        quarantine.reject(session, state.clock, access, serial)
    except REFUSALS as refused:
        session.rollback()
        return _refused(request, access, session, serial, refused)
    return RedirectResponse("/ui/quarantine", status_code=303)


def _refused(
    request: Request, access: Access, session: SessionDep, serial: str, refused: SmartpumpError
) -> Response:
    """The page again, with the refusal beside the pump it was about."""
    return _page(
        request,
        access,
        session,
        error=(serial, refused.message, refused.code),
        status_code=status_for(refused),
    )
