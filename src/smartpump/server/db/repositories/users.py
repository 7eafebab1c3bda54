"""Users, facilities, role grants and access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from smartpump.server.db.models import AccessToken, Facility, RoleGrant, User


def user_by_username(session: Session, username: str) -> User | None:
    """The user with this username, if any."""
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def user_by_id(session: Session, user_id: int) -> User | None:
    """The user with this id, if any."""
    return session.get(User, user_id)


def count_users(session: Session) -> int:
    """How many users exist."""
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def count_active_global_admins(session: Session) -> int:
    """How many active users hold an active deployment-wide admin grant."""
    query = (
        select(func.count(func.distinct(RoleGrant.user_id)))
        .join(User, User.id == RoleGrant.user_id)
        .where(
            RoleGrant.role == "admin",
            RoleGrant.facility_id.is_(None),
            RoleGrant.status == "active",
            User.is_active.is_(True),
        )
    )
    return int(session.scalar(query) or 0)


def list_users(
    session: Session, *, facility_ids: frozenset[int] | None, limit: int, offset: int
) -> tuple[Sequence[User], int]:
    """Users (with a grant in one of the facilities, unless unrestricted), page and total."""
    query = select(User)
    if facility_ids is not None:
        granted = select(RoleGrant.user_id).where(RoleGrant.facility_id.in_(facility_ids))
        query = query.where(User.id.in_(granted))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    return session.scalars(query.order_by(User.id).limit(limit).offset(offset)).all(), total


def grants_of(session: Session, user_id: int, *, active_only: bool = True) -> Sequence[RoleGrant]:
    """The user's role grants."""
    query = select(RoleGrant).where(RoleGrant.user_id == user_id)
    if active_only:
        query = query.where(RoleGrant.status == "active")
    return session.scalars(query.order_by(RoleGrant.id)).all()


def grant_by_id(session: Session, grant_id: int) -> RoleGrant | None:
    """The grant with this id, if any."""
    return session.get(RoleGrant, grant_id)


def find_grant(session: Session, user_id: int, role: str, facility_id: int | None) -> RoleGrant | None:
    """An existing grant of this role in this scope (active or pending)."""
    query = select(RoleGrant).where(RoleGrant.user_id == user_id, RoleGrant.role == role)
    if facility_id is None:
        query = query.where(RoleGrant.facility_id.is_(None))
    else:
        query = query.where(RoleGrant.facility_id == facility_id)
    return session.scalars(query).first()


def facility_by_id(session: Session, facility_id: int) -> Facility | None:
    """The facility with this id, if any."""
    return session.get(Facility, facility_id)


def facility_by_code(session: Session, code: str) -> Facility | None:
    """The facility with this code, if any."""
    return session.scalars(select(Facility).where(Facility.code == code)).one_or_none()


def list_facilities(session: Session, *, facility_ids: frozenset[int] | None) -> Sequence[Facility]:
    """Facilities, restricted to the given ids unless None."""
    query = select(Facility).order_by(Facility.id)
    if facility_ids is not None:
        query = query.where(Facility.id.in_(facility_ids))
    return session.scalars(query).all()


def token_by_digest(session: Session, digest: str) -> AccessToken | None:
    """The access token with this digest, if any."""
    return session.scalars(select(AccessToken).where(AccessToken.token_digest == digest)).one_or_none()


def revoke_tokens_of(session: Session, user_id: int, now: datetime) -> None:
    """Revoke every live token of a user (disable, password change)."""
    session.execute(
        update(AccessToken)
        .where(AccessToken.user_id == user_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
