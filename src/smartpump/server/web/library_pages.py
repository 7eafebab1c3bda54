"""Drug-library pages: versions, entries by care area, draft edits, lint, diff, approval, release, import."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from smartpump.errors import SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.formats.detect import ImportFormat, detect_format
from smartpump.library.formats.high_alert_table import high_alert_table
from smartpump.library.formats.import_report import ImportReport
from smartpump.library.model import DrugLibrary, LibraryStatus
from smartpump.library.search import search as search_entries
from smartpump.server.api.deps import ClockDep, SessionDep, StateDep, require_roles
from smartpump.server.api.errors import status_for
from smartpump.server.auth import Access, Role
from smartpump.server.body_limits import check_json_shape, json_limits
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.services import (
    change_requests,
    deployment,
    fleet,
    library_coverage,
    release_policy,
)
from smartpump.server.services import library_lifecycle as lifecycle
from smartpump.server.services import users as users_service
from smartpump.server.services.deployment import DeploymentKind, TargetKind
from smartpump.server.web import configuration_form, entry_form
from smartpump.server.web.render import LIBRARY_READERS, LIBRARY_REVIEWERS, render
from smartpump.server.web.session import CsrfChecked

router = APIRouter(include_in_schema=False)
Reader = Annotated[Access, require_roles(*LIBRARY_READERS)]
Reviewer = Annotated[Access, require_roles(*LIBRARY_REVIEWERS)]
Pharmacist = Annotated[Access, require_roles(Role.PHARMACIST)]
Approver = Annotated[Access, require_roles(Role.PHARMACY_APPROVER)]
PolicyApprover = Annotated[Access, require_roles(*release_policy.APPROVER_ROLES)]
DEPLOYERS: Final = frozenset({Role.PHARMACY_APPROVER, Role.BIOMED})
"""Who deploys a released library: pharmacy approvers and biomedical engineering (docs/fleet.md)."""
Deployer = Annotated[Access, require_roles(*DEPLOYERS)]
LibraryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
EntryId = Annotated[str, Path(max_length=128)]
MAX_FIELD_CHARS: Final = 4000
MAX_SHOWN_ROWS: Final = 200
MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024


def _back(library_id: int, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/ui/libraries/{library_id}{anchor}", status_code=303)


@router.get("/ui/libraries")
def libraries_page(request: Request, access: Reader, session: SessionDep) -> Response:
    """Every library version of the caller's facilities with its status, and fleet currency."""
    versions, _ = lifecycle.list_versions(session, access, facility_id=None, status=None, limit=200, offset=0)
    currency = fleet.library_currency(session, Access(principal=access.principal, roles=access.roles))
    facilities = users_service.list_facilities(session, access)
    authors = {v.author_id: users_repo.user_by_id(session, v.author_id) for v in versions}
    return render(
        request,
        "libraries.html",
        principal=access.principal,
        active="libraries",
        versions=versions,
        currency=currency,
        facilities=facilities,
        authors={k: (u.username if u else "?") for k, u in authors.items()},
        is_pharmacist=access.principal.has_any_role({Role.PHARMACIST}),
    )


@router.post("/ui/libraries")
def new_draft(
    access: Pharmacist,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    facility_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
) -> Response:
    """Start a draft from the facility's released version."""
    row = lifecycle.create_draft(
        session, clock, access, facility_id=facility_id, document=None, based_on_id=None
    )
    return _back(row.id)


def _imported(path: FilePath, filename: str) -> tuple[DrugLibrary, ImportReport | None]:
    if filename.lower().endswith(".json"):
        return json_format.read(path), None
    found = detect_format(path)
    if found is ImportFormat.ALARIS_XLSX:
        result = read_alaris(path)
        return result.library, result.report
    if found is ImportFormat.BAXTER_XLSX:
        result = read_baxter(path)
        return result.library, result.report
    raise InvalidInputError(
        f"{found.value} files are not libraries: import a smartpump JSON, Alaris or Baxter export",
        code="library.import_format",
    )


@router.post("/ui/libraries/import")
async def import_library(
    request: Request,
    access: Pharmacist,
    _csrf: CsrfChecked,
    state: StateDep,
    facility_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    upload: Annotated[UploadFile, File()],
) -> Response:
    """Import a vendor export (Alaris or Baxter .xlsx) or a smartpump JSON library as a new draft.

    Answers with the import summary: counts per sheet, the rows the library does not hold, and the draft.
    """
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInputError("the file is larger than 20 MB", code="library.import_too_large")
    name = FilePath(upload.filename or "upload").name
    if name.lower().endswith(".json"):
        check_json_shape(json_limits(state.settings), data, "the file")
    with tempfile.TemporaryDirectory() as folder:
        path = FilePath(folder) / (name if name.lower().endswith((".json", ".xlsx")) else name + ".xlsx")
        path.write_bytes(data)
        library, report = _imported(path, name)
    with unit_of_work(state.sessions) as session:
        facility = users_repo.facility_by_id(session, facility_id)
        if facility is None or not access.allows(facility_id):
            raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
        document = json_format.to_document(library)
        document["hospital_id"] = facility.code
        row = lifecycle.create_draft(
            session, state.clock, access, facility_id=facility_id, document=document, based_on_id=None
        )
        return render(
            request,
            "import_summary.html",
            principal=access.principal,
            active="libraries",
            row=row,
            filename=name,
            library=library,
            report=report,
            shown_rows=None if report is None else report.unrepresented[:MAX_SHOWN_ROWS],
        )


@router.get("/ui/libraries/{library_id}")
def library_page(
    request: Request,
    library_id: LibraryId,
    access: Reader,
    session: SessionDep,
    care_area: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """One version: entries by care area (Tall Man names) or found by any drug name (``q``), lint, diff
    against the release, approvals against the release policy, change requests and deployments."""
    row = lifecycle.get_version(session, access, library_id)
    library = lifecycle.library_of(row)
    area = care_area or (library.care_areas[0].id if library.care_areas else "")
    found = search_entries(library, q, high_alert_table()) if q.strip() else None
    entries = (
        [m.entry for m in found.matches] if found else [e for e in library.entries if e.care_area_id == area]
    )
    reviewer = Access(principal=access.principal, roles=LIBRARY_REVIEWERS)
    findings: list[Any] = []
    changes: Any = None
    against: Any = None
    approvals: list[Any] = []
    requests: list[Any] = []
    if reviewer.allows(row.facility_id):
        findings = lifecycle.findings(row)
        against, changes = lifecycle.diff_against(session, reviewer, library_id, None)
        approvals = list(lifecycle.approvals(session, reviewer, library_id)[1])
        requests = change_requests.change_requests_of(session, reviewer, row)
    status = LibraryStatus(row.status)
    roles_here = access.principal.roles_in(row.facility_id)
    standing = lifecycle.release_standing(session, row)
    approve_roles = [
        r for r in release_policy.APPROVER_ROLES if r in roles_here and r in standing.policy.counted_roles
    ]
    mine = next(
        (
            a
            for a in lifecycle.current_approvals(session, row, row.content_hash)
            if a.approver_id == access.principal.user_id
        ),
        None,
    )
    versions, _ = lifecycle.list_versions(
        session, access, facility_id=row.facility_id, status=None, limit=200, offset=0
    )
    deployments = [
        d
        for d in deployment.list_deployments(session, access)
        if d.kind == DeploymentKind.LIBRARY.value
        and d.facility_id == row.facility_id
        and d.library_version == row.version
    ]
    return render(
        request,
        "library.html",
        principal=access.principal,
        active="libraries",
        row=row,
        library=library,
        area=area,
        entries=entries,
        findings=findings,
        changes=changes,
        against=against,
        approvals=approvals,
        approver_names={a.approver_id: _username(session, a.approver_id) for a in approvals},
        standing=standing,
        requests=requests,
        is_reviewer=reviewer.allows(row.facility_id),
        query=q,
        found=found,
        versions=versions,
        deployments=deployments,
        target_kinds=[k.value for k in TargetKind],
        can_deploy=status is LibraryStatus.RELEASED and bool(DEPLOYERS & roles_here),
        approve_roles=approve_roles,
        editable=status in lifecycle.EDITABLE and Role.PHARMACIST in roles_here,
        amounts=entry_form.UNIT_AMOUNTS,
        times=entry_form.UNIT_TIMES,
        can_submit=status is LibraryStatus.DRAFT and Role.PHARMACIST in roles_here,
        my_approval=mine,
        can_approve=status in (LibraryStatus.IN_REVIEW, LibraryStatus.APPROVED)
        and bool(approve_roles)
        and mine is None,
        can_release=status is LibraryStatus.APPROVED and Role.PHARMACY_APPROVER in roles_here,
        can_link=status in lifecycle.EDITABLE and Role.PHARMACIST in roles_here,
    )


def _username(session: Any, user_id: int) -> str:
    user = users_repo.user_by_id(session, user_id)
    return "?" if user is None else user.username


async def _form_values(request: Request) -> dict[str, str]:
    """The submitted form's text fields (bounded in number and length)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    too_long = sorted(k for k, v in values.items() if len(v) > MAX_FIELD_CHARS)
    if too_long:
        raise InvalidInputError(f"fields too long: {', '.join(too_long)}", code="request.field_too_long")
    return values


FormValues = Annotated[dict[str, str], Depends(_form_values)]


def _entry_page(
    request: Request,
    access: Access,
    row: Any,
    entry_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: entry_form.Errors | None = None,
    problem: str | None = None,
    confirm_removal: bool = False,
    status_code: int = 200,
) -> Response:
    library = lifecycle.library_of(row)
    document = json_format.to_document(library)
    raw = next((e for e in document["entries"] if e["id"] == entry_id), None)
    if raw is None and values is None:
        raise NotFoundError(f"no entry {entry_id!r}", code="library.no_entry")
    entry = None if raw is None else library.entry(entry_id)
    status = LibraryStatus(row.status)
    return render(
        request,
        "entry.html",
        principal=access.principal,
        active="libraries",
        row=row,
        library=library,
        entry=entry,
        entry_id=entry_id,
        care_area_id=(values or {}).get("care_area_id") or (raw or {}).get("care_area_id", ""),
        drug_id=(values or {}).get("drug_id") or (raw or {}).get("drug_id", ""),
        saved=entry_form.values_of(raw or {}),
        values=values if values is not None else entry_form.values_of(raw or {}),
        errors=errors or {},
        problem=problem,
        confirm_removal=confirm_removal,
        params=entry_form.PARAMS,
        bounds=entry_form.BOUNDS,
        routes=entry_form.ROUTES,
        modes=entry_form.MODES,
        amounts=entry_form.UNIT_AMOUNTS,
        times=entry_form.UNIT_TIMES,
        editable=status in lifecycle.EDITABLE
        and Role.PHARMACIST in access.principal.roles_in(row.facility_id),
        status_code=status_code,
    )


@router.get("/ui/libraries/{library_id}/entries/{entry_id}")
def entry_page(
    request: Request, library_id: LibraryId, entry_id: EntryId, access: Reader, session: SessionDep
) -> Response:
    """One entry: every limit it holds, and (in an editable version, for a pharmacist) the editor."""
    row = lifecycle.get_version(session, access, library_id)
    return _entry_page(request, access, row, entry_id)


@router.post("/ui/libraries/{library_id}/entries")
def save_entry(
    request: Request,
    library_id: LibraryId,
    access: Pharmacist,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    values: FormValues,
) -> Response:
    """Add or change an entry: all its limits, concentrations, therapy, route and advisory.

    Each field is checked here; a refusal (ours or the lifecycle service's) is shown next to its field
    with its code, and nothing is saved. An edit that empties a bound the entry held is destructive: it is
    saved only when submitted again with ``confirm_removal=yes`` (the page says which limits go). Saving
    voids approvals of the old content, as the service does.
    """
    row = lifecycle.get_version(session, access, library_id)
    entry_id = values.get("entry_id", "").strip()
    document = json_format.to_document(lifecycle.library_of(row))
    existing = next((e for e in document["entries"] if e["id"] == entry_id), None)
    base: dict[str, Any] = dict(existing) if existing else {"id": entry_id}
    errors: entry_form.Errors = {}
    for key, limit in (("entry_id", 128), ("care_area_id", 64), ("drug_id", 128)):
        text = values.get(key, "").strip()
        if not text or len(text) > limit:
            errors[key] = (
                f"{key.replace('_', ' ')} is required (at most {limit} characters)",
                "request.invalid",
            )
    if existing is None:
        base["care_area_id"] = values.get("care_area_id", "").strip()
        base["drug_id"] = values.get("drug_id", "").strip()
    entry, found = entry_form.parse(values, base)
    errors.update(found)
    removed = entry_form.removed_limits(entry_form.values_of(existing), values) if existing else ()
    if not errors and removed and values.get("confirm_removal") != "yes":
        return _entry_page(
            request,
            access,
            row,
            entry_id,
            values=values,
            problem=(
                f"Nothing was saved yet: this edit removes {len(removed)} limit(s) ({'; '.join(removed)}), "
                "which will no longer alert. Press 'Save entry' again to confirm, or restore the values."
            ),
            confirm_removal=True,
            status_code=409,
        )
    if not errors:
        try:
            lifecycle.put_entry(session, clock, access, library_id, entry_id, entry)
        except SmartpumpError as error:
            session.rollback()
            problems = getattr(error, "problems", ())
            detail = "; ".join(problems) if problems else error.message
            return _entry_page(
                request,
                access,
                row,
                entry_id,
                values=values,
                problem=f"{detail} ({error.code})",
                status_code=status_for(error),
            )
        return RedirectResponse(
            f"/ui/libraries/{library_id}/entries/{quote(entry_id, safe='')}", status_code=303
        )
    return _entry_page(
        request,
        access,
        row,
        entry_id,
        values=values,
        errors=errors,
        problem="Nothing was saved: correct the fields marked below.",
        status_code=422,
    )


@router.post("/ui/libraries/{library_id}/entries/{entry_id}/delete")
def delete_entry(
    request: Request,
    library_id: LibraryId,
    entry_id: EntryId,
    access: Pharmacist,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Remove an entry from a draft, only once confirmed: without ``confirm=yes`` nothing is removed and
    the answer is the confirmation page (what goes, and that approvals of the current content lapse)."""
    if confirm != "yes":
        row = lifecycle.get_version(session, access, library_id)
        library = lifecycle.library_of(row)
        if entry_id not in {e.id for e in library.entries}:
            raise NotFoundError(f"no entry {entry_id!r}", code="library.no_entry")
        entry = library.entry(entry_id)
        return render(
            request,
            "entry_delete.html",
            principal=access.principal,
            active="libraries",
            row=row,
            entry=entry,
            drug=library.drug(entry.drug_id),
        )
    lifecycle.delete_entry(session, clock, access, library_id, entry_id)
    return _back(library_id)


@router.post("/ui/libraries/{library_id}/submit")
def submit(
    library_id: LibraryId, access: Pharmacist, _csrf: CsrfChecked, session: SessionDep, clock: ClockDep
) -> Response:
    """Send a draft to review (lint errors block it)."""
    lifecycle.submit(session, clock, access, library_id)
    return _back(library_id)


@router.post("/ui/libraries/{library_id}/approve")
def approve(
    library_id: LibraryId,
    access: PolicyApprover,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    comment: Annotated[str, Form(max_length=2000)] = "",
    role: Annotated[Role | None, Form()] = None,
) -> Response:
    """Approve the current content in a role the release policy counts (never by its author or an editor)."""
    lifecycle.approve(session, clock, access, library_id, comment=comment, emergency=False, role=role)
    return _back(library_id)


@router.post("/ui/libraries/{library_id}/release")
def release(
    library_id: LibraryId, access: Approver, _csrf: CsrfChecked, session: SessionDep, state: StateDep
) -> Response:
    """Sign and release an approved version (the previous release retires)."""
    lifecycle.release(session, state.clock, state.keys, access, library_id)
    return _back(library_id)


@router.post("/ui/libraries/{library_id}/change-requests/{request_id}/link")
def link_change_request(
    library_id: LibraryId,
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    access: Pharmacist,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Mark this draft as the one that resolves a change request (its release closes the request)."""
    change_requests.link_change_request(session, clock, access, request_id, library_id=library_id)
    return _back(library_id, "#change-requests")


@router.get("/ui/libraries/{library_id}/coverage")
def coverage_page(request: Request, library_id: LibraryId, access: Reviewer, session: SessionDep) -> Response:
    """Care-area coverage: entries per care area, unprotected high-alert drugs, common classes missing."""
    row = lifecycle.get_version(session, access, library_id)
    return render(
        request,
        "library_coverage.html",
        principal=access.principal,
        active="libraries",
        row=row,
        report=library_coverage.coverage(lifecycle.library_of(row)),
    )


@router.get("/ui/libraries/{library_id}/compare")
def compare_page(
    request: Request,
    library_id: LibraryId,
    access: Reviewer,
    session: SessionDep,
    against: Annotated[int, Query(ge=1, le=2**31 - 1)],
    new: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """Differences between any two versions: from ``against`` (old) to this one, or to ``new`` when the
    form chose another new version (then the answer redirects to that version's comparison)."""
    if new is not None and new != library_id:
        lifecycle.get_version(session, access, new)
        return RedirectResponse(f"/ui/libraries/{new}/compare?against={against}", status_code=303)
    row = lifecycle.get_version(session, access, library_id)
    other, changes = lifecycle.diff_against(session, access, library_id, against)
    versions, _ = lifecycle.list_versions(
        session, access, facility_id=row.facility_id, status=None, limit=200, offset=0
    )
    return render(
        request,
        "library_compare.html",
        principal=access.principal,
        active="libraries",
        row=row,
        against=other,
        changes=changes,
        versions=versions,
    )


@router.post("/ui/libraries/{library_id}/deploy")
def deploy(
    library_id: LibraryId,
    access: Deployer,
    _csrf: CsrfChecked,
    session: SessionDep,
    state: StateDep,
    target_kind: Annotated[str, Form(max_length=16)],
    target_value: Annotated[str, Form(max_length=64)] = "",
    waves: Annotated[str, Form(max_length=64)] = "100",
    pause_s: Annotated[int, Form(ge=0, le=7 * 24 * 3600)] = 600,
) -> Response:
    """Offer the released library to a pump, a care area, a model or all pumps of its facility, in waves,
    through the deployment service the API uses (pharmacy approvers and biomeds)."""
    row = lifecycle.get_version(session, access, library_id)
    try:
        kind = TargetKind(target_kind)
    except ValueError:
        raise InvalidInputError(
            f"the target is one of {', '.join(k.value for k in TargetKind)}", code="deployment.target"
        ) from None
    deployment.create_deployment(
        session,
        state,
        access,
        facility_id=row.facility_id,
        kind=DeploymentKind.LIBRARY,
        library_id=row.id,
        package_id=None,
        target_kind=kind,
        target_value=target_value.strip() or None,
        waves=configuration_form.waves_of(waves),
        pause_s=pause_s,
    )
    return _back(library_id, "#deployments")
