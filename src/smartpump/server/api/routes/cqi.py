"""CQI over the event store: overview metrics, CSV/HTML reports, what-if replay of a draft, limit suggestions.

Readers (overview, reports, replay) are pharmacists, pharmacy approvers and auditors; only pharmacists turn
suggestions into a draft. Without ``since`` and ``until`` a view covers the last 90 days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from smartpump.analytics.metrics import Dimension
from smartpump.analytics.suggest import Suggestion
from smartpump.clock import Clock
from smartpump.server.api.deps import MAX_ID, ClockDep, SessionDep, require_roles
from smartpump.server.api.schemas import ErrorResponse
from smartpump.server.api.schemas import Request as RequestBody
from smartpump.server.auth import Access, Role
from smartpump.server.services import cqi as service
from smartpump.server.services import cqi_suggestions as suggestions_service

router = APIRouter(prefix="/cqi", tags=["cqi"])
Reader = Annotated[Access, require_roles(Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.AUDITOR)]
Author = Annotated[Access, require_roles(Role.PHARMACIST)]
DEFAULT_WINDOW: Final = timedelta(days=90)
REFUSALS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (403, 404, 409, 422)}
Since = Annotated[datetime | None, Query(description="events from this time (with a UTC offset)")]
Until = Annotated[datetime | None, Query(description="events before this time (with a UTC offset)")]
FacilityFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="one facility only")]
Cell = str | int | float | bool | None


class CqiTableOut(BaseModel):
    """One metric table: its columns in order and one object per row."""

    key: str
    title: str
    columns: list[str]
    rows: list[dict[str, Cell]]


class CqiFacilityOut(BaseModel):
    """A facility covered, and its released library version (null: none released)."""

    id: int
    code: str
    released_version: int | None


class CqiHeadlineOut(BaseModel):
    """Whole-window figures (docs/cqi.md); a rate whose denominator is 0 is null."""

    infusions: int
    library_starts: int
    compliance: float | None
    meets_target: bool | None
    programs: int
    soft_alerts: int
    hard_alerts: int
    soft_per_100: float | None
    hard_per_100: float | None
    overrides: int
    override_rate: float | None
    overrides_within_2s: int
    within_2s_rate: float | None
    good_catches: int
    hard_stops: int
    hard_stops_per_100: float | None
    max_hard_stop_factor: float | None
    outdated_starts: int
    outdated_share: float | None
    auto_programmed_starts: int
    auto_programmed_share: float | None
    alarms: int
    pump_hours: float
    alarms_per_pump_hour: float | None
    median_ack_s: float | None


class CqiOverviewOut(BaseModel):
    """Headline figures and per-group tables (keyed by metric) of the caller's facilities."""

    since: datetime | None
    until: datetime | None
    group_by: Dimension
    facilities: list[CqiFacilityOut]
    events: int
    skipped_events: int
    pumps: int
    synthetic: bool
    headline: CqiHeadlineOut
    tables: dict[str, CqiTableOut]


class ReplayCreate(RequestBody):
    """Replay a candidate version (draft, in review or approved) against its facility's released one."""

    draft_id: int = Field(ge=1, le=MAX_ID)
    since: datetime | None = None
    until: datetime | None = None


class ReplayOut(BaseModel):
    """Per entry, the alerts that fired before (released) and would fire after (candidate)."""

    facility_id: int
    candidate_id: int
    candidate_version: int
    candidate_status: str
    released_id: int
    released_version: int
    since: datetime | None
    until: datetime | None
    programs: int
    skipped_events: int
    synthetic: bool
    entries: CqiTableOut
    changes: CqiTableOut
    changes_total: int


class SuggestionsCreate(RequestBody):
    """Suggest soft-max changes for a released version from its facility's history."""

    released_id: int = Field(ge=1, le=MAX_ID)
    since: datetime | None = None
    until: datetime | None = None
    quantile: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False)
    min_overrides: int = Field(default=3, ge=1, le=1_000_000)


class SuggestionOut(BaseModel):
    """One proposed limit and its evidence; limits are exact decimal text."""

    entry_id: str
    parameter: str
    limit_kind: str
    unit: str
    current: str
    proposed: str
    hard_max: str | None
    overrides: int
    lowest_good_catch: str | None
    soft_alerts_before: int
    soft_alerts_after: int
    good_catches: int
    good_catches_kept: int
    proposed_hard_max: str | None = Field(
        description="a hard max for the committee where the entry has none (never set in the draft)"
    )
    warnings: list[str] = Field(description="e.g. a soft max raised on an entry without a hard max")


class SuggestionsOut(BaseModel):
    """The suggestions and the draft (with its change request) made from them; ids null when none."""

    facility_id: int
    released_id: int
    released_version: int
    draft_id: int | None
    draft_version: int | None
    change_request_id: int | None
    suggestions: list[SuggestionOut]
    note: str
    synthetic: bool


def _window(
    clock_now: datetime, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The default window (the last 90 days) when neither bound is given."""
    if since is None and until is None:
        return clock_now - DEFAULT_WINDOW, None
    return since, until


def _table(t: service.CqiTable) -> CqiTableOut:
    return CqiTableOut(key=t.key, title=t.title, columns=list(t.columns), rows=t.records())


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _suggestion(s: Suggestion) -> SuggestionOut:
    return SuggestionOut(
        entry_id=s.entry_id,
        parameter=s.parameter,
        limit_kind=s.limit_kind.value,
        unit=s.unit,
        current=format(s.current, "f"),
        proposed=format(s.proposed, "f"),
        hard_max=_text(s.hard_max),
        overrides=s.overrides,
        lowest_good_catch=_text(s.lowest_good_catch),
        soft_alerts_before=s.soft_alerts_before,
        soft_alerts_after=s.soft_alerts_after,
        good_catches=s.good_catches,
        good_catches_kept=s.good_catches_kept,
        proposed_hard_max=_text(s.proposed_hard_max),
        warnings=list(s.warnings),
    )


@router.get("/overview", responses=REFUSALS)
def overview(
    access: Reader,
    session: SessionDep,
    clock: ClockDep,
    since: Since = None,
    until: Until = None,
    group_by: Dimension = Dimension.CARE_AREA,
    facility_id: FacilityFilter = None,
) -> CqiOverviewOut:
    """CQI figures of the caller's facilities: headline totals and every metric grouped by ``group_by``."""
    since, until = _window(clock.now(), since, until)
    view = service.overview(
        session, access, since=since, until=until, group_by=group_by, facility_id=facility_id
    )
    return CqiOverviewOut(
        since=view.since,
        until=view.until,
        group_by=view.group_by,
        facilities=[
            CqiFacilityOut(id=f.id, code=f.code, released_version=f.released_version) for f in view.facilities
        ],
        events=view.events,
        skipped_events=view.skipped_events,
        pumps=view.pumps,
        synthetic=view.synthetic,
        headline=CqiHeadlineOut.model_validate(view.headline, from_attributes=True),
        tables={t.key: _table(t) for t in view.tables},
    )


def _report(
    access: Access,
    session: Session,
    clock: Clock,
    fmt: service.ReportFormat,
    since: datetime | None,
    until: datetime | None,
    facility_id: int | None,
) -> str:
    since, until = _window(clock.now(), since, until)
    return service.export_report(
        session, clock, access, fmt=fmt, since=since, until=until, facility_id=facility_id
    )


@router.get(
    "/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "every section as CSV"}, **REFUSALS},
)
def report_csv(
    access: Reader,
    session: SessionDep,
    clock: ClockDep,
    since: Since = None,
    until: Until = None,
    facility_id: FacilityFilter = None,
) -> Response:
    """The CQI report as CSV (``# title`` line, then the table, per section); de-identified; audited."""
    text = _report(access, session, clock, "csv", since, until, facility_id)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cqi-report.csv"'},
    )


@router.get(
    "/report.html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "a self-contained page"}, **REFUSALS},
)
def report_html(
    access: Reader,
    session: SessionDep,
    clock: ClockDep,
    since: Since = None,
    until: Until = None,
    facility_id: FacilityFilter = None,
) -> Response:
    """The CQI report as one self-contained HTML page (inline SVG, no script); de-identified; audited."""
    text = _report(access, session, clock, "html", since, until, facility_id)
    return Response(
        text,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/replay", responses=REFUSALS)
def replay(body: ReplayCreate, access: Reader, session: SessionDep, clock: ClockDep) -> ReplayOut:
    """Re-evaluate the facility's stored programs against the draft and the released version."""
    since, until = _window(clock.now(), body.since, body.until)
    result = service.replay_draft(session, access, body.draft_id, since=since, until=until)
    return ReplayOut(
        facility_id=result.facility_id,
        candidate_id=result.candidate_id,
        candidate_version=result.candidate_version,
        candidate_status=result.candidate_status,
        released_id=result.released_id,
        released_version=result.released_version,
        since=result.since,
        until=result.until,
        programs=result.programs,
        skipped_events=result.skipped_events,
        synthetic=result.synthetic,
        entries=_table(result.entries),
        changes=_table(result.changes),
        changes_total=result.changes_total,
    )


@router.post("/suggestions", responses={201: {"model": SuggestionsOut}, **REFUSALS})
def suggestions(
    body: SuggestionsCreate, access: Author, session: SessionDep, clock: ClockDep, response: Response
) -> SuggestionsOut:
    """Suggest soft maxima from the history; when any, open a new draft (yours, for normal review) with a
    change request holding the evidence (201). Nothing to suggest answers 200 with null ids."""
    since, until = _window(clock.now(), body.since, body.until)
    made = suggestions_service.suggest_draft(
        session,
        clock,
        access,
        body.released_id,
        since=since,
        until=until,
        quantile=body.quantile,
        min_overrides=body.min_overrides,
    )
    if made.draft_id is not None:
        response.status_code = status.HTTP_201_CREATED
    return SuggestionsOut(
        facility_id=made.facility_id,
        released_id=made.released_id,
        released_version=made.released_version,
        draft_id=made.draft_id,
        draft_version=made.draft_version,
        change_request_id=made.change_request_id,
        suggestions=[_suggestion(s) for s in made.suggestions],
        note=made.note,
        synthetic=made.synthetic,
    )
