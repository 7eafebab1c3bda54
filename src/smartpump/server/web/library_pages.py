"""Drug-library pages: versions, entries by care area, draft edits, lint, diff, approval, release, import."""

from __future__ import annotations

import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path as FilePath
from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from smartpump.errors import SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.formats.detect import ImportFormat, detect_format
from smartpump.library.model import DrugLibrary, LibraryStatus
from smartpump.server.api.deps import ClockDep, SessionDep, StateDep, require_roles
from smartpump.server.auth import Access, Role
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import InvalidInputError
from smartpump.server.services import fleet
from smartpump.server.services import library_lifecycle as lifecycle
from smartpump.server.services import users as users_service
from smartpump.server.web.render import LIBRARY_READERS, LIBRARY_REVIEWERS, render
from smartpump.server.web.session import CsrfChecked
from smartpump.units import Concentration

router = APIRouter(include_in_schema=False)
Reader = Annotated[Access, require_roles(*LIBRARY_READERS)]
Pharmacist = Annotated[Access, require_roles(Role.PHARMACIST)]
Approver = Annotated[Access, require_roles(Role.PHARMACY_APPROVER)]
LibraryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
EntryId = Annotated[str, Path(max_length=128)]
LIMIT_KINDS: Final = ("hard_min", "soft_min", "soft_max", "hard_max")
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


def _imported(path: FilePath, filename: str) -> DrugLibrary:
    if filename.lower().endswith(".json"):
        return json_format.read(path)
    found = detect_format(path)
    if found is ImportFormat.ALARIS_XLSX:
        return read_alaris(path).library
    if found is ImportFormat.BAXTER_XLSX:
        return read_baxter(path).library
    raise InvalidInputError(
        f"{found.value} files are not libraries: import a smartpump JSON, Alaris or Baxter export",
        code="library.import_format",
    )


@router.post("/ui/libraries/import")
async def import_library(
    access: Pharmacist,
    _csrf: CsrfChecked,
    state: StateDep,
    facility_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    upload: Annotated[UploadFile, File()],
) -> Response:
    """Import a vendor export (Alaris or Baxter .xlsx) or a smartpump JSON library as a new draft."""
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInputError("the file is larger than 20 MB", code="library.import_too_large")
    name = FilePath(upload.filename or "upload").name
    with tempfile.TemporaryDirectory() as folder:
        path = FilePath(folder) / (name if name.lower().endswith((".json", ".xlsx")) else name + ".xlsx")
        path.write_bytes(data)
        library = _imported(path, name)
    with state.sessions() as session:
        facility = users_repo.facility_by_id(session, facility_id)
        if facility is None or not access.allows(facility_id):
            raise InvalidInputError(f"no facility {facility_id}", code="facility.not_found")
        document = json_format.to_document(library)
        document["hospital_id"] = facility.code
        row = lifecycle.create_draft(
            session, state.clock, access, facility_id=facility_id, document=document, based_on_id=None
        )
        return _back(row.id)


@router.get("/ui/libraries/{library_id}")
def library_page(
    request: Request,
    library_id: LibraryId,
    access: Reader,
    session: SessionDep,
    care_area: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """One version: entries by care area (Tall Man names), lint, diff against the release, approvals."""
    row = lifecycle.get_version(session, access, library_id)
    library = lifecycle.library_of(row)
    area = care_area or (library.care_areas[0].id if library.care_areas else "")
    entries = [e for e in library.entries if e.care_area_id == area]
    document = json_format.to_document(library)
    raw_entries = {e["id"]: e for e in document["entries"]}
    reviewer = Access(principal=access.principal, roles=LIBRARY_REVIEWERS)
    findings: list[Any] = []
    changes: Any = None
    against: Any = None
    approvals: list[Any] = []
    if reviewer.allows(row.facility_id):
        findings = lifecycle.findings(row)
        against, changes = lifecycle.diff_against(session, reviewer, library_id, None)
        approvals = list(lifecycle.approvals(session, reviewer, library_id)[1])
    status = LibraryStatus(row.status)
    roles_here = access.principal.roles_in(row.facility_id)
    return render(
        request,
        "library.html",
        principal=access.principal,
        active="libraries",
        row=row,
        library=library,
        area=area,
        entries=entries,
        raw_entries=raw_entries,
        findings=findings,
        changes=changes,
        against=against,
        approvals=approvals,
        approver_names={a.approver_id: _username(session, a.approver_id) for a in approvals},
        editable=status in lifecycle.EDITABLE and Role.PHARMACIST in roles_here,
        can_submit=status is LibraryStatus.DRAFT and Role.PHARMACIST in roles_here,
        can_approve=status in (LibraryStatus.IN_REVIEW, LibraryStatus.APPROVED)
        and Role.PHARMACY_APPROVER in roles_here,
        can_release=status is LibraryStatus.APPROVED and Role.PHARMACY_APPROVER in roles_here,
        limit_kinds=LIMIT_KINDS,
    )


def _username(session: Any, user_id: int) -> str:
    user = users_repo.user_by_id(session, user_id)
    return "?" if user is None else user.username


def _limit(value: str, what: str) -> Decimal | None:
    text = value.strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidInputError(f"{what} {text!r} is not a number", code="library.limit_invalid") from None
    if not number.is_finite() or number < 0:
        raise InvalidInputError(f"{what} must be a non-negative number", code="library.limit_invalid")
    return number


@router.post("/ui/libraries/{library_id}/entries")
def save_entry(
    library_id: LibraryId,
    access: Pharmacist,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    entry_id: Annotated[str, Form(min_length=1, max_length=128)],
    care_area_id: Annotated[str, Form(min_length=1, max_length=64)],
    drug_id: Annotated[str, Form(min_length=1, max_length=128)],
    dose_unit: Annotated[str, Form(min_length=1, max_length=32)],
    hard_min: Annotated[str, Form(max_length=32)] = "",
    soft_min: Annotated[str, Form(max_length=32)] = "",
    soft_max: Annotated[str, Form(max_length=32)] = "",
    hard_max: Annotated[str, Form(max_length=32)] = "",
    concentration: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Add an entry or change its dose limits (and, for a new entry, its concentration)."""
    row = lifecycle.get_version(session, access, library_id)
    document = json_format.to_document(lifecycle.library_of(row))
    existing = next((e for e in document["entries"] if e["id"] == entry_id), None)
    entry: dict[str, Any] = dict(existing) if existing else {"id": entry_id}
    entry["care_area_id"] = care_area_id
    entry["drug_id"] = drug_id
    values = {
        kind: _limit(value, kind.replace("_", " "))
        for kind, value in zip(LIMIT_KINDS, (hard_min, soft_min, soft_max, hard_max), strict=True)
    }
    entry["dose"] = {
        **(entry.get("dose") or {}),
        "unit": dose_unit.strip(),
        "limits": {k: v for k, v in values.items() if v is not None},
    }
    if concentration.strip():
        entry["concentrations"] = [_concentration_document(concentration)]
    lifecycle.put_entry(session, clock, access, library_id, entry_id, entry)
    return _back(library_id, f"?care_area={care_area_id}")


def _concentration_document(text: str) -> dict[str, Any]:
    try:
        parsed = Concentration.parse(text.strip())
    except (SmartpumpError, ValueError, ArithmeticError):
        raise InvalidInputError(
            f"concentration {text!r} is not like '400 mg/250 mL'", code="library.concentration_invalid"
        ) from None
    return {"amount": parsed.amount, "unit": parsed.unit.value, "volume_ml": parsed.volume_ml}


@router.post("/ui/libraries/{library_id}/entries/{entry_id}/delete")
def delete_entry(
    library_id: LibraryId,
    entry_id: EntryId,
    access: Pharmacist,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Remove an entry from a draft."""
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
    access: Approver,
    _csrf: CsrfChecked,
    session: SessionDep,
    clock: ClockDep,
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve the current content (never by its author or an editor)."""
    lifecycle.approve(session, clock, access, library_id, comment=comment, emergency=False)
    return _back(library_id)


@router.post("/ui/libraries/{library_id}/release")
def release(
    library_id: LibraryId, access: Approver, _csrf: CsrfChecked, session: SessionDep, state: StateDep
) -> Response:
    """Sign and release an approved version (the previous release retires)."""
    lifecycle.release(session, state.clock, state.keys, access, library_id)
    return _back(library_id)
