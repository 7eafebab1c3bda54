"""Drug library lifecycle: drafts and their entries, lint, diff, submit, approve, release, retire, reviews."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from smartpump.library.diff import format_value
from smartpump.library.formats.high_alert_table import high_alert_table
from smartpump.library.model import LibraryStatus
from smartpump.library.search import search as search_library
from smartpump.server.api.deps import (
    ClockDep,
    JsonBody,
    PageDep,
    SessionDep,
    SettingsDep,
    StateDep,
    body_schema,
    parse_body,
    require_roles,
)
from smartpump.server.api.schemas import (
    ApprovalCreate,
    ApprovalOut,
    AreaCoverageOut,
    ChangeOut,
    CoverageOut,
    DiffOut,
    EmergencyRelease,
    ErrorResponse,
    FindingOut,
    LibraryCreate,
    LibraryOut,
    OverdueReviewOut,
    PolicyStandingOut,
    ReleasePolicyIn,
    ReleasePolicyOut,
    SearchMatchOut,
    SearchOut,
)
from smartpump.server.auth import Access, Role
from smartpump.server.db.models import LibraryVersion
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.services import library_coverage, release_policy
from smartpump.server.services import library_lifecycle as service

router = APIRouter(prefix="/libraries", tags=["libraries"])
Reader = Annotated[
    Access,
    require_roles(
        Role.PHARMACIST,
        Role.PHARMACY_APPROVER,
        Role.PHYSICIAN,
        Role.NURSE,
        Role.BIOMED,
        Role.AUDITOR,
        Role.VIEWER,
    ),
]
Reviewer = Annotated[
    Access, require_roles(Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.PHYSICIAN, Role.AUDITOR)
]
Author = Annotated[Access, require_roles(Role.PHARMACIST)]
Approver = Annotated[Access, require_roles(Role.PHARMACY_APPROVER)]
PolicyApprover = Annotated[Access, require_roles(*release_policy.APPROVER_ROLES)]
PolicyAdmin = Annotated[Access, require_roles(Role.ADMIN)]
FacilityId = Annotated[int, Path(ge=1, le=2**31 - 1)]
LibraryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
EntryId = Annotated[str, Path(min_length=1, max_length=128)]
REFUSALS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (403, 404, 409, 422)}


def _out(row: LibraryVersion) -> LibraryOut:
    return LibraryOut.model_validate(row)


def _policy_out(policy: release_policy.Policy) -> ReleasePolicyOut:
    return ReleasePolicyOut(
        facility_id=policy.facility_id,
        min_approvers=policy.min_approvers,
        required_roles=list(policy.required_roles),
        is_default=policy.is_default,
        description=policy.describe(),
    )


@router.get("")
def list_libraries(
    access: Reader,
    session: SessionDep,
    page: PageDep,
    response: Response,
    facility_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    status: LibraryStatus | None = None,
) -> list[LibraryOut]:
    """Library versions of the caller's facilities, newest first."""
    rows, total = service.list_versions(
        session, access, facility_id=facility_id, status=status, limit=page.limit, offset=page.offset
    )
    page.headers(response, total)
    return [_out(r) for r in rows]


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=REFUSALS, openapi_extra=body_schema(LibraryCreate)
)
def create_library(access: Author, raw: JsonBody, session: SessionDep, clock: ClockDep) -> LibraryOut:
    """Start a draft (the server assigns the version number); numbers in the document are read exactly."""
    body = parse_body(LibraryCreate, raw)
    return _out(
        service.create_draft(
            session,
            clock,
            access,
            facility_id=body.facility_id,
            document=body.document,
            based_on_id=body.based_on_id,
        )
    )


@router.get("/reviews/overdue")
def overdue_reviews(
    access: Reviewer, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> list[OverdueReviewOut]:
    """Entries of released libraries whose periodic review is overdue or was never recorded."""
    return [
        OverdueReviewOut.model_validate(o, from_attributes=True)
        for o in service.overdue_reviews(session, clock, settings, access)
    ]


@router.get("/release-policies/{facility_id}", responses=REFUSALS)
def get_release_policy(facility_id: FacilityId, access: Reader, session: SessionDep) -> ReleasePolicyOut:
    """The facility's release policy: how many distinct approvers, in which roles."""
    if not access.allows(facility_id):
        raise NotFoundError("no such facility", code="facility.not_found")
    return _policy_out(release_policy.policy_for(session, facility_id))


@router.put("/release-policies/{facility_id}", responses=REFUSALS)
def put_release_policy(
    facility_id: FacilityId, body: ReleasePolicyIn, access: PolicyAdmin, session: SessionDep, clock: ClockDep
) -> ReleasePolicyOut:
    """Set the facility's release policy (administrators; audited)."""
    return _policy_out(
        release_policy.set_policy(
            session,
            clock,
            access,
            facility_id,
            min_approvers=body.min_approvers,
            required_roles=body.required_roles,
        )
    )


@router.get("/{library_id}", responses=REFUSALS)
def get_library(library_id: LibraryId, access: Reader, session: SessionDep) -> LibraryOut:
    """One library version's lifecycle record."""
    return _out(service.get_version(session, access, library_id))


@router.get("/{library_id}/document", responses=REFUSALS)
def get_document(library_id: LibraryId, access: Reader, session: SessionDep) -> dict[str, Any]:
    """The version's canonical library document."""
    row = service.get_version(session, access, library_id)
    document: dict[str, Any] = json.loads(row.document)
    return document


@router.put("/{library_id}/entries/{entry_id}", responses=REFUSALS, openapi_extra=body_schema())
def put_entry(
    library_id: LibraryId,
    entry_id: EntryId,
    access: Author,
    entry: JsonBody,
    session: SessionDep,
    clock: ClockDep,
) -> LibraryOut:
    """Add or replace an entry (library document format); the version returns to draft, approvals lapse."""
    if not isinstance(entry, dict):
        raise InvalidInputError("an entry is a JSON object", code="library.entry_not_object")
    return _out(service.put_entry(session, clock, access, library_id, entry_id, entry))


@router.delete("/{library_id}/entries/{entry_id}", responses=REFUSALS)
def delete_entry(
    library_id: LibraryId, entry_id: EntryId, access: Author, session: SessionDep, clock: ClockDep
) -> LibraryOut:
    """Remove an entry; the version returns to draft."""
    return _out(service.delete_entry(session, clock, access, library_id, entry_id))


@router.post("/{library_id}/entries/{entry_id}/reviewed", responses=REFUSALS)
def mark_reviewed(
    library_id: LibraryId, entry_id: EntryId, access: Author, session: SessionDep, clock: ClockDep
) -> LibraryOut:
    """Record today's periodic review of an entry."""
    return _out(service.mark_reviewed(session, clock, access, library_id, entry_id))


@router.get("/{library_id}/lint", responses=REFUSALS)
def lint_library(library_id: LibraryId, access: Reviewer, session: SessionDep) -> list[FindingOut]:
    """Lint findings (errors block submission, approval and release)."""
    row = service.get_version(session, access, library_id)
    return [
        FindingOut(rule=f.rule, severity=f.severity.value, where=f.where, message=f.message)
        for f in service.findings(row)
    ]


@router.get("/{library_id}/search", responses=REFUSALS)
def search_entries(
    library_id: LibraryId,
    access: Reader,
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=128, description="any name, alias, brand, Tall Man")],
) -> SearchOut:
    """Entries whose drug answers to ``q`` (case-insensitive, part of a name), with "did you mean"."""
    row = service.get_version(session, access, library_id)
    found = search_library(service.library_of(row), q, high_alert_table())
    return SearchOut(
        query=q,
        matches=[
            SearchMatchOut(
                entry_id=m.entry.id,
                care_area_id=m.entry.care_area_id,
                drug_id=m.drug.id,
                drug=m.drug.shown_name,
                matched=m.matched,
            )
            for m in found.matches
        ],
        did_you_mean=list(found.did_you_mean),
    )


@router.get("/{library_id}/coverage", responses=REFUSALS)
def coverage(library_id: LibraryId, access: Reviewer, session: SessionDep) -> CoverageOut:
    """Per care area: entries, drugs, high-alert entries without a dose hard max, common classes missing."""
    row = service.get_version(session, access, library_id)
    report = library_coverage.coverage(service.library_of(row))
    return CoverageOut(
        library_id=row.id,
        version=row.version,
        common_classes=list(report.common_classes),
        areas=[
            AreaCoverageOut(
                care_area_id=a.care_area_id,
                name=a.name,
                entries=a.entries,
                drugs=a.drugs,
                high_alert_without_hard_max=list(a.high_alert_without_hard_max),
                missing_common_classes=list(a.missing_common_classes),
            )
            for a in report.areas
        ],
    )


@router.get("/{library_id}/diff", responses=REFUSALS)
def diff_library(
    library_id: LibraryId,
    access: Reviewer,
    session: SessionDep,
    against: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="default: the released version")
    ] = None,
) -> DiffOut:
    """What changed from another version (default: the released one) to this one."""
    row = service.get_version(session, access, library_id)
    other, changes = service.diff_against(session, access, library_id, against)
    if other is None or changes is None:
        return DiffOut(against_id=None, old_version=None, new_version=row.version, changes=[])
    return DiffOut(
        against_id=other.id,
        old_version=changes.old_version,
        new_version=changes.new_version,
        changes=[
            ChangeOut(
                kind=c.kind.value,
                section=c.section.value,
                where=c.where,
                parameter=c.parameter,
                old=None if c.old is None else format_value(c.old),
                new=None if c.new is None else format_value(c.new),
                factor=c.factor,
                flagged=c.flagged,
            )
            for c in changes.changes
        ],
    )


@router.post("/{library_id}/submit", responses=REFUSALS)
def submit(library_id: LibraryId, access: Author, session: SessionDep, clock: ClockDep) -> LibraryOut:
    """Send a draft to review (lint errors block it)."""
    return _out(service.submit(session, clock, access, library_id))


@router.post("/{library_id}/approve", responses=REFUSALS)
def approve(
    library_id: LibraryId, body: ApprovalCreate, access: PolicyApprover, session: SessionDep, clock: ClockDep
) -> LibraryOut:
    """Approve the current content (never one's own version) in a role the facility's release policy
    counts (403 ``library.approver_role`` otherwise)."""
    return _out(
        service.approve(
            session,
            clock,
            access,
            library_id,
            comment=body.comment,
            emergency=body.emergency,
            role=body.role,
        )
    )


@router.get("/{library_id}/policy-standing", responses=REFUSALS)
def policy_standing(library_id: LibraryId, access: Reviewer, session: SessionDep) -> PolicyStandingOut:
    """The current content's approvals against the release policy, and what is still missing."""
    row = service.get_version(session, access, library_id)
    standing = service.release_standing(session, row)
    return PolicyStandingOut(
        policy=_policy_out(standing.policy),
        approvals=[{"approver_id": user, "role": role.value} for user, role in standing.approvals],
        missing=list(standing.missing),
        satisfied=standing.satisfied,
    )


@router.get("/{library_id}/approvals", responses=REFUSALS)
def list_approvals(library_id: LibraryId, access: Reviewer, session: SessionDep) -> list[ApprovalOut]:
    """Every approval of the version; ``is_current`` tells whether it covers the current content."""
    row, approvals = service.approvals(session, access, library_id)
    return [
        ApprovalOut(
            approver_id=a.approver_id,
            content_hash=a.content_hash,
            approved_at=a.approved_at,
            is_emergency=a.is_emergency,
            comment=a.comment,
            is_current=a.content_hash == row.content_hash,
            role=Role(a.role),
        )
        for a in approvals
    ]


@router.post("/{library_id}/release", responses=REFUSALS)
def release(library_id: LibraryId, access: Approver, session: SessionDep, state: StateDep) -> LibraryOut:
    """Sign and release an approved version; the previous release is retired."""
    return _out(service.release(session, state.clock, state.keys, access, library_id))


@router.post("/{library_id}/emergency-release", responses=REFUSALS)
def emergency_release(
    library_id: LibraryId, body: EmergencyRelease, access: Approver, session: SessionDep, state: StateDep
) -> LibraryOut:
    """Release outside the review queue: two approvers of this content and a reason; raises an alert."""
    return _out(
        service.emergency_release(session, state.clock, state.keys, access, library_id, reason=body.reason)
    )


@router.post("/{library_id}/retire", responses=REFUSALS)
def retire(library_id: LibraryId, access: Approver, session: SessionDep, clock: ClockDep) -> LibraryOut:
    """Retire a version."""
    return _out(service.retire(session, clock, access, library_id))


@router.get("/{library_id}/signed", responses=REFUSALS)
def signed(library_id: LibraryId, access: Reader, session: SessionDep) -> dict[str, Any]:
    """The signed library (what pumps download and verify)."""
    document: dict[str, Any] = json.loads(service.signed_document(session, access, library_id))
    return document
