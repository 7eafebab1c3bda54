"""CQI over the event store: metrics, what-if replay of a candidate version, limit suggestions as drafts,
reports, and synthetic history. Only the caller's facilities are read; patient and order identifiers never
enter the analytics frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final, Literal

import polars as pl
from sqlalchemy.orm import Session

from smartpump.analytics import frames, history, metrics, report
from smartpump.analytics.metrics import COMPLIANCE_TARGET, Dimension
from smartpump.analytics.replay import program_rows, replay
from smartpump.clock import Clock
from smartpump.errors import SmartpumpError
from smartpump.library.model import DrugLibrary, LibraryStatus
from smartpump.pump.alarms import EndedBy
from smartpump.pump.capabilities import PumpModel
from smartpump.pump.events import EventType
from smartpump.server import audit
from smartpump.server.auth import Access, Principal, Role
from smartpump.server.db.repositories import cqi as repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.repositories import libraries as libraries_repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.errors import ConflictError, InvalidInputError, NotFoundError
from smartpump.server.services import fleet, library_lifecycle
from smartpump.server.services.events import PHI_KEYS, IncomingEvent, store_events

MAX_CHANGES: Final = 500
"""Changed programs listed in a replay report (the total is always given)."""
CANDIDATE_STATUSES: Final = frozenset({LibraryStatus.DRAFT, LibraryStatus.IN_REVIEW, LibraryStatus.APPROVED})
STORE_BATCH: Final = 2000
SIM_MODEL: Final = PumpModel.LVP.value

Cell = str | int | float | bool | None
ReportFormat = Literal["csv", "html"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CqiTable:
    """A metric table as plain JSON cells (dates as ISO text, non-finite numbers as null)."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def records(self) -> list[dict[str, Cell]]:
        """One dict per row, keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class CqiHeadline:
    """Whole-window figures (definitions in docs/cqi.md); a rate over zero is None."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class CqiFacility:
    """A facility covered by a CQI view and the version its pumps should run (None: nothing released)."""

    id: int
    code: str
    released_version: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CqiOverview:
    """Headline figures and per-dimension tables of the caller's facilities over a time window."""

    since: datetime | None
    until: datetime | None
    group_by: Dimension
    facilities: tuple[CqiFacility, ...]
    events: int
    skipped_events: int
    pumps: int
    synthetic: bool
    headline: CqiHeadline
    tables: tuple[CqiTable, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayReport:
    """A candidate version replayed against the facility's released one over the stored programs."""

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
    entries: CqiTable
    changes: CqiTable
    changes_total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticLoad:
    """What ``store_synthetic_history`` wrote into the store."""

    facility_id: int
    library_version: int
    pumps_registered: int
    events: int
    stored: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Loaded:
    """A window of stored events as a frame, the pumps seen per facility, the facilities covered and
    how many events could not be read."""

    frame: pl.DataFrame
    pumps_of: dict[int, frozenset[str]]
    facilities: tuple[CqiFacility, ...]
    skipped: int

    @property
    def synthetic(self) -> bool:
        return bool(self.frame["synthetic"].fill_null(False).any())


def window_text(since: datetime | None, until: datetime | None) -> str:
    start = "the first event" if since is None else since.isoformat()
    return f"{start} to {'the last event' if until is None else until.isoformat()}"


def _scope(access: Access, facility_id: int | None) -> frozenset[int] | None:
    if facility_id is None:
        return access.scope
    if not access.allows(facility_id):
        raise NotFoundError(f"no facility {facility_id}", code="facility.not_found")
    return frozenset({facility_id})


def _check_window(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is None:
            continue
        if value.tzinfo is None:
            raise InvalidInputError(f"{name} needs a time zone (UTC offset)", code="cqi.naive_time")
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise InvalidInputError(f"{name} is out of range", code="cqi.window") from None
    if since is not None and until is not None and since >= until:
        raise InvalidInputError("since must be before until", code="cqi.window")


def _event_row(
    serial: str, seq: int, ts: datetime, channel: str | None, type_: str, raw: str
) -> dict[str, object]:
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise TypeError("event data is not an object")
    for key in PHI_KEYS:
        data.pop(key, None)
    return frames.flatten(
        {"pump": serial, "seq": seq, "ts": ts, "channel": channel, "type": type_, "data": data}
    )


def load_events(
    session: Session,
    access: Access,
    *,
    facility_id: int | None,
    since: datetime | None,
    until: datetime | None,
) -> Loaded:
    _check_window(since, until)
    scope = _scope(access, facility_id)
    rows: list[dict[str, object]] = []
    pumps_of: dict[int, set[str]] = {}
    skipped = 0
    for facility, serial, seq, ts, channel, type_, raw in repo.events_in(
        session, facility_ids=scope, since=since, until=until
    ):
        try:
            rows.append(_event_row(serial, seq, ts, channel, type_, raw))
        except (SmartpumpError, ValueError, TypeError, KeyError, AttributeError, ArithmeticError):
            skipped += 1
            continue
        pumps_of.setdefault(facility, set()).add(serial)
    frame = (
        pl.DataFrame(rows, schema=frames.EVENT_SCHEMA, orient="row").sort("pump", "seq")
        if rows
        else frames.empty()
    )
    covered = tuple(
        CqiFacility(id=f.id, code=f.code, released_version=_released_version(session, f.id))
        for f in repo.facilities(session, scope)
    )
    return Loaded(frame, {f: frozenset(s) for f, s in pumps_of.items()}, covered, skipped)


def _released_version(session: Session, facility_id: int) -> int | None:
    row = libraries_repo.released_in(session, facility_id)
    return None if row is None else row.version


def events_frame(
    session: Session,
    access: Access,
    *,
    since: datetime | None,
    until: datetime | None,
    facility_id: int | None = None,
) -> pl.DataFrame:
    """The stored events of the caller's facilities (or one of them) with ``since <= ts < until``, as an
    analytics frame (``frames.EVENT_SCHEMA``, no patient identifiers); unreadable events are left out.

    Raises:
        NotFoundError: ``facility.not_found`` for a facility outside the caller's scope.
        InvalidInputError: ``cqi.naive_time`` / ``cqi.window`` for a bad window.
    """
    return load_events(session, access, facility_id=facility_id, since=since, until=until).frame


def _cell(value: object) -> Cell:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def table(key: str, title: str, frame: pl.DataFrame) -> CqiTable:
    """A Polars metric table as a ``CqiTable``."""
    return CqiTable(
        key=key,
        title=title,
        columns=tuple(frame.columns),
        rows=tuple(tuple(_cell(v) for v in row) for row in frame.iter_rows()),
    )


def _outdated(loaded: Loaded, by: Dimension) -> pl.DataFrame:
    """Outdated-library starts, each facility's starts compared with that facility's released version."""
    parts = []
    for facility in loaded.facilities:
        serials = loaded.pumps_of.get(facility.id)
        if not serials:
            continue
        own = loaded.frame.filter(pl.col("pump").is_in(list(serials)))
        part = metrics.outdated_library(own, by, facility.released_version or 0)
        if not part.is_empty():
            parts.append(part.select(by.value, "infusions", "outdated_starts"))
    if not parts:
        return metrics.outdated_library(frames.empty(), by, 0)
    return (
        pl.concat(parts)
        .group_by(by.value)
        .agg(pl.col("infusions").sum(), pl.col("outdated_starts").sum())
        .with_columns(
            outdated_share=pl.when(pl.col("infusions") > 0).then(
                pl.col("outdated_starts") / pl.col("infusions")
            )
        )
        .sort(by.value, nulls_last=True)
    )


def _sum(frame: pl.DataFrame, column: str) -> int:
    return int(frame[column].sum()) if frame.height else 0


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return None if denominator == 0 else numerator * scale / denominator


def _pump_hours(events: pl.DataFrame) -> float:
    if events.is_empty():
        return 0.0
    gaps = events.sort("pump", "seq").select(
        (pl.col("ts").shift(-1).over("pump") - pl.col("ts")).dt.total_seconds(fractional=True).sum()
    )
    return float(gaps.item() or 0.0) / 3600.0


def _finite(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _median_ack(events: pl.DataFrame) -> float | None:
    acks = events.filter(
        (pl.col("type") == EventType.ALARM_CLEARED) & (pl.col("cleared_by") == EndedBy.OPERATOR)
    )
    return _finite(acks["alarm_duration_s"].median())


def _headline(events: pl.DataFrame, tables: dict[str, pl.DataFrame], outdated: pl.DataFrame) -> CqiHeadline:
    compliance, alerts, overrides = tables["compliance"], tables["alerts"], tables["overrides"]
    hard = tables["hard_stops"]
    infusions, library_starts = _sum(compliance, "infusions"), _sum(compliance, "library_starts")
    soft_alerts, hard_alerts = _sum(alerts, "soft_alerts"), _sum(alerts, "hard_alerts")
    done, fast = _sum(overrides, "overrides"), _sum(overrides, "overrides_within_2s")
    hard_stops = _sum(hard, "hard_stops")
    max_factor = hard["max_factor"].max() if hard.height else None
    auto = _sum(tables["auto_programmed"], "auto_programmed_starts")
    alarms, hours = _sum(tables["alarms"], "alarms"), _pump_hours(events)
    outdated_starts = _sum(outdated, "outdated_starts")
    share = _ratio(library_starts, infusions)
    return CqiHeadline(
        infusions=infusions,
        library_starts=library_starts,
        compliance=share,
        meets_target=None if share is None else share >= COMPLIANCE_TARGET,
        programs=_sum(alerts, "programs"),
        soft_alerts=soft_alerts,
        hard_alerts=hard_alerts,
        soft_per_100=_ratio(soft_alerts, infusions, 100.0),
        hard_per_100=_ratio(hard_alerts, infusions, 100.0),
        overrides=done,
        override_rate=_ratio(done, soft_alerts),
        overrides_within_2s=fast,
        within_2s_rate=_ratio(fast, done),
        good_catches=_sum(tables["good_catches"], "good_catches"),
        hard_stops=hard_stops,
        hard_stops_per_100=_ratio(hard_stops, infusions, 100.0),
        max_hard_stop_factor=_finite(max_factor),
        outdated_starts=outdated_starts,
        outdated_share=_ratio(outdated_starts, _sum(outdated, "infusions")),
        auto_programmed_starts=auto,
        auto_programmed_share=_ratio(auto, infusions),
        alarms=alarms,
        pump_hours=hours,
        alarms_per_pump_hour=_ratio(alarms, hours),
        median_ack_s=_median_ack(events),
    )


_TITLES: Final = {
    "compliance": "DERS compliance (target 95 %)",
    "alerts": "Alerts per 100 infusions",
    "overrides": "Overrides",
    "good_catches": "Good catches",
    "hard_stops": "Hard-stop hits",
    "outdated_library": "Outdated library use (each facility's released version)",
    "auto_programmed": "Auto-programmed share",
    "alarms": "Alarms per pump-hour by type",
    "top_entries": "Top alerting entries",
}


def overview(
    session: Session,
    access: Access,
    *,
    since: datetime | None,
    until: datetime | None,
    group_by: Dimension = Dimension.CARE_AREA,
    facility_id: int | None = None,
) -> CqiOverview:
    """Every CQI metric over the caller's facilities (or one), grouped by ``group_by``, with headline totals.

    Outdated-library use compares each facility's starts with that facility's released version.
    """
    loaded = load_events(session, access, facility_id=facility_id, since=since, until=until)
    events = loaded.frame
    computed: dict[str, pl.DataFrame] = {
        "compliance": metrics.compliance(events, group_by),
        "alerts": metrics.alerts(events, group_by),
        "overrides": metrics.overrides(events, group_by),
        "good_catches": metrics.good_catches(events, group_by),
        "hard_stops": metrics.hard_stops(events, group_by),
        "auto_programmed": metrics.auto_programmed(events, group_by),
        "alarms": metrics.alarms(events, group_by),
    }
    outdated = _outdated(loaded, group_by)
    ordered = {**computed, "outdated_library": outdated, "top_entries": metrics.top_alerting_entries(events)}
    return CqiOverview(
        since=since,
        until=until,
        group_by=group_by,
        facilities=loaded.facilities,
        events=events.height,
        skipped_events=loaded.skipped,
        pumps=events["pump"].n_unique(),
        synthetic=loaded.synthetic,
        headline=_headline(events, computed, outdated),
        tables=tuple(table(key, _TITLES[key], frame) for key, frame in ordered.items()),
    )


def export_report(
    session: Session,
    clock: Clock,
    access: Access,
    *,
    fmt: ReportFormat,
    since: datetime | None,
    until: datetime | None,
    facility_id: int | None = None,
) -> str:
    """The CQI report (``analytics.report``: CSV sections or one self-contained HTML page); audited.

    The report is de-identified (no patient or order identifier); synthetic data carries the banner.
    """
    loaded = load_events(session, access, facility_id=facility_id, since=since, until=until)
    parts = report.sections(loaded.frame, 0)
    outdated = report.Section(
        _TITLES["outdated_library"], _outdated(loaded, Dimension.CARE_AREA), "outdated_share"
    )
    parts = [outdated if p.title.startswith("Outdated library use") else p for p in parts]
    codes = ", ".join(f.code for f in loaded.facilities) or "no facility"
    window = window_text(since, until)
    text = (
        report.to_csv(parts)
        if fmt == "csv"
        else report.to_html(parts, title=f"CQI report - {codes} - {window}", synthetic=loaded.synthetic)
    )
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="cqi.report_exported",
        object_type="cqi_report",
        facility_id=loaded.facilities[0].id if len(loaded.facilities) == 1 else facility_id,
        details={
            "format": fmt,
            "since": None if since is None else since.isoformat(),
            "until": None if until is None else until.isoformat(),
            "facilities": [f.code for f in loaded.facilities],
            "events": loaded.frame.height,
        },
    )
    return text


def replay_draft(
    session: Session,
    access: Access,
    draft_id: int,
    *,
    since: datetime | None,
    until: datetime | None,
) -> ReplayReport:
    """Replay the stored programs of the candidate's facility against the candidate (a draft, in review or
    approved version) and the facility's released version: per entry, alerts before and after.

    Raises:
        NotFoundError: ``library.not_found`` for a version outside the caller's facilities.
        ConflictError: ``cqi.not_a_candidate`` (released or retired version), ``cqi.no_release``.
    """
    candidate = library_lifecycle.get_version(session, access, draft_id)
    if LibraryStatus(candidate.status) not in CANDIDATE_STATUSES:
        raise ConflictError(
            f"a {candidate.status} version is not a candidate; replay a draft", code="cqi.not_a_candidate"
        )
    released = libraries_repo.released_in(session, candidate.facility_id)
    if released is None:
        raise ConflictError("the facility has no released version to compare with", code="cqi.no_release")
    loaded = load_events(session, access, facility_id=candidate.facility_id, since=since, until=until)
    programs = program_rows(loaded.frame).filter(pl.col("care_area").is_not_null())
    result = replay(
        programs,
        library_lifecycle.library_of(released),
        library_lifecycle.library_of(candidate),
        with_programs=False,
    )
    return ReplayReport(
        facility_id=candidate.facility_id,
        candidate_id=candidate.id,
        candidate_version=candidate.version,
        candidate_status=candidate.status,
        released_id=released.id,
        released_version=released.version,
        since=since,
        until=until,
        programs=programs.height,
        skipped_events=loaded.skipped,
        synthetic=loaded.synthetic,
        entries=table("entries", "Alerts per entry before and after", result.summary),
        changes=table("changes", "Programs whose verdict changes", result.changes.head(MAX_CHANGES)),
        changes_total=result.changes.height,
    )


def _operator(actor: str) -> Access:
    """The access of a command-line operator registering simulated pumps (a deployment-wide biomed)."""
    principal = Principal(user_id=0, username=actor, global_roles=frozenset({Role.BIOMED}))
    return Access(principal=principal, roles=frozenset({Role.BIOMED}))


def store_synthetic_history(
    session: Session,
    clock: Clock,
    *,
    facility_code: str,
    library: DrugLibrary | None,
    pumps: int,
    days: int,
    seed: int,
    start: datetime,
    actor: str,
) -> SyntheticLoad:
    """Generate a synthetic history (``analytics.history``; every event's data has ``synthetic: true``) and
    store it through ``store_events`` for simulated pumps ``SIM-F<facility id>-<n>`` (registered when new).

    ``library`` None uses the facility's released version. Re-running the same command stores nothing new.

    Raises:
        NotFoundError: ``facility.not_found``; InvalidInputError: ``cqi.no_library``;
        ConflictError: ``cqi.serial_taken`` when a simulated serial belongs to another facility.
    """
    facility = users_repo.facility_by_code(session, facility_code)
    if facility is None:
        raise NotFoundError(f"no facility {facility_code!r}", code="facility.not_found")
    if library is None:
        released = libraries_repo.released_in(session, facility.id)
        if released is None:
            raise InvalidInputError(
                f"facility {facility_code!r} has no released library; give --library", code="cqi.no_library"
            )
        library = library_lifecycle.library_of(released)
    generated = history.generate_events(library, pumps=pumps, days=days, seed=seed, start=start)
    serial_of = {e.pump: f"SIM-F{facility.id}-{e.pump.removeprefix('SIM-')}" for e in generated}
    care_area_of = {
        e.pump: str(e.data["care_area"]) for e in generated if e.type is EventType.CARE_AREA_SELECTED
    }
    registered = 0
    for original, serial in sorted(serial_of.items()):
        existing = fleet_repo.pump_by_serial(session, serial)
        if existing is not None:
            if existing.facility_id != facility.id:
                raise ConflictError(f"pump {serial!r} belongs to another facility", code="cqi.serial_taken")
            continue
        fleet.register_pump(
            session,
            clock,
            _operator(actor),
            facility_id=facility.id,
            serial=serial,
            model=SIM_MODEL,
            firmware="synthetic",
            care_area=care_area_of.get(original),
            location="synthetic history",
        )
        registered += 1
    incoming = [
        IncomingEvent(
            pump=serial_of[e.pump],
            seq=e.seq,
            ts=e.ts,
            type=e.type.value,
            v=e.v,
            channel=e.channel,
            data=e.to_dict()["data"],
        )
        for e in generated
    ]
    stored = duplicates = 0
    for first in range(0, len(incoming), STORE_BATCH):
        result = store_events(session, clock, incoming[first : first + STORE_BATCH])
        stored, duplicates = stored + result.stored, duplicates + result.duplicates
    audit.append(
        session,
        clock,
        actor=actor,
        action="events.synthetic_loaded",
        object_type="facility",
        object_id=facility.id,
        facility_id=facility.id,
        details={
            "pumps": pumps,
            "days": days,
            "seed": seed,
            "start": start.isoformat(),
            "library_version": library.version,
            "stored": stored,
            "duplicates": duplicates,
        },
    )
    return SyntheticLoad(
        facility_id=facility.id,
        library_version=library.version,
        pumps_registered=registered,
        events=len(incoming),
        stored=stored,
        duplicates=duplicates,
    )
