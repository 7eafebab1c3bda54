"""Drug library lifecycle: draft -> in review -> approved -> released -> retired.

Separation of duties: nobody who authored or edited a version may approve or release it. An approval is
bound to the SHA-256 of the version's canonical bytes; any edit changes the hash and so voids every earlier
approval (the version returns to draft). Release re-computes the hash from the stored document, needs the
approvals the facility's release policy asks for (``release_policy``; on the emergency path two distinct
approvers, one of them a pharmacy approver, and a reason), refuses lint errors (naming them), and signs the
library with the server's Ed25519 key. Change requests carry a severity and the draft that resolves them;
releasing that draft closes them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.errors import SmartpumpError
from smartpump.library import signing
from smartpump.library.diff import LibraryDiff, diff
from smartpump.library.formats import json_format
from smartpump.library.keys import KeyPurpose
from smartpump.library.lint import Finding, Severity, lint
from smartpump.library.model import DrugLibrary, LibraryStatus
from smartpump.server import audit
from smartpump.server.auth import Access, Role
from smartpump.server.db.models import ChangeRequest, LibraryApproval, LibraryVersion
from smartpump.server.db.repositories import libraries as repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.db.unit_of_work import in_own_transaction
from smartpump.server.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from smartpump.server.keys import Keyring
from smartpump.server.services import release_policy
from smartpump.server.settings import Settings
from smartpump.server.vocabulary import ChangeRequestSeverity, ChangeRequestStatus

logger = logging.getLogger("smartpump.server.library")

EDITABLE: Final = frozenset({LibraryStatus.DRAFT, LibraryStatus.IN_REVIEW, LibraryStatus.APPROVED})
EMERGENCY_APPROVALS: Final = 2
SHOWN_FINDINGS: Final = 5


def content_hash(library: DrugLibrary) -> str:
    """SHA-256 (hex) of the library's canonical bytes: what an approval is bound to."""
    return hashlib.sha256(json_format.canonical_bytes(library)).hexdigest()


def library_of(row: LibraryVersion) -> DrugLibrary:
    """The domain library stored in a version row."""
    return json_format.loads(row.document)


def build_library(document: Mapping[str, Any]) -> DrugLibrary:
    """A library from an untrusted document; every way it can be wrong becomes a 422 with a code."""
    try:
        return json_format.from_document(dict(document))
    except SmartpumpError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as error:
        raise InvalidInputError(f"library document is not valid: {error}", code="library.invalid") from None


def _store(row: LibraryVersion, library: DrugLibrary) -> str:
    row.document = json_format.dumps(library)
    row.content_hash = content_hash(library)
    return row.content_hash


def get_version(session: Session, access: Access, library_id: int) -> LibraryVersion:
    """A library version the caller may see (404 otherwise)."""
    row = repo.version_by_id(session, library_id)
    if row is None or not access.allows(row.facility_id):
        raise NotFoundError("no such library version", code="library.not_found")
    return row


def list_versions(
    session: Session,
    access: Access,
    *,
    facility_id: int | None,
    status: LibraryStatus | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[LibraryVersion], int]:
    """Versions of the caller's facilities, newest first."""
    return repo.list_versions(
        session,
        facility_ids=access.scope,
        facility_id=facility_id,
        status=None if status is None else status.value,
        limit=limit,
        offset=offset,
    )


def create_draft(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    facility_id: int,
    document: Mapping[str, Any] | None,
    based_on_id: int | None,
) -> LibraryVersion:
    """Start a draft from a document, from a given version, or (neither given) from the released one.

    The server numbers versions (highest in the facility + 1); the document's hospital must be the facility.
    """
    if not access.allows(facility_id):
        raise AccessDeniedError("you cannot author libraries in this facility", code="library.forbidden")
    facility = users_repo.facility_by_id(session, facility_id)
    if facility is None:
        raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
    base: LibraryVersion | None = None
    if document is not None:
        if based_on_id is not None:
            raise InvalidInputError(
                "give a document or based_on_id, not both", code="library.source_ambiguous"
            )
        library = build_library(document)
    else:
        base = (
            get_version(session, access, based_on_id)
            if based_on_id is not None
            else repo.released_in(session, facility_id)
        )
        if base is None:
            raise InvalidInputError(
                "no document given and no released version to start from", code="library.source_required"
            )
        if base.facility_id != facility_id:
            raise InvalidInputError(
                "a draft starts from a version of the same facility", code="library.facility"
            )
        library = library_of(base)
    if library.hospital_id != facility.code:
        raise InvalidInputError(
            f"library is for hospital {library.hospital_id!r}, not {facility.code!r}",
            code="library.hospital_mismatch",
        )
    version = repo.highest_version(session, facility_id) + 1
    library = replace(library, version=version, status=LibraryStatus.DRAFT)
    now = clock.now()
    row = LibraryVersion(
        facility_id=facility_id,
        name=library.name,
        version=version,
        status=LibraryStatus.DRAFT.value,
        document="",
        content_hash="",
        author_id=access.principal.user_id,
        based_on_id=None if base is None else base.id,
        created_at=now,
        updated_at=now,
    )
    _store(row, library)
    session.add(row)
    session.flush()
    repo.add_contributor(session, row.id, access.principal.user_id)
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="library.draft_created",
        object_type="library",
        object_id=row.id,
        facility_id=facility_id,
        details={
            "version": version,
            "content_hash": row.content_hash,
            "based_on": None if base is None else base.id,
        },
    )
    return row


def _edit(
    session: Session,
    clock: Clock,
    access: Access,
    row: LibraryVersion,
    library: DrugLibrary,
    what: dict[str, Any],
) -> LibraryVersion:
    status = LibraryStatus(row.status)
    if status not in EDITABLE:
        raise ConflictError(
            f"a {status.value} library cannot be edited; start a new draft", code="library.frozen"
        )
    old_hash = row.content_hash
    new_hash = _store(row, replace(library, status=LibraryStatus.DRAFT))
    if new_hash == old_hash:
        session.rollback()
        return row
    voided = sum(1 for a in repo.approvals(session, row.id) if a.content_hash == old_hash)
    row.status = LibraryStatus.DRAFT
    row.submitted_at = None
    row.updated_at = clock.now()
    repo.add_contributor(session, row.id, access.principal.user_id)
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="library.edited",
        object_type="library",
        object_id=row.id,
        facility_id=row.facility_id,
        details={
            **what,
            "old_hash": old_hash,
            "new_hash": new_hash,
            "approvals_voided": voided,
            "previous_status": status.value,
        },
    )
    return row


def put_entry(
    session: Session, clock: Clock, access: Access, library_id: int, entry_id: str, entry: Mapping[str, Any]
) -> LibraryVersion:
    """Add or replace one entry (its canonical document form); voids approvals of the old content."""
    row = get_version(session, access, library_id)
    if entry.get("id", entry_id) != entry_id:
        raise InvalidInputError("the entry's id must match the URL", code="library.entry_id_mismatch")
    document = json_format.to_document(library_of(row))
    entries = [e for e in document["entries"] if e.get("id") != entry_id]
    position = next((i for i, e in enumerate(document["entries"]) if e.get("id") == entry_id), len(entries))
    entries.insert(position, {**entry, "id": entry_id})
    document["entries"] = entries
    return _edit(session, clock, access, row, build_library(document), {"entry": entry_id, "change": "put"})


def delete_entry(
    session: Session, clock: Clock, access: Access, library_id: int, entry_id: str
) -> LibraryVersion:
    """Remove one entry; voids approvals of the old content."""
    row = get_version(session, access, library_id)
    library = library_of(row)
    if entry_id not in {e.id for e in library.entries}:
        raise NotFoundError(f"no entry {entry_id!r}", code="library.no_entry")
    trimmed = replace(library, entries=tuple(e for e in library.entries if e.id != entry_id))
    return _edit(session, clock, access, row, trimmed, {"entry": entry_id, "change": "delete"})


def mark_reviewed(
    session: Session, clock: Clock, access: Access, library_id: int, entry_id: str
) -> LibraryVersion:
    """Set an entry's last-review date to today (an edit: it voids approvals of the old content)."""
    row = get_version(session, access, library_id)
    library = library_of(row)
    if entry_id not in {e.id for e in library.entries}:
        raise NotFoundError(f"no entry {entry_id!r}", code="library.no_entry")
    today = clock.now().date().isoformat()
    entries = tuple(replace(e, last_reviewed=today) if e.id == entry_id else e for e in library.entries)
    return _edit(
        session,
        clock,
        access,
        row,
        replace(library, entries=entries),
        {"entry": entry_id, "change": "reviewed", "date": today},
    )


def findings(row: LibraryVersion) -> list[Finding]:
    """Lint findings of a stored version."""
    return lint(library_of(row))


def _errors(found: Sequence[Finding]) -> list[dict[str, str]]:
    return [
        {"rule": f.rule, "severity": f.severity.value, "where": f.where, "message": f.message}
        for f in found
        if f.severity is Severity.ERROR
    ]


def _lint_refusal(errors: Sequence[dict[str, str]], what: str) -> InvalidInputError:
    """A 422 that names the blocking findings (the first few in the message, all in the details)."""
    shown = "; ".join(f"{e['rule']} at {e['where']}: {e['message']}" for e in errors[:SHOWN_FINDINGS])
    more = f"; and {len(errors) - SHOWN_FINDINGS} more" if len(errors) > SHOWN_FINDINGS else ""
    return InvalidInputError(
        f"{len(errors)} lint error(s) block {what}: {shown}{more}",
        code="library.lint_errors",
        details=tuple(errors),
    )


def diff_against(
    session: Session, access: Access, library_id: int, against_id: int | None
) -> tuple[LibraryVersion | None, LibraryDiff | None]:
    """Differences from ``against_id`` (default: the facility's released version) to this version."""
    row = get_version(session, access, library_id)
    other = (
        get_version(session, access, against_id)
        if against_id is not None
        else repo.released_in(session, row.facility_id)
    )
    if other is None:
        return None, None
    return other, diff(library_of(other), library_of(row))


def submit(session: Session, clock: Clock, access: Access, library_id: int) -> LibraryVersion:
    """Send a draft to review; lint errors block it (422 with the findings)."""
    row = get_version(session, access, library_id)
    if row.status != LibraryStatus.DRAFT.value:
        raise ConflictError(f"only a draft can be submitted (this one is {row.status})", code="library.state")
    errors = _errors(findings(row))
    if errors:
        with in_own_transaction(session):
            audit.append(
                session,
                clock,
                actor=access.principal.username,
                action="library.submitted",
                object_type="library",
                object_id=row.id,
                facility_id=row.facility_id,
                outcome="denied",
                details={"lint_errors": len(errors)},
            )
        raise _lint_refusal(errors, "submission")
    row.status = LibraryStatus.IN_REVIEW
    row.submitted_at = clock.now()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="library.submitted",
        object_type="library",
        object_id=row.id,
        facility_id=row.facility_id,
        details={"content_hash": row.content_hash},
    )
    return row


def _verified_hash(row: LibraryVersion) -> str:
    """The hash recomputed from the stored document; refuses a document changed behind our back."""
    recomputed = content_hash(library_of(row))
    if recomputed != row.content_hash:
        raise ConflictError(
            "stored library content does not match its recorded hash", code="library.integrity"
        )
    return recomputed


def _refuse_contributor(
    session: Session, clock: Clock, access: Access, row: LibraryVersion, action: str
) -> None:
    if access.principal.user_id in repo.contributors(session, row.id):
        _deny(session, clock, access, row, action, "separation of duties: author or editor of this version")
        raise AccessDeniedError(
            "the author or an editor of a library version cannot approve or release it",
            code="library.separation_of_duties",
        )


def approve(
    session: Session,
    clock: Clock,
    access: Access,
    library_id: int,
    *,
    comment: str,
    emergency: bool,
    role: Role | None = None,
) -> LibraryVersion:
    """Approve the current content (bound to its hash) in one of the roles the facility's release policy
    counts (``role``, or the one still missing); emergency approvals may be given before review."""
    row = get_version(session, access, library_id)
    status = LibraryStatus(row.status)
    allowed = EDITABLE if emergency else frozenset({LibraryStatus.IN_REVIEW, LibraryStatus.APPROVED})
    if status not in allowed:
        raise ConflictError(f"a {status.value} library cannot be approved", code="library.state")
    _refuse_contributor(session, clock, access, row, "library.approved")
    digest = _verified_hash(row)
    errors = _errors(findings(row))
    if errors:
        raise _lint_refusal(errors, "approval")
    current = current_approvals(session, row, digest)
    if any(a.approver_id == access.principal.user_id for a in current):
        raise ConflictError("you approved this content already", code="library.already_approved")
    as_role = release_policy.approval_role(
        release_policy.policy_for(session, row.facility_id),
        access.principal.roles_in(row.facility_id),
        role,
        (Role(a.role) for a in current),
    )
    session.add(
        LibraryApproval(
            library_version_id=row.id,
            approver_id=access.principal.user_id,
            content_hash=digest,
            approved_at=clock.now(),
            is_emergency=emergency,
            comment=comment,
            role=as_role.value,
        )
    )
    if status is LibraryStatus.IN_REVIEW:
        row.status = LibraryStatus.APPROVED
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="library.approved",
        object_type="library",
        object_id=row.id,
        facility_id=row.facility_id,
        details={"content_hash": digest, "emergency": emergency, "role": as_role.value},
    )
    return row


def current_approvals(session: Session, row: LibraryVersion, digest: str) -> list[LibraryApproval]:
    """Approvals bound to ``digest`` by people who never edited the version (one per approver)."""
    editors = repo.contributors(session, row.id)
    return [
        a
        for a in repo.approvals(session, row.id)
        if a.content_hash == digest and a.approver_id not in editors
    ]


def release_standing(session: Session, row: LibraryVersion) -> release_policy.Standing:
    """How the approvals of the version's current content stand against its facility's release policy."""
    return release_policy.standing(
        release_policy.policy_for(session, row.facility_id),
        ((a.approver_id, Role(a.role)) for a in current_approvals(session, row, row.content_hash)),
    )


def release(session: Session, clock: Clock, keys: Keyring, access: Access, library_id: int) -> LibraryVersion:
    """Release an approved version: checks the hash-bound approval, signs it, retires the previous release."""
    row = get_version(session, access, library_id)
    if row.status != LibraryStatus.APPROVED.value:
        raise ConflictError(
            f"only an approved library can be released (this one is {row.status})", code="library.state"
        )
    _refuse_contributor(session, clock, access, row, "library.released")
    digest = _verified_hash(row)
    errors = _errors(findings(row))
    if errors:
        _deny(session, clock, access, row, "library.released", f"{len(errors)} lint error(s)")
        raise _lint_refusal(errors, "release")
    standing = release_standing(session, row)
    if not standing.satisfied:
        missing = "; ".join(standing.missing)
        _deny(session, clock, access, row, "library.released", f"release policy not met: {missing}")
        raise ConflictError(
            f"the release policy ({standing.policy.describe()}) is not met: {missing}",
            code="library.policy_unmet",
        )
    released = _sign_and_release(session, clock, keys, access, row, digest, emergency_reason=None)
    session.flush()
    return released


def emergency_release(
    session: Session, clock: Clock, keys: Keyring, access: Access, library_id: int, *, reason: str
) -> LibraryVersion:
    """Release without the review queue: two different approvers of the current content, and a reason.

    Raises an alert (warning log + audit) and opens a post-hoc review change request.
    """
    row = get_version(session, access, library_id)
    if LibraryStatus(row.status) not in EDITABLE:
        raise ConflictError(f"a {row.status} library cannot be released", code="library.state")
    _refuse_contributor(session, clock, access, row, "library.emergency_released")
    digest = _verified_hash(row)
    current = current_approvals(session, row, digest)
    approvers = {a.approver_id for a in current}
    if len(approvers) < EMERGENCY_APPROVALS:
        _deny(
            session,
            clock,
            access,
            row,
            "library.emergency_released",
            f"{len(approvers)} approval(s) of the current content; {EMERGENCY_APPROVALS} needed",
        )
        raise ConflictError(
            f"emergency release needs {EMERGENCY_APPROVALS} approvals from different approvers",
            code="library.two_approvals_required",
        )
    if all(a.role != Role.PHARMACY_APPROVER.value for a in current):
        _deny(session, clock, access, row, "library.emergency_released", "no pharmacy approver")
        raise ConflictError(
            "emergency release needs a pharmacy approver among its approvers",
            code="library.pharmacy_required",
        )
    waived = release_standing(session, row).missing
    released = _sign_and_release(session, clock, keys, access, row, digest, emergency_reason=reason)
    logger.warning(
        "emergency library release",
        extra={
            "library_id": row.id,
            "facility_id": row.facility_id,
            "version": row.version,
            "actor": access.principal.username,
        },
    )
    session.add(
        ChangeRequest(
            facility_id=row.facility_id,
            library_version_id=row.id,
            title=f"Post-hoc review of emergency release v{row.version}",
            reason=reason + (f" (release policy waived: {'; '.join(waived)})" if waived else ""),
            severity=ChangeRequestSeverity.HIGH.value,
            status=ChangeRequestStatus.OPEN.value,
            requested_by=access.principal.user_id,
            created_at=clock.now(),
        )
    )
    session.flush()
    return released


def _deny(
    session: Session, clock: Clock, access: Access, row: LibraryVersion, action: str, reason: str
) -> None:
    with in_own_transaction(session):
        audit.append(
            session,
            clock,
            actor=access.principal.username,
            action=action,
            object_type="library",
            object_id=row.id,
            facility_id=row.facility_id,
            outcome="denied",
            details={"reason": reason},
        )


def _sign_and_release(
    session: Session,
    clock: Clock,
    keys: Keyring,
    access: Access,
    row: LibraryVersion,
    digest: str,
    *,
    emergency_reason: str | None,
) -> LibraryVersion:
    library = library_of(row)
    errors = _errors(lint(library))
    if errors:
        raise _lint_refusal(errors, "release")
    signer = keys.signer(KeyPurpose.LIBRARY)
    signed = signing.sign(replace(library, status=LibraryStatus.RELEASED), signer.private_pem, signer.key_id)
    now = clock.now()
    previous = repo.released_in(session, row.facility_id)
    if previous is not None:
        previous.status = LibraryStatus.RETIRED
        previous.retired_at = now
        audit.append(
            session,
            clock,
            actor=access.principal.username,
            action="library.retired",
            object_type="library",
            object_id=previous.id,
            facility_id=previous.facility_id,
            details={"version": previous.version, "superseded_by": row.version},
        )
    row.status = LibraryStatus.RELEASED
    row.released_at = now
    row.released_by = access.principal.user_id
    row.signed_document = signed.to_json()
    row.key_id = signer.key_id
    row.is_emergency = emergency_reason is not None
    row.emergency_reason = emergency_reason
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="library.emergency_released" if emergency_reason else "library.released",
        object_type="library",
        object_id=row.id,
        facility_id=row.facility_id,
        outcome="alert" if emergency_reason else "success",
        details={
            "version": row.version,
            "content_hash": digest,
            "key_id": signer.key_id,
            "reason": emergency_reason,
        },
    )
    _resolve_change_requests(session, clock, access, row)
    return row


def _resolve_change_requests(session: Session, clock: Clock, access: Access, row: LibraryVersion) -> None:
    """Close the change requests this release resolves (those linked to it and still open or accepted)."""
    for request in repo.change_requests_resolved_by(session, row.id):
        if request.status not in (ChangeRequestStatus.OPEN.value, ChangeRequestStatus.ACCEPTED.value):
            continue
        request.status = ChangeRequestStatus.DONE
        request.decided_by = access.principal.user_id
        request.decided_at = clock.now()
        request.decision_note = f"resolved by the release of v{row.version}"
        audit.append(
            session,
            clock,
            actor=access.principal.username,
            action="change_request.resolved",
            object_type="change_request",
            object_id=request.id,
            facility_id=request.facility_id,
            details={"library": row.id, "version": row.version, "severity": request.severity},
        )


def retire(session: Session, clock: Clock, access: Access, library_id: int) -> LibraryVersion:
    """Retire a version that is not already retired (a released one leaves the facility without a release)."""
    row = get_version(session, access, library_id)
    if row.status == LibraryStatus.RETIRED.value:
        raise ConflictError("library is retired already", code="library.state")
    previous = row.status
    row.status = LibraryStatus.RETIRED
    row.retired_at = clock.now()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="library.retired",
        object_type="library",
        object_id=row.id,
        facility_id=row.facility_id,
        details={"previous_status": previous},
    )
    return row


def signed_document(session: Session, access: Access, library_id: int) -> str:
    """The signed library JSON of a released (or retired after release) version."""
    row = get_version(session, access, library_id)
    if row.signed_document is None:
        raise ConflictError("this version was never released", code="library.unsigned")
    return row.signed_document


def approvals(
    session: Session, access: Access, library_id: int
) -> tuple[LibraryVersion, Sequence[LibraryApproval]]:
    """A version and every approval it ever received."""
    row = get_version(session, access, library_id)
    return row, repo.approvals(session, row.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class OverdueReview:
    """An entry of a released library whose periodic review is overdue (or was never recorded)."""

    library_id: int
    facility_id: int
    version: int
    entry_id: str
    drug_id: str
    care_area_id: str
    last_reviewed: str | None
    due: str | None


def overdue_reviews(
    session: Session, clock: Clock, settings: Settings, access: Access
) -> list[OverdueReview]:
    """Entries of the released libraries whose last review is older than the review interval, or missing."""
    today = clock.now().date()
    interval = timedelta(days=settings.review_interval_days)
    overdue = []
    for row in repo.released_versions(session, facility_ids=access.scope):
        for entry in library_of(row).entries:
            reviewed = _parse_date(entry.last_reviewed)
            due = None if reviewed is None else reviewed + interval
            if due is None or due < today:
                overdue.append(
                    OverdueReview(
                        library_id=row.id,
                        facility_id=row.facility_id,
                        version=row.version,
                        entry_id=entry.id,
                        drug_id=entry.drug_id,
                        care_area_id=entry.care_area_id,
                        last_reviewed=entry.last_reviewed,
                        due=None if due is None else due.isoformat(),
                    )
                )
    return overdue


def _parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None
