"""Users, facilities and role grants: creation, dual-authorized privileged grants, revocation."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server import audit, password_policy
from smartpump.server.auth import PRIVILEGED_ROLES, Access, Principal, Role, principal_of, verify_password
from smartpump.server.db.models import AuditRecord, Facility, RoleGrant, User
from smartpump.server.db.repositories import users as repo
from smartpump.server.db.unit_of_work import in_own_transaction
from smartpump.server.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ThrottledError,
)
from smartpump.server.settings import Settings
from smartpump.server.vocabulary import GrantStatus

FIRST_ADMIN = "admin"


def check_password_policy(settings: Settings, username: str, password: str) -> None:
    """Refuse a password the policy refuses (``password_policy``: length, username, common passwords)."""
    reason = password_policy.weakness(password, username, min_length=settings.password_min_length)
    if reason is not None:
        raise InvalidInputError(reason, code="user.weak_password")


def create_facility(session: Session, clock: Clock, access: Access, *, code: str, name: str) -> Facility:
    """Create a facility; needs a deployment-wide admin grant."""
    if not access.is_global:
        raise AccessDeniedError(
            "only a deployment-wide admin may create facilities", code="facility.forbidden"
        )
    if repo.facility_by_code(session, code) is not None:
        raise ConflictError(f"facility {code!r} exists", code="facility.exists")
    facility = Facility(code=code, name=name, created_at=clock.now())
    session.add(facility)
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="facility.created",
        object_type="facility",
        object_id=facility.id,
        facility_id=facility.id,
        details={"code": code},
    )
    return facility


def list_facilities(session: Session, access: Access) -> Sequence[Facility]:
    """Facilities the caller holds any role in."""
    return repo.list_facilities(session, facility_ids=access.scope)


def create_user(
    session: Session,
    settings: Settings,
    clock: Clock,
    hasher: PasswordHasher,
    actor: str | None,
    *,
    username: str,
    password: str,
    full_name: str = "",
) -> User:
    """Create an active user without grants (caller commits through ``commit_user``)."""
    check_password_policy(settings, username, password)
    if repo.user_by_username(session, username) is not None:
        raise ConflictError(f"user {username!r} exists", code="user.exists")
    user = User(
        username=username,
        full_name=full_name,
        password_hash=hasher.hash(password),
        is_active=True,
        failed_logins=0,
        created_at=clock.now(),
    )
    session.add(user)
    session.flush()
    audit.append(
        session,
        clock,
        actor=actor,
        action="user.created",
        object_type="user",
        object_id=user.id,
        details={"username": username},
    )
    return user


def add_user(
    session: Session,
    settings: Settings,
    clock: Clock,
    hasher: PasswordHasher,
    access: Access,
    *,
    username: str,
    password: str,
    full_name: str,
) -> User:
    """Create a user through the API (a taken username is a conflict)."""
    user = create_user(
        session,
        settings,
        clock,
        hasher,
        access.principal.username,
        username=username,
        password=password,
        full_name=full_name,
    )
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"user {username!r} exists", code="user.exists") from None
    return user


def get_user(session: Session, access: Access, user_id: int) -> User:
    """A user visible to the caller (granted in one of the caller's facilities, or any for a global admin)."""
    user = repo.user_by_id(session, user_id)
    if user is None:
        raise NotFoundError("no such user", code="user.not_found")
    if access.scope is not None:
        facilities = {g.facility_id for g in repo.grants_of(session, user_id, active_only=False)}
        if not facilities & set(access.scope):
            raise NotFoundError("no such user", code="user.not_found")
    return user


def list_users(session: Session, access: Access, *, limit: int, offset: int) -> tuple[Sequence[User], int]:
    """Users visible to the caller, one page, and the total."""
    return repo.list_users(session, facility_ids=access.scope, limit=limit, offset=offset)


def grants_of(session: Session, user_id: int) -> Sequence[RoleGrant]:
    """Every grant of a user, pending ones included."""
    return repo.grants_of(session, user_id, active_only=False)


def grant_role(
    session: Session,
    clock: Clock,
    access: Access,
    user_id: int,
    *,
    role: Role,
    facility_id: int | None,
    via: str = "api",
) -> RoleGrant:
    """Grant a role in a facility (or everywhere); privileged ones wait for a second admin, except the
    bootstrap: while the deployment has one active admin, that admin's deployment-wide admin grant to
    another user is active at once (audited ``grant.bootstrap``), so a second admin can exist."""
    user = get_user_for_admin(session, access, user_id)
    _require_admin_over(access, facility_id)
    if facility_id is not None and repo.facility_by_id(session, facility_id) is None:
        raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
    if repo.find_grant(session, user.id, role.value, facility_id) is not None:
        raise ConflictError("this grant exists already", code="grant.exists")
    status = "pending" if role in PRIVILEGED_ROLES else "active"
    bootstrap = (
        role is Role.ADMIN
        and facility_id is None
        and user.id != access.principal.user_id
        and repo.count_active_global_admins(session) == 1
    )
    if bootstrap:
        status = "active"
    grant = RoleGrant(
        user_id=user.id,
        role=role.value,
        facility_id=facility_id,
        status=status,
        granted_by=access.principal.user_id,
        created_at=clock.now(),
    )
    session.add(grant)
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="grant.bootstrap" if bootstrap else "grant.created",
        object_type="grant",
        object_id=grant.id,
        facility_id=facility_id,
        details={"user": user.username, "role": role.value, "status": status, "via": via},
    )
    return grant


def confirm_grant(
    session: Session, clock: Clock, access: Access, user_id: int, grant_id: int, *, via: str = "api"
) -> RoleGrant:
    """Second-admin confirmation of a pending privileged grant (not by its granter, not by its grantee)."""
    grant = _grant_of(session, user_id, grant_id)
    _require_admin_over(access, grant.facility_id)
    if grant.status != "pending":
        raise ConflictError("grant is not pending", code="grant.not_pending")
    if access.principal.user_id in (grant.granted_by, grant.user_id):
        with in_own_transaction(session):
            audit.append(
                session,
                clock,
                actor=access.principal.username,
                action="grant.confirmed",
                object_type="grant",
                object_id=grant.id,
                facility_id=grant.facility_id,
                outcome="denied",
                details={"reason": "second admin required", "via": via},
            )
        raise AccessDeniedError(
            "a privileged grant needs a second, different admin", code="grant.dual_control"
        )
    grant.status = GrantStatus.ACTIVE
    grant.confirmed_by = access.principal.user_id
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="grant.confirmed",
        object_type="grant",
        object_id=grant.id,
        facility_id=grant.facility_id,
        details={"role": grant.role, "via": via},
    )
    return grant


def revoke_grant(session: Session, clock: Clock, access: Access, user_id: int, grant_id: int) -> None:
    """Remove a grant (audited)."""
    grant = _grant_of(session, user_id, grant_id)
    _require_admin_over(access, grant.facility_id)
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="grant.revoked",
        object_type="grant",
        object_id=grant.id,
        facility_id=grant.facility_id,
        details={"user_id": grant.user_id, "role": grant.role},
    )
    session.delete(grant)
    session.flush()


def disable_user(session: Session, clock: Clock, access: Access, user_id: int) -> User:
    """Disable an account and revoke its tokens."""
    user = get_user_for_admin(session, access, user_id)
    if user.id == access.principal.user_id:
        raise ConflictError("you cannot disable yourself", code="user.self_disable")
    user.is_active = False
    repo.revoke_tokens_of(session, user.id, clock.now())
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="user.disabled",
        object_type="user",
        object_id=user.id,
    )
    return user


def change_password(
    session: Session,
    settings: Settings,
    clock: Clock,
    hasher: PasswordHasher,
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
) -> None:
    """Change one's own password (needs the current one); revokes every token."""
    user = repo.user_by_id(session, principal.user_id)
    if user is None or not verify_password(hasher, user.password_hash, current_password):
        raise AccessDeniedError("current password is wrong", code="user.wrong_password")
    check_password_policy(settings, user.username, new_password)
    if verify_password(hasher, user.password_hash, new_password):
        raise InvalidInputError(
            "the new password must differ from the current one", code="user.same_password"
        )
    user.password_hash = hasher.hash(new_password)
    user.must_change_password = False
    repo.revoke_tokens_of(session, user.id, clock.now())
    audit.append(
        session,
        clock,
        actor=user.username,
        action="user.password_changed",
        object_type="user",
        object_id=user.id,
    )


def console_admin(
    session: Session, settings: Settings, clock: Clock, hasher: PasswordHasher, username: str, password: str
) -> Access:
    """The access of an admin who proves their password at the server console (the CLI): what the API's
    user routes give a logged-in admin, so the CLI grants through the same service and approvals.

    The console is throttled on its own: ``login_max_failures`` failures of the account at the console
    within ``login_lockout_minutes`` since its last console success refuse it until the oldest of them is
    that old (counted from the audit log: each CLI run is its own process). The account-wide lock of
    network logins does not apply here, so no attack from the network locks an admin out of the console.

    Raises:
        ThrottledError: ``auth.throttled`` (audited, ``auth.console``, outcome ``throttled``).
        AuthenticationError: ``auth.invalid_credentials`` (audited, ``auth.console``).
        AccessDeniedError: ``auth.password_change_required``, ``access.role`` for a non-admin.
    """
    actor = username[:64]
    user = repo.user_by_username(session, username)
    object_id = None if user is None else user.id
    retry_after = _console_retry_after_s(session, settings, clock, actor)
    if retry_after is not None:
        with in_own_transaction(session):
            audit.append(
                session,
                clock,
                actor=actor,
                action="auth.console",
                object_type="user",
                object_id=object_id,
                outcome="throttled",
            )
        raise ThrottledError("too many failed console logins; try again later", retry_after_s=retry_after)
    if user is None or not user.is_active or not verify_password(hasher, user.password_hash, password):
        with in_own_transaction(session):
            audit.append(
                session,
                clock,
                actor=actor,
                action="auth.console",
                object_type="user",
                object_id=object_id,
                outcome="failure",
            )
        raise AuthenticationError("wrong username or password", code="auth.invalid_credentials")
    with in_own_transaction(session):
        audit.append(
            session, clock, actor=actor, action="auth.console", object_type="user", object_id=object_id
        )
    if user.must_change_password:
        raise AccessDeniedError(
            "change your password first (POST /api/v1/auth/password, or /ui/password)",
            code="auth.password_change_required",
        )
    principal = principal_of(session, user)
    if not principal.has_any_role({Role.ADMIN}):
        raise AccessDeniedError(f"{username} is not an admin", code="access.role")
    return Access(principal=principal, roles=frozenset({Role.ADMIN}))


def _console_retry_after_s(session: Session, settings: Settings, clock: Clock, actor: str) -> int | None:
    """Seconds until the console may be tried for this account again, or None when it may now."""
    now = clock.now()
    period = timedelta(minutes=settings.login_lockout_minutes)
    outcomes = session.execute(
        select(AuditRecord.outcome, AuditRecord.ts)
        .where(
            AuditRecord.action == "auth.console",
            AuditRecord.actor == actor,
            AuditRecord.ts > now - period,
            AuditRecord.outcome.in_(("success", "failure")),
        )
        .order_by(AuditRecord.seq.desc())
    ).all()
    failures = list(itertools.takewhile(lambda row: row.outcome == "failure", outcomes))
    if len(failures) < settings.login_max_failures:
        return None
    oldest = failures[settings.login_max_failures - 1].ts
    return int((oldest + period - now).total_seconds()) + 1


def get_user_for_admin(session: Session, access: Access, user_id: int) -> User:
    """The user, when the caller administers them (global admin, or a facility admin sharing a facility)."""
    user = repo.user_by_id(session, user_id)
    if user is None:
        raise NotFoundError("no such user", code="user.not_found")
    if access.scope is None:
        return user
    facilities = {g.facility_id for g in repo.grants_of(session, user_id, active_only=False)}
    if facilities and not facilities & set(access.scope):
        raise NotFoundError("no such user", code="user.not_found")
    return user


def _grant_of(session: Session, user_id: int, grant_id: int) -> RoleGrant:
    grant = repo.grant_by_id(session, grant_id)
    if grant is None or grant.user_id != user_id:
        raise NotFoundError("no such grant", code="grant.not_found")
    return grant


def _require_admin_over(access: Access, facility_id: int | None) -> None:
    if facility_id is None:
        if not access.is_global:
            raise AccessDeniedError(
                "a deployment-wide grant needs a deployment-wide admin", code="grant.forbidden"
            )
    elif not access.allows(facility_id):
        raise AccessDeniedError("you do not administer this facility", code="grant.forbidden")


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstAdmin:
    """The bootstrap admin account; ``generated_password`` is shown once, then never again."""

    username: str
    generated_password: str | None


def ensure_first_admin(
    session: Session, settings: Settings, clock: Clock, hasher: PasswordHasher
) -> FirstAdmin | None:
    """On an empty database, create user ``admin`` with a deployment-wide admin grant.

    The password is SMARTPUMP_ADMIN_PASSWORD when set, otherwise generated and returned once; either way
    it must be changed at the first login before the account can do anything else.
    Returns None when users exist already.
    """
    if repo.count_users(session) > 0:
        return None
    given = settings.admin_password.get_secret_value() if settings.admin_password is not None else None
    password = given or secrets.token_urlsafe(18)
    user = create_user(
        session,
        settings,
        clock,
        hasher,
        None,
        username=FIRST_ADMIN,
        password=password,
        full_name="Bootstrap administrator",
    )
    user.must_change_password = True
    session.add(
        RoleGrant(
            user_id=user.id, role=Role.ADMIN.value, facility_id=None, status="active", created_at=clock.now()
        )
    )
    audit.append(
        session,
        clock,
        actor=None,
        action="grant.bootstrap",
        object_type="user",
        object_id=user.id,
        details={"role": Role.ADMIN.value},
    )
    return FirstAdmin(username=FIRST_ADMIN, generated_password=None if given else password)
