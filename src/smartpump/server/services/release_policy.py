"""Release policy as configuration: per facility, how many distinct approvers a library release needs and
which roles must be among them.

The default (no policy stored) is two distinct approvers, one of them a pharmacy approver. Whatever a
facility configures, a release always needs at least two approvers and a pharmacy approver among them, and
the author or an editor of a version never counts (separation of duties is not configurable).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server import audit
from smartpump.server.auth import Access, Role
from smartpump.server.db.models import ReleasePolicy
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import AccessDeniedError, InvalidInputError

APPROVER_ROLES: Final = (Role.PHARMACY_APPROVER, Role.PHYSICIAN, Role.NURSE)
"""Roles whose approval a policy can count (pharmacy approvers always count)."""
DEFAULT_MIN_APPROVERS: Final = 2
DEFAULT_REQUIRED_ROLES: Final = (Role.PHARMACY_APPROVER,)
FLOOR_APPROVERS: Final = 2
MAX_APPROVERS: Final = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A facility's release rule: ``min_approvers`` distinct approvers, with ``required_roles`` among them."""

    facility_id: int
    min_approvers: int
    required_roles: tuple[Role, ...]
    is_default: bool

    @property
    def counted_roles(self) -> frozenset[Role]:
        """Roles whose approvals count toward a release here."""
        return frozenset({*self.required_roles, Role.PHARMACY_APPROVER})

    def describe(self) -> str:
        """One line a reviewer reads: 'at least 3 distinct approvers, including: pharmacy_approver, ...'."""
        roles = ", ".join(r.value for r in self.required_roles)
        return (
            f"at least {self.min_approvers} distinct approvers, including: {roles} "
            "(author and editors excluded)"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Standing:
    """How the current approvals stand against the policy: what is still missing (empty: releasable)."""

    policy: Policy
    approvals: tuple[tuple[int, Role], ...]
    missing: tuple[str, ...]

    @property
    def satisfied(self) -> bool:
        """True when a release may proceed."""
        return not self.missing


def check_policy(min_approvers: int, required_roles: Sequence[Role]) -> None:
    """Refuse a policy that could release with fewer than two approvers, without pharmacy, or impossibly."""
    for role in required_roles:
        if role not in APPROVER_ROLES:
            raise InvalidInputError(
                f"{role.value} cannot approve libraries; roles: {', '.join(r.value for r in APPROVER_ROLES)}",
                code="policy.role",
            )
    if Role.PHARMACY_APPROVER not in required_roles:
        raise InvalidInputError("a release policy must require a pharmacy approver", code="policy.pharmacy")
    if not FLOOR_APPROVERS <= min_approvers <= MAX_APPROVERS:
        raise InvalidInputError(
            f"min_approvers must be {FLOOR_APPROVERS} to {MAX_APPROVERS}", code="policy.min_approvers"
        )
    if len(required_roles) > min_approvers:
        raise InvalidInputError(
            f"{len(required_roles)} required roles need at least {len(required_roles)} approvers",
            code="policy.min_approvers",
        )


def _roles(text: str) -> tuple[Role, ...]:
    return tuple(Role(part) for part in text.split(",") if part)


def policy_for(session: Session, facility_id: int) -> Policy:
    """The facility's stored policy, or the default one."""
    row = session.scalars(select(ReleasePolicy).where(ReleasePolicy.facility_id == facility_id)).first()
    if row is None:
        return Policy(
            facility_id=facility_id,
            min_approvers=DEFAULT_MIN_APPROVERS,
            required_roles=DEFAULT_REQUIRED_ROLES,
            is_default=True,
        )
    return Policy(
        facility_id=facility_id,
        min_approvers=row.min_approvers,
        required_roles=_roles(row.required_roles),
        is_default=False,
    )


def set_policy(
    session: Session,
    clock: Clock,
    access: Access,
    facility_id: int,
    *,
    min_approvers: int,
    required_roles: Sequence[Role],
) -> Policy:
    """Store a facility's policy (audited with the old and the new rule)."""
    if not access.allows(facility_id):
        raise AccessDeniedError("you cannot configure this facility", code="policy.forbidden")
    if users_repo.facility_by_id(session, facility_id) is None:
        raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
    check_policy(min_approvers, required_roles)
    old = policy_for(session, facility_id)
    row = session.scalars(select(ReleasePolicy).where(ReleasePolicy.facility_id == facility_id)).first()
    if row is None:
        row = ReleasePolicy(facility_id=facility_id)
        session.add(row)
    row.min_approvers = min_approvers
    row.required_roles = ",".join(r.value for r in required_roles)
    row.updated_by = access.principal.user_id
    row.updated_at = clock.now()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="release_policy.set",
        object_type="facility",
        object_id=facility_id,
        facility_id=facility_id,
        details={
            "old": old.describe(),
            "new_min_approvers": min_approvers,
            "new_required_roles": ",".join(r.value for r in required_roles),
        },
    )
    return policy_for(session, facility_id)


def standing(policy: Policy, approvals: Iterable[tuple[int, Role]]) -> Standing:
    """Compare distinct (approver, role) approvals of the current content with the policy."""
    counted = tuple((user, role) for user, role in approvals if role in policy.counted_roles)
    have = Counter(role for _, role in counted)
    short = {
        role: need - have[role] for role, need in Counter(policy.required_roles).items() if have[role] < need
    }
    missing = [f"{count} more {role.value}" for role, count in short.items()]
    beyond_roles = policy.min_approvers - len({user for user, _ in counted}) - sum(short.values())
    if beyond_roles > 0:
        missing.append(f"{beyond_roles} more approver(s) in total")
    return Standing(policy=policy, approvals=counted, missing=tuple(missing))


def approval_role(
    policy: Policy, held: frozenset[Role], requested: Role | None, given: Iterable[Role]
) -> Role:
    """The role an approval is given in: the one asked for, else a required role still short, else any
    counted role the approver holds; refused (403) when the approver holds none the policy counts."""
    candidates = [r for r in APPROVER_ROLES if r in held and r in policy.counted_roles]
    if requested is not None:
        if requested not in candidates:
            raise AccessDeniedError(
                f"you cannot approve as {requested.value} here: this facility's policy counts "
                f"{', '.join(sorted(r.value for r in policy.counted_roles))} and you hold "
                f"{', '.join(sorted(r.value for r in held)) or 'none of them'}",
                code="library.approver_role",
            )
        return requested
    if not candidates:
        raise AccessDeniedError(
            "your roles here do not count under this facility's release policy ("
            f"{', '.join(sorted(r.value for r in policy.counted_roles))})",
            code="library.approver_role",
        )
    have = Counter(given)
    short = [r for r, need in Counter(policy.required_roles).items() if have[r] < need and r in candidates]
    return short[0] if short else candidates[0]
