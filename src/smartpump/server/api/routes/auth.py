"""Login (OAuth2 password form -> bearer token), logout, who-am-I, password change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from smartpump.server import auth
from smartpump.server.api.deps import (
    PUBLIC,
    ClockDep,
    HasherDep,
    SessionDep,
    SettingsDep,
    StateDep,
    TokenDep,
    client_address,
    require_roles,
)
from smartpump.server.api.schemas import ErrorResponse, Me, PasswordChange, Token
from smartpump.server.auth import ALL_ROLES, Access
from smartpump.server.errors import AuthenticationError, ThrottledError
from smartpump.server.services import users as users_service

router = APIRouter(prefix="/auth", tags=["auth"])
AnyUser = Annotated[Access, require_roles(*ALL_ROLES, before_password_change=True)]


@router.post(
    "/token",
    dependencies=[PUBLIC],
    responses={401: {"model": ErrorResponse}, 429: {"model": ErrorResponse}},
)
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    state: StateDep,
    session: SessionDep,
) -> Token:
    """Exchange username and password for a bearer token (failures are throttled per account and client
    address, per client address, and per account from untrusted networks)."""
    try:
        issued = auth.login(
            session,
            state.settings,
            state.clock,
            state.hasher,
            state.login_throttle,
            form.username,
            form.password,
            client=client_address(request),
        )
    except ThrottledError:
        state.metrics.logins.labels(outcome="throttled").inc()
        raise
    except AuthenticationError:
        state.metrics.logins.labels(outcome="failure").inc()
        raise
    state.metrics.logins.labels(outcome="success").inc()
    return Token(access_token=issued.token, expires_at=issued.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    access: AnyUser, token: TokenDep, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> None:
    """Revoke the token used for this call."""
    if token:
        auth.revoke_token(session, settings, clock, token)
        session.commit()


@router.get("/me")
def me(access: AnyUser) -> Me:
    """The caller's identity and roles."""
    principal = access.principal
    return Me(
        user_id=principal.user_id,
        username=principal.username,
        global_roles=sorted(principal.global_roles),
        facility_roles={str(f): sorted(r) for f, r in sorted(principal.facility_roles.items())},
        must_change_password=principal.must_change_password,
    )


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(
    body: PasswordChange,
    access: AnyUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: HasherDep,
) -> None:
    """Change one's own password; every token of the account is revoked."""
    users_service.change_password(
        session,
        settings,
        clock,
        hasher,
        access.principal,
        current_password=body.current_password,
        new_password=body.new_password,
    )
