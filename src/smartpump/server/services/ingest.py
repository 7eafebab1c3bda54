"""Pump uplink into the store: batched idempotent commits, seq gaps, link state, channel state, alarms.

``Ingestor.commit`` stores many batches in one transaction through ``store_events`` and says which
batches may be acknowledged (only those of known pumps, only after the commit). State derived from the
events (gaps, channel state, library version, live messages) is applied afterwards, from the events
above the highest seq seen, so a redelivered batch never applies it twice and a crash between the two
steps is repaired by the pump's resend.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server import audit
from smartpump.server.db.models import Event, Facility, Pump
from smartpump.server.db.models_fleet_ops import PumpLink, SeqGap
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.event_data import decimal_or_none
from smartpump.server.services import commands, deployment
from smartpump.server.services.events import IncomingEvent, StoreResult, store_events
from smartpump.server.services.fleet import ChannelReport, record_status
from smartpump.server.state import ServerState
from smartpump.server.vocabulary import PumpStatus
from smartpump.transport.messages import EventRecord

logger = logging.getLogger("smartpump.server.ingest")

SKEW_LIMIT: Final = timedelta(days=1)
SHED_TYPE: Final = "events.shed"
RUNNING_TYPES: Final = {
    "infusion.started": "running",
    "infusion.resumed": "running",
    "pca.started": "running",
    "pca.resumed": "running",
    "infusion.paused": "paused",
    "pca.paused": "paused",
    "infusion.stopped": "idle",
    "kvo.started": "kvo",
    "infusion.standby": "standby",
    "infusion.scheduled": "delayed",
}

STATUS_TYPES: Final = frozenset({"library.activated", "configuration.activated", "care_area.selected"})
CHANNEL_TYPES: Final = frozenset({*RUNNING_TYPES, "rate.changed", "alarm.raised"})

Batch = tuple[str, tuple[EventRecord, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpRef:
    """A registered pump as ingest needs it."""

    id: int
    serial: str
    facility_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitResult:
    """Which batches were committed (ack them) and how many events were new or already stored."""

    committed: tuple[bool, ...]
    stored: int
    duplicates: int


@dataclass(slots=True)
class IngestStats:
    """Counters of the ingest path since start."""

    batches: int = 0
    events_stored: int = 0
    duplicates: int = 0
    unknown_pump_batches: int = 0
    gaps_opened: int = 0


class Ingestor:
    """Applies pump uplink messages to the database; one per server process, used by one thread."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._pumps: dict[str, PumpRef] = {}
        self.stats = IngestStats()

    def pump(self, session: Session, serial: str) -> PumpRef | None:
        """The registered pump with this serial (cached); with ``ingest_register_facility`` set, an unknown
        pump is registered in that facility (created if missing) at first contact."""
        return self.pumps(session, [serial])[serial]

    def pumps(self, session: Session, serials: Sequence[str]) -> dict[str, PumpRef | None]:
        """``pump`` for many serials: one query for those not cached, one transaction to register the new."""
        missing = sorted({s for s in serials if s not in self._pumps})
        if missing:
            rows = {p.serial: p for p in session.scalars(select(Pump).where(Pump.serial.in_(missing)))}
            unknown = [s for s in missing if s not in rows]
            if unknown:
                rows.update(self._register(session, unknown))
            for row in rows.values():
                self._pumps[row.serial] = PumpRef(id=row.id, serial=row.serial, facility_id=row.facility_id)
        return {s: self._pumps.get(s) for s in serials}

    def _register(self, session: Session, serials: Sequence[str]) -> dict[str, Pump]:
        code = self._state.settings.ingest_register_facility
        if code is None:
            return {}
        now = self._state.clock.now()
        facility = users_repo.facility_by_code(session, code)
        if facility is None:
            facility = Facility(code=code, name=code, created_at=now)
            session.add(facility)
            session.flush()
        pumps = {
            serial: Pump(
                facility_id=facility.id,
                serial=serial,
                model="unknown",
                firmware="unknown",
                status=PumpStatus.IN_SERVICE.value,
                created_at=now,
            )
            for serial in serials
        }
        session.add_all(pumps.values())
        audit.append(
            session,
            self._state.clock,
            actor=None,
            action="pump.registered",
            object_type="pump",
            object_id=serials[0] if len(serials) == 1 else None,
            facility_id=facility.id,
            details={"by": "ingest", "serials": list(serials)},
        )
        session.commit()
        return pumps

    def commit(self, batches: Sequence[Batch]) -> CommitResult:
        """Store every batch of a known pump in one transaction; derived state is applied after."""
        state = self._state
        with state.sessions() as session:
            known = self.pumps(session, [serial for serial, _ in batches])
            refs = [known[serial] for serial, _ in batches]
            if session.get_bind().dialect.name == "postgresql":
                result = _copy_store(session, state.clock, refs, batches)
            else:
                incoming = [
                    _incoming(record)
                    for ref, (_, records) in zip(refs, batches, strict=True)
                    if ref is not None
                    for record in records
                ]
                result = store_events(session, state.clock, incoming)
        committed = tuple(ref is not None for ref in refs)
        self.stats.batches += sum(committed)
        self.stats.unknown_pump_batches += len(committed) - sum(committed)
        self.stats.events_stored += result.stored
        self.stats.duplicates += result.duplicates
        by_pump: dict[str, list[EventRecord]] = {}
        for ref, (serial, records) in zip(refs, batches, strict=True):
            if ref is not None:
                by_pump.setdefault(serial, []).extend(records)
        try:
            self._derive(
                {self._pumps[serial]: sorted(rs, key=lambda r: r.seq) for serial, rs in by_pump.items()}
            )
        except Exception:
            logger.exception("deriving pump state failed; the events are stored and acknowledged")
        return CommitResult(committed=committed, stored=result.stored, duplicates=result.duplicates)

    def _derive(self, by_pump: dict[PumpRef, list[EventRecord]]) -> None:
        """Gaps, highest seq and skew for every pump of a group in one transaction; then status and live."""
        state = self._state
        now = state.clock.now()
        fresh_of: dict[PumpRef, list[EventRecord]] = {}
        with state.sessions() as session:
            ids = [ref.id for ref in by_pump]
            links = {
                link.pump_id: link
                for link in session.scalars(select(PumpLink).where(PumpLink.pump_id.in_(ids)))
            }
            for ref, records in by_pump.items():
                link = links.get(ref.id)
                if link is None:
                    link = PumpLink(pump_id=ref.id, online=False, max_seq=0, skewed_events=0)
                    session.add(link)
                old = [r for r in records if r.seq <= link.max_seq]
                fresh = [r for r in records if r.seq > link.max_seq]
                if old:
                    _refill_gaps(session, ref.id, old[0].seq, old[-1].seq)
                expected = link.max_seq + 1
                for record in fresh:
                    if record.seq > expected:
                        self._open_gap(session, ref, expected, record.seq - 1, now)
                    expected = record.seq + 1
                    if record.type == SHED_TYPE:
                        _explain(session, ref.id, record.data)
                    if abs(record.ts - now) > SKEW_LIMIT:
                        link.skewed_events += 1
                if fresh:
                    link.max_seq = fresh[-1].seq
                    fresh_of[ref] = fresh
            session.commit()
            for ref, fresh in fresh_of.items():
                if any(
                    r.type in STATUS_TYPES or (r.channel is not None and r.type in CHANNEL_TYPES)
                    for r in fresh
                ):
                    self._apply_status(session, ref, fresh)
                    deployment.on_events(session, state, ref.id, fresh)
        for ref, fresh in fresh_of.items():
            self._publish(ref, fresh)

    def _publish(self, ref: PumpRef, fresh: list[EventRecord]) -> None:
        live = self._state.live
        for record in fresh:
            summary: dict[str, object] = {
                "pump": ref.serial,
                "seq": record.seq,
                "type": record.type,
                "channel": record.channel,
                "ts": record.ts.isoformat(),
            }
            live.publish(ref.facility_id, "event", summary)
            if record.type in ("alarm.raised", "alarm.cleared"):
                alarm = {k: _plain(record.data.get(k)) for k in ("alarm", "priority", "by")}
                live.publish(
                    ref.facility_id, record.type, {"pump": ref.serial, "channel": record.channel, **alarm}
                )
        live.publish(ref.facility_id, "pump.status", {"pump": ref.serial, "max_seq": fresh[-1].seq})

    def _open_gap(self, session: Session, ref: PumpRef, first: int, last: int, now: datetime) -> None:
        if session.scalars(select(SeqGap).where(SeqGap.pump_id == ref.id, SeqGap.first_seq == first)).first():
            return
        session.add(
            SeqGap(
                pump_id=ref.id,
                first_seq=first,
                last_seq=last,
                missing=last - first + 1,
                explained=False,
                detected_at=now,
            )
        )
        self.stats.gaps_opened += 1

    def _apply_status(self, session: Session, ref: PumpRef, records: list[EventRecord]) -> None:
        channels: dict[str, ChannelReport] = {}
        library_version: int | None = None
        configuration_version: int | None = None
        care_area: str | None = None
        for record in records:
            data = record.data
            if record.type == "library.activated" and isinstance(data.get("version"), int):
                library_version = int(data["version"])
            elif record.type == "configuration.activated" and isinstance(data.get("version"), int):
                configuration_version = int(data["version"])
            elif record.type == "care_area.selected" and isinstance(data.get("care_area"), str):
                care_area = str(data["care_area"])
            elif record.channel is not None:
                report = _channel_report(record, channels.get(record.channel))
                if report is not None:
                    channels[record.channel] = report
        if not channels and library_version is None and configuration_version is None and care_area is None:
            return
        record_status(
            session,
            self._state.clock,
            ref.serial,
            seen_at=self._state.clock.now(),
            installed_library_version=library_version,
            configuration_version=configuration_version,
            care_area=care_area,
            channels=tuple(channels.values()),
        )
        for report in channels.values():
            self._state.live.publish(
                ref.facility_id,
                "channel.state",
                {
                    "pump": ref.serial,
                    "channel": report.channel,
                    "state": report.state,
                    "drug": report.drug,
                    "rate_ml_per_h": None if report.rate_ml_per_h is None else str(report.rate_ml_per_h),
                },
            )

    def link_changed(self, serial: str, online: bool) -> None:
        """Apply a pump's retained status (``online``, or the broker's last-will ``offline``)."""
        state = self._state
        with state.sessions() as session:
            ref = self.pump(session, serial)
            if ref is None:
                return
            link = _link(session, ref.id)
            if link.online == online and link.status_changed_at is not None:
                return
            link.online = online
            link.status_changed_at = state.clock.now()
            session.commit()
        state.live.publish(ref.facility_id, "pump.online" if online else "pump.offline", {"pump": serial})

    def hello(self, serial: str, next_seq: int, acked_seq: int) -> None:
        """A pump (re)connected: flag as a gap any seq it believes acked that the store does not hold."""
        state = self._state
        with state.sessions() as session:
            ref = self.pump(session, serial)
            if ref is None:
                return
            link = _link(session, ref.id)
            link.last_hello_at = state.clock.now()
            link.online = True
            if acked_seq > link.max_seq:
                stored = _stored_between(session, ref.id, link.max_seq + 1, acked_seq)
                if stored < acked_seq - link.max_seq:
                    self._open_gap(session, ref, link.max_seq + 1, acked_seq, state.clock.now())
                    _refill_gaps(session, ref.id, link.max_seq + 1, acked_seq)
            session.commit()

    def command_result(self, serial: str, body: Mapping[str, Any]) -> None:
        """Record what a pump did with a command."""
        state = self._state
        with state.sessions() as session:
            ref = self.pump(session, serial)
            if ref is None:
                return
            commands.record_result(
                session,
                state,
                pump_id=ref.id,
                nonce=str(body["nonce"]),
                ok=bool(body["ok"]),
                code=None if body["code"] is None else str(body["code"]),
                reason=None if body["reason"] is None else str(body["reason"]),
            )


_STAGE_COLUMNS: Final = (
    "pump_id, seq, ts, received_at, schema_version, channel, type, patient_id, order_id, data"
)


_DATA_JSON: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _copy_store(
    session: Session, clock: Clock, refs: Sequence[PumpRef | None], batches: Sequence[Batch]
) -> StoreResult:
    """PostgreSQL fast path with ``store_events``' semantics: COPY into a staging table, then one
    ``INSERT ... ON CONFLICT (pump_id, seq) DO NOTHING``, the pumps' last-seen time, one commit."""
    received_at = _naive_utc(clock.now())
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS ingest_stage AS SELECT {_STAGE_COLUMNS} FROM events WITH NO DATA"
    )
    cursor.execute("TRUNCATE ingest_stage")
    rows = 0
    with cursor.copy(f"COPY ingest_stage ({_STAGE_COLUMNS}) FROM STDIN") as copy:
        for ref, (_, records) in zip(refs, batches, strict=True):
            if ref is None:
                continue
            for record in records:
                data = record.data
                copy.write_row(
                    (
                        ref.id,
                        record.seq,
                        _naive_utc(record.ts),
                        received_at,
                        record.v,
                        record.channel,
                        record.type,
                        _text(data.get("patient_id")),
                        _text(data.get("order_id")),
                        _DATA_JSON.encode(data if isinstance(data, dict) else dict(data)),
                    )
                )
                rows += 1
    cursor.execute(
        f"INSERT INTO events ({_STAGE_COLUMNS}) SELECT DISTINCT ON (pump_id, seq) {_STAGE_COLUMNS} "
        "FROM ingest_stage ON CONFLICT (pump_id, seq) DO NOTHING"
    )
    stored = max(cursor.rowcount, 0)
    ids = sorted({ref.id for ref in refs if ref is not None})
    cursor.execute(
        "UPDATE pumps SET last_seen = %s WHERE id = ANY(%s) AND (last_seen IS NULL OR last_seen < %s)",
        (received_at, ids, received_at),
    )
    session.commit()
    return StoreResult(stored=stored, duplicates=rows - stored)


def _text(value: object) -> str | None:
    return None if value is None else str(value)[:64]


def _incoming(record: EventRecord) -> IncomingEvent:
    return IncomingEvent(
        pump=record.pump,
        seq=record.seq,
        ts=record.ts,
        type=record.type,
        v=record.v,
        channel=record.channel,
        data=record.data,
    )


def _link(session: Session, pump_id: int) -> PumpLink:
    link = session.get(PumpLink, pump_id)
    if link is None:
        link = PumpLink(pump_id=pump_id, online=False, max_seq=0, skewed_events=0)
        session.add(link)
    return link


def _stored_between(session: Session, pump_id: int, first: int, last: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.pump_id == pump_id, Event.seq >= first, Event.seq <= last)
        )
        or 0
    )


def _refill_gaps(session: Session, pump_id: int, low: int, high: int) -> None:
    """Recount the open gaps overlapping [low, high]; a gap whose events all arrived is closed."""
    gaps = session.scalars(
        select(SeqGap).where(SeqGap.pump_id == pump_id, SeqGap.first_seq <= high, SeqGap.last_seq >= low)
    ).all()
    for gap in gaps:
        size = gap.last_seq - gap.first_seq + 1
        gap.missing = size - _stored_between(session, pump_id, gap.first_seq, gap.last_seq)
        if gap.missing <= 0:
            session.delete(gap)


def _explain(session: Session, pump_id: int, data: Mapping[str, Any]) -> None:
    """Mark the gaps an ``events.shed`` record accounts for as explained (shed on purpose, REL-OFF-04)."""
    first, last = data.get("first_seq"), data.get("last_seq")
    if not isinstance(first, int) or not isinstance(last, int):
        return
    for gap in session.scalars(
        select(SeqGap).where(SeqGap.pump_id == pump_id, SeqGap.first_seq >= first, SeqGap.last_seq <= last)
    ):
        gap.explained = True


def _plain(value: object) -> object:
    return value if value is None or isinstance(value, str | int | bool) else str(value)


def _channel_report(record: EventRecord, previous: ChannelReport | None) -> ChannelReport | None:
    """The channel's state after this event, or None when the event does not change it."""
    assert record.channel is not None
    data = record.data
    if record.type == "rate.changed" and previous is not None:
        return ChannelReport(
            channel=record.channel,
            state=previous.state,
            drug=previous.drug,
            rate_ml_per_h=decimal_or_none(data.get("new_rate_ml_per_h")),
            vtbi_ml=previous.vtbi_ml,
        )
    if record.type == "alarm.raised" and data.get("stops_delivery") is True:
        return ChannelReport(
            channel=record.channel,
            state="alarm",
            drug=previous.drug if previous else None,
            rate_ml_per_h=Decimal(0),
        )
    state = RUNNING_TYPES.get(record.type)
    if state is None:
        return None
    drug = data.get("drug")
    return ChannelReport(
        channel=record.channel,
        state=state,
        drug=str(drug) if drug is not None else (previous.drug if previous and state != "idle" else None),
        rate_ml_per_h=Decimal(0)
        if state in ("idle", "paused")
        else decimal_or_none(data.get("rate_ml_per_h")),
        volume_infused_ml=decimal_or_none(data.get("infused_ml")),
        vtbi_ml=decimal_or_none(data.get("vtbi_ml")),
    )
