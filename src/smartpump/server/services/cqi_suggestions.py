"""CQI limit suggestions over the event store: a read-only preview per released version (the CQI page)
and a new draft with its change request holding the evidence (the API)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from smartpump.analytics.replay import program_rows
from smartpump.analytics.suggest import Suggestion, suggest, to_draft
from smartpump.clock import Clock
from smartpump.library.formats import json_format
from smartpump.library.model import LibraryStatus
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.repositories import cqi as repo
from smartpump.server.db.repositories import libraries as libraries_repo
from smartpump.server.errors import ConflictError, InvalidInputError
from smartpump.server.services import change_requests, cqi, library_lifecycle


@dataclass(frozen=True, slots=True, kw_only=True)
class SuggestionDraft:
    """Limit suggestions for a released version and the draft (with its change request) that carries them."""

    facility_id: int
    released_id: int
    released_version: int
    draft_id: int | None
    draft_version: int | None
    change_request_id: int | None
    suggestions: tuple[Suggestion, ...]
    note: str
    synthetic: bool


def _evidence(
    released_version: int,
    released_id: int,
    since: datetime | None,
    until: datetime | None,
    programs: int,
    synthetic: bool,
    found: Sequence[Suggestion],
) -> str:
    window = cqi.window_text(since, until)
    lines = [
        f"CQI limit suggestions on released version {released_version} (id {released_id}) from {programs} "
        f"programs, events {window}{' (SYNTHETIC history)' if synthetic else ''}. Only dose soft maxima "
        "are raised; hard limits are unchanged.",
    ]
    for s in found:
        lines.append(
            f"- {s.entry_id}: dose soft_max {s.current} -> {s.proposed} {s.unit} (hard max "
            f"{'none' if s.hard_max is None else s.hard_max}); {s.overrides} overridden soft-max alerts; "
            f"replayed soft alerts {s.soft_alerts_before} -> {s.soft_alerts_after}; good catches still "
            f"alerting {s.good_catches_kept}/{s.good_catches}; lowest good-catch dose above today's soft "
            f"max: {'none' if s.lowest_good_catch is None else s.lowest_good_catch}."
        )
        lines.extend(f"  WARNING: {warning}" for warning in s.warnings)
    return "\n".join(lines)


def suggest_draft(
    session: Session,
    clock: Clock,
    access: Access,
    released_id: int,
    *,
    since: datetime | None,
    until: datetime | None,
    quantile: float = 0.9,
    min_overrides: int = 3,
) -> SuggestionDraft:
    """Suggest soft-max changes from the facility's stored history and, when there are any, open a NEW
    DRAFT (author: the caller) based on the released version with them, plus a change request whose
    reason is the evidence. The draft follows the normal review, approval and release; nothing is released.

    Raises:
        NotFoundError: ``library.not_found``; ConflictError: ``cqi.not_released``;
        InvalidInputError: ``cqi.parameter`` for a quantile outside (0, 1] or ``min_overrides`` < 1.
    """
    if not 0 < quantile <= 1 or min_overrides < 1:
        raise InvalidInputError("quantile must be in (0, 1] and min_overrides >= 1", code="cqi.parameter")
    released = library_lifecycle.get_version(session, access, released_id)
    if released.status != LibraryStatus.RELEASED.value:
        raise ConflictError(
            f"suggestions start from the released version (this one is {released.status})",
            code="cqi.not_released",
        )
    loaded = cqi.load_events(session, access, facility_id=released.facility_id, since=since, until=until)
    library = library_lifecycle.library_of(released)
    found = tuple(suggest(loaded.frame, library, quantile=quantile, min_overrides=min_overrides))
    programs = program_rows(loaded.frame).height
    note = _evidence(released.version, released.id, since, until, programs, loaded.synthetic, found)
    base = SuggestionDraft(
        facility_id=released.facility_id,
        released_id=released.id,
        released_version=released.version,
        draft_id=None,
        draft_version=None,
        change_request_id=None,
        suggestions=found,
        note=note,
        synthetic=loaded.synthetic,
    )
    if not found:
        return base
    draft = library_lifecycle.create_draft(
        session, clock, access, facility_id=released.facility_id, document=None, based_on_id=released.id
    )
    entries = {e["id"]: e for e in json_format.to_document(to_draft(library, list(found)))["entries"]}
    for s in found:
        library_lifecycle.put_entry(session, clock, access, draft.id, s.entry_id, entries[s.entry_id])
    request = change_requests.create_change_request(
        session,
        clock,
        access,
        facility_id=released.facility_id,
        library_id=draft.id,
        title=f"CQI limit suggestions on v{released.version} ({len(found)} entry changes)",
        reason=note,
    )
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="cqi.suggestions_drafted",
        object_type="library",
        object_id=draft.id,
        facility_id=released.facility_id,
        details={
            "released_id": released.id,
            "change_request": request.id,
            "synthetic": loaded.synthetic,
            "changes": [
                {"entry": s.entry_id, "soft_max": str(s.current), "proposed": str(s.proposed)} for s in found
            ],
        },
    )
    return SuggestionDraft(
        facility_id=base.facility_id,
        released_id=base.released_id,
        released_version=base.released_version,
        draft_id=draft.id,
        draft_version=draft.version,
        change_request_id=request.id,
        suggestions=found,
        note=note,
        synthetic=loaded.synthetic,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SuggestionPreview:
    """A facility's released version with the limit suggestions its stored history gives (none drafted)."""

    facility_code: str
    released_id: int
    released_version: int
    suggestions: tuple[Suggestion, ...]


def preview_suggestions(
    session: Session,
    access: Access,
    *,
    since: datetime | None,
    until: datetime | None,
    quantile: float = 0.9,
    min_overrides: int = 3,
) -> tuple[SuggestionPreview, ...]:
    """For each facility in scope with a released version: the suggestions ``suggest_draft`` would make,
    with their warnings; nothing is written."""
    previews: list[SuggestionPreview] = []
    for facility in repo.facilities(session, access.scope):
        released = libraries_repo.released_in(session, facility.id)
        if released is None:
            continue
        loaded = cqi.load_events(session, access, facility_id=facility.id, since=since, until=until)
        library = library_lifecycle.library_of(released)
        found = suggest(loaded.frame, library, quantile=quantile, min_overrides=min_overrides)
        previews.append(
            SuggestionPreview(
                facility_code=facility.code,
                released_id=released.id,
                released_version=released.version,
                suggestions=tuple(found),
            )
        )
    return tuple(previews)
