"""The password change page: where a browser whose account must change its password first (the bootstrap
admin) is sent, and where anyone changes their own password; every token of the account is revoked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from smartpump.server.api.deps import SessionDep, StateDep, require_roles
from smartpump.server.api.errors import status_for
from smartpump.server.auth import ALL_ROLES, Access
from smartpump.server.errors import AccessDeniedError, InvalidInputError
from smartpump.server.services import users as users_service
from smartpump.server.web.render import render
from smartpump.server.web.session import CsrfChecked, end_session

router = APIRouter(include_in_schema=False)
AnyUser = Annotated[Access, require_roles(*ALL_ROLES, before_password_change=True)]


@router.get("/ui/password")
def password_page(request: Request, access: AnyUser, state: StateDep) -> Response:
    """The form: current password, new password."""
    return render(
        request,
        "password.html",
        principal=access.principal,
        error=None,
        min_length=state.settings.password_min_length,
    )


@router.post("/ui/password")
def change_password(
    request: Request,
    access: AnyUser,
    _csrf: CsrfChecked,
    state: StateDep,
    session: SessionDep,
    current_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
) -> Response:
    """Change the password, end this session and go to the login page."""
    try:
        users_service.change_password(
            session,
            state.settings,
            state.clock,
            state.hasher,
            access.principal,
            current_password=current_password,
            new_password=new_password,
        )
    except (AccessDeniedError, InvalidInputError) as error:
        return render(
            request,
            "password.html",
            principal=access.principal,
            error=error.message,
            min_length=state.settings.password_min_length,
            status_code=status_for(error),
        )
    response = RedirectResponse("/ui/login", status_code=303)
    end_session(response)
    return response
