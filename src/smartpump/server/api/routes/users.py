"""User accounts and their per-facility role grants (admins; auditors read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from smartpump.server.api.deps import (
    ClockDep,
    HasherDep,
    IdPath,
    PageDep,
    SessionDep,
    SettingsDep,
    require_roles,
)
from smartpump.server.api.schemas import GrantCreate, GrantOut, UserCreate, UserOut
from smartpump.server.auth import Access, Role
from smartpump.server.db.models import User
from smartpump.server.services import users as service

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Access, require_roles(Role.ADMIN)]
UserReader = Annotated[Access, require_roles(Role.ADMIN, Role.AUDITOR)]


def _out(session: Session, user: User) -> UserOut:
    out = UserOut.model_validate(user)
    out.grants = [GrantOut.model_validate(g) for g in service.grants_of(session, user.id)]
    return out


@router.get("")
def list_users(access: UserReader, session: SessionDep, page: PageDep, response: Response) -> list[UserOut]:
    """Users with a grant in the caller's facilities (all users for a deployment-wide grant)."""
    users, total = service.list_users(session, access, limit=page.limit, offset=page.offset)
    page.headers(response, total)
    return [_out(session, u) for u in users]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserCreate,
    access: Admin,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    hasher: HasherDep,
) -> UserOut:
    """Create a user (no roles until granted)."""
    user = service.add_user(
        session,
        settings,
        clock,
        hasher,
        access,
        username=body.username,
        password=body.password,
        full_name=body.full_name,
    )
    return _out(session, user)


@router.get("/{user_id}")
def get_user(user_id: IdPath, access: UserReader, session: SessionDep) -> UserOut:
    """One user and their grants."""
    return _out(session, service.get_user(session, access, user_id))


@router.post("/{user_id}/grants", status_code=status.HTTP_201_CREATED)
def grant_role(
    user_id: IdPath, body: GrantCreate, access: Admin, session: SessionDep, clock: ClockDep
) -> GrantOut:
    """Grant a role; admin and auditor grants stay pending until a second admin confirms."""
    grant = service.grant_role(session, clock, access, user_id, role=body.role, facility_id=body.facility_id)
    return GrantOut.model_validate(grant)


@router.post("/{user_id}/grants/{grant_id}/confirm")
def confirm_grant(
    user_id: IdPath, grant_id: IdPath, access: Admin, session: SessionDep, clock: ClockDep
) -> GrantOut:
    """Confirm a pending privileged grant (a different admin than the one who granted it)."""
    return GrantOut.model_validate(service.confirm_grant(session, clock, access, user_id, grant_id))


@router.delete("/{user_id}/grants/{grant_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_grant(
    user_id: IdPath, grant_id: IdPath, access: Admin, session: SessionDep, clock: ClockDep
) -> None:
    """Revoke a grant."""
    service.revoke_grant(session, clock, access, user_id, grant_id)


@router.post("/{user_id}/disable")
def disable_user(user_id: IdPath, access: Admin, session: SessionDep, clock: ClockDep) -> UserOut:
    """Disable an account and revoke its tokens."""
    return _out(session, service.disable_user(session, clock, access, user_id))
