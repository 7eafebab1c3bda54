"""Users, roles, tokens and the checks on them: Argon2 passwords, expiring revocable bearer tokens,
login throttling (``login_throttle``), per-facility role grants, and the caller's access scope for a route.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server import audit
from smartpump.server.db.models import AccessToken, User
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import AuthenticationError, ThrottledError
from smartpump.server.login_throttle import LoginThrottle
from smartpump.server.settings import Settings


class Role(StrEnum):
    """The closed set of roles; a grant gives one of them in one facility (or in all)."""

    ADMIN = "admin"
    PHARMACIST = "pharmacist"
    PHARMACY_APPROVER = "pharmacy_approver"
    NURSE = "nurse"
    PHYSICIAN = "physician"
    BIOMED = "biomed"
    AUDITOR = "auditor"
    VIEWER = "viewer"


ALL_ROLES: Final = frozenset(Role)
PHI_ROLES: Final = frozenset({Role.NURSE, Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.AUDITOR})
"""Roles that read patient identifiers (events, EHR orders, FHIR resources, dashboard patient labels)."""
PRIVILEGED_ROLES: Final = frozenset(
    {Role.ADMIN, Role.AUDITOR, Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.BIOMED}
)
"""Grants of these roles take effect only once a second admin confirms them (dual authorization): the
roles that administer, read the whole audit, or change what reaches pumps (libraries, configurations,
software)."""

FacilityScope = frozenset[int] | None
"""Facilities a caller may act in for some purpose; None means every facility."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated user and their active role grants."""

    user_id: int
    username: str
    global_roles: frozenset[Role] = frozenset()
    facility_roles: Mapping[int, frozenset[Role]] = field(default_factory=dict)
    must_change_password: bool = False

    def roles_in(self, facility_id: int) -> frozenset[Role]:
        """Roles held in one facility (global grants included)."""
        return self.global_roles | self.facility_roles.get(facility_id, frozenset())

    def has_any_role(self, roles: Iterable[Role]) -> bool:
        """True when one of the roles is held somewhere."""
        wanted = frozenset(roles)
        return bool(self.global_roles & wanted) or any(r & wanted for r in self.facility_roles.values())

    def scope(self, roles: Iterable[Role]) -> FacilityScope:
        """Facilities where one of the roles is held (None: all, through a global grant)."""
        wanted = frozenset(roles)
        if self.global_roles & wanted:
            return None
        return frozenset(f for f, held in self.facility_roles.items() if held & wanted)


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """What a route lets the caller do: the principal and the roles the route accepts."""

    principal: Principal
    roles: frozenset[Role]

    @property
    def scope(self) -> FacilityScope:
        """Facilities in which the caller holds one of the route's roles."""
        return self.principal.scope(self.roles)

    def allows(self, facility_id: int) -> bool:
        """True when the caller holds one of the route's roles in this facility."""
        return bool(self.principal.roles_in(facility_id) & self.roles)

    @property
    def is_global(self) -> bool:
        """True when the caller holds one of the route's roles in every facility."""
        return self.scope is None


def password_hasher(settings: Settings) -> PasswordHasher:
    """The Argon2id hasher with the configured cost."""
    return PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)


def verify_password(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    """True when the password matches the stored Argon2 hash."""
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(settings: Settings, token: str) -> str:
    """HMAC-SHA256 of a bearer token under the server secret: what the database stores."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """A bearer token handed to a client once, and when it expires."""

    token: str
    expires_at: datetime


def issue_token(session: Session, settings: Settings, clock: Clock, user: User) -> IssuedToken:
    """Create a fresh random token for the user (caller commits)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    expires_at = now + timedelta(minutes=settings.token_ttl_minutes)
    session.add(
        AccessToken(
            user_id=user.id,
            token_digest=token_digest(settings, token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return IssuedToken(token=token, expires_at=expires_at)


def login(
    session: Session,
    settings: Settings,
    clock: Clock,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    username: str,
    password: str,
    *,
    client: str,
) -> IssuedToken:
    """Check a password from a client address, throttled per account and client, per client, and per
    account from untrusted networks (see ``login_throttle``); every outcome is audited with the client."""
    now = clock.now()
    client = client[:64]
    user = users_repo.user_by_username(session, username)
    actor = username[:64]
    retry_after = throttle.retry_after_s(username, client, now)
    locked_until = user.locked_until if user is not None else None
    if locked_until is not None and locked_until > now and not throttle.is_trusted(client):
        account_retry = int((locked_until - now).total_seconds()) + 1
        retry_after = max(retry_after or 0, account_retry)
    if retry_after is not None:
        audit.append(
            session,
            clock,
            actor=actor,
            action="auth.login",
            object_type="user",
            object_id=None if user is None else user.id,
            outcome="throttled",
            details={"client": client},
        )
        session.commit()
        raise ThrottledError("too many failed logins; try again later", retry_after_s=retry_after)
    # Hash even for unknown users so timing does not reveal which usernames exist.
    stored = user.password_hash if user is not None else _DUMMY_HASH.get(hasher)
    matches = verify_password(hasher, stored, password)
    if user is None or not matches or not user.is_active:
        details: dict[str, object] = {"client": client}
        reached = throttle.failed(username, client, now)
        if user is not None and matches is False:
            user.failed_logins += 1
            if user.failed_logins >= settings.login_account_max_failures:
                user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
                user.failed_logins = 0
                reached.append("account")
        if reached:
            details["locked"] = reached
        audit.append(
            session,
            clock,
            actor=actor,
            action="auth.login",
            object_type="user",
            object_id=None if user is None else user.id,
            outcome="failure",
            details=details,
        )
        session.commit()
        raise AuthenticationError("wrong username or password", code="auth.invalid_credentials")
    throttle.succeeded(username, client)
    user.failed_logins = 0
    user.locked_until = None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    issued = issue_token(session, settings, clock, user)
    audit.append(
        session,
        clock,
        actor=user.username,
        action="auth.login",
        object_type="user",
        object_id=user.id,
        details={"client": client},
    )
    session.commit()
    return issued


class _DummyHash:
    """A lazily made Argon2 hash of a random password, verified against for unknown usernames."""

    def __init__(self) -> None:
        self._value: str | None = None

    def get(self, hasher: PasswordHasher) -> str:
        """The dummy hash (made once per process)."""
        if self._value is None:
            self._value = hasher.hash(secrets.token_urlsafe(16))
        return self._value


_DUMMY_HASH: Final = _DummyHash()


def principal_for_token(session: Session, settings: Settings, clock: Clock, token: str) -> Principal:
    """The principal behind a live bearer token; refuses unknown, expired, revoked or disabled ones."""
    stored = users_repo.token_by_digest(session, token_digest(settings, token))
    if stored is None or stored.revoked_at is not None:
        raise AuthenticationError("invalid or revoked token", code="auth.invalid_token")
    if stored.expires_at <= clock.now():
        raise AuthenticationError("token expired", code="auth.token_expired")
    user = users_repo.user_by_id(session, stored.user_id)
    if user is None or not user.is_active:
        raise AuthenticationError("account disabled", code="auth.account_disabled")
    return principal_of(session, user)


def principal_of(session: Session, user: User) -> Principal:
    """Build the principal of a user from their active grants."""
    global_roles: set[Role] = set()
    facility_roles: dict[int, set[Role]] = {}
    for grant in users_repo.grants_of(session, user.id):
        role = Role(grant.role)
        if grant.facility_id is None:
            global_roles.add(role)
        else:
            facility_roles.setdefault(grant.facility_id, set()).add(role)
    return Principal(
        user_id=user.id,
        username=user.username,
        global_roles=frozenset(global_roles),
        facility_roles={f: frozenset(r) for f, r in facility_roles.items()},
        must_change_password=user.must_change_password,
    )


def revoke_token(session: Session, settings: Settings, clock: Clock, token: str) -> None:
    """Revoke one bearer token (logout); caller commits."""
    stored = users_repo.token_by_digest(session, token_digest(settings, token))
    if stored is not None and stored.revoked_at is None:
        stored.revoked_at = clock.now()
