"""Pump uplink into the store: batched idempotent commits, seq gaps, link state, channel state, alarms.

``Ingestor.commit`` stores many batches in one transaction through ``store_events`` and says which
batches may be acknowledged (only those of known pumps, only after the commit). State derived from the
events (gaps, channel state, library version, live messages) is applied afterwards, from the events
above the highest seq seen, so a redelivered batch never applies it twice; the ack follows both steps,
so a crash between them is repaired by the pump's resend.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from smartpump.pump.channel import ChannelState as PumpChannelState
from smartpump.pump.events import EventType
from smartpump.server import audit
from smartpump.server.db.bulk import update_rows
from smartpump.server.db.models import ChannelState, Event, Facility, Pump
from smartpump.server.db.models_fleet_ops import PumpLink, SeqGap
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.event_copy import copy_store
from smartpump.server.event_data import decimal_or_none
from smartpump.server.services import commands, deployment, fleet_view, patients, quarantine, seq_integrity
from smartpump.server.services.context import IngestContext
from smartpump.server.services.events import IncomingEvent, store_events
from smartpump.server.services.fleet import ChannelReport, record_status
from smartpump.server.vocabulary import PumpStatus
from smartpump.transport.heartbeat import Heartbeat
from smartpump.transport.messages import EventRecord

logger = logging.getLogger("smartpump.server.ingest")

SHA256_HEX_DIGITS: Final = 64
HEX: Final = frozenset("0123456789abcdef")

SKEW_LIMIT: Final = timedelta(days=1)
SHED_TYPE: Final = EventType.EVENTS_SHED
_E, _S = EventType, PumpChannelState
CHANNEL_MOVES: Final[Mapping[str, PumpChannelState]] = {
    _E.INFUSION_STARTED: _S.RUNNING,
    _E.INFUSION_RESUMED: _S.RUNNING,
    _E.INFUSION_PAUSED: _S.PAUSED,
    _E.PCA_PAUSED: _S.PAUSED,
    _E.INFUSION_STOPPED: _S.IDLE,
    _E.KVO_STARTED: _S.KVO,
    _E.INFUSION_STANDBY: _S.STANDBY,
    _E.INFUSION_SCHEDULED: _S.DELAYED,
}
"""The pump events that move a channel, and the state each moves it to."""

MAX_DOSE_UNIT: Final = 32
MAX_DOSE_TEXT: Final = 40
STATUS_TYPES: Final = frozenset(
    {
        _E.PUMP_STARTED,
        _E.LIBRARY_ACTIVATED,
        _E.CONFIGURATION_ACTIVATED,
        _E.SOFTWARE_ACTIVATED,
        _E.CARE_AREA_SELECTED,
    }
)
CHANNEL_TYPES: Final = frozenset({*CHANNEL_MOVES, _E.RATE_CHANGED, _E.ALARM_RAISED})
LIVE_ALARM_TYPES: Final = frozenset({_E.ALARM_RAISED, _E.ALARM_CLEARED, _E.ALARM_ESCALATED})

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
    seq_conflicts: int = 0


class Ingestor:
    """Applies pump uplink messages to the database through the ingest engine (``state.ingest_sessions``,
    never the request pool); one per server process, used by one thread."""

    def __init__(self, state: IngestContext) -> None:
        self._state = state
        self._sessions = state.ingest_sessions
        self._pumps: dict[str, PumpRef] = {}
        self._shown: dict[int, dict[str, object]] = {}
        self.stats = IngestStats()

    def pump(self, session: Session, serial: str) -> PumpRef | None:
        """The registered pump with this serial (cached); with ``ingest_register_facility`` set, an unknown
        pump is registered in that facility (created if missing) at first contact, else it is quarantined."""
        ref = self.pumps(session, [serial])[serial]
        if ref is None:
            try:
                quarantine.hold(session, self._state.clock, {serial: quarantine.Held(quarantine.UNKNOWN)})
                session.commit()
            except Exception:
                session.rollback()
                logger.exception("recording unknown pump %s in quarantine failed", serial)
        return ref

    def pumps(self, session: Session, serials: Sequence[str]) -> dict[str, PumpRef | None]:
        """``pump`` for many serials: one query for those not cached, one transaction to register the new."""
        missing = sorted({s for s in serials if s not in self._pumps})
        if missing:
            rows = session.execute(
                select(Pump.id, Pump.serial, Pump.facility_id).where(Pump.serial.in_(missing))
            ).all()
            found = {serial: PumpRef(id=id_, serial=serial, facility_id=fac) for id_, serial, fac in rows}
            unknown = [s for s in missing if s not in found]
            if unknown:
                found.update(self._register(session, unknown))
            self._pumps.update(found)
        return {s: self._pumps.get(s) for s in serials}

    def _register(self, session: Session, serials: Sequence[str]) -> dict[str, PumpRef]:
        code = self._state.settings.ingest_register_facility
        if code is None:
            return {}
        now = self._state.clock.now()
        facility = users_repo.facility_by_code(session, code)
        if facility is None:
            facility = Facility(code=code, name=code, created_at=now)
            session.add(facility)
            session.flush()
        facility_id = facility.id
        rows = (
            session.connection()
            .execute(
                insert(Pump).returning(Pump.id, Pump.serial),
                [
                    {
                        "facility_id": facility_id,
                        "serial": serial,
                        "model": "unknown",
                        "firmware": "unknown",
                        "status": PumpStatus.IN_SERVICE.value,
                        "created_at": now,
                    }
                    for serial in serials
                ],
            )
            .all()
        )
        audit.append(
            session,
            self._state.clock,
            actor=None,
            action="pump.registered",
            object_type="pump",
            object_id=serials[0] if len(serials) == 1 else None,
            facility_id=facility_id,
            details={"by": "ingest", "serials": list(serials)},
        )
        session.commit()
        return {serial: PumpRef(id=id_, serial=serial, facility_id=facility_id) for id_, serial in rows}

    def commit(self, batches: Sequence[Batch]) -> CommitResult:
        """Store every batch of a known pump in one transaction; derived state is applied after."""
        state = self._state
        with unit_of_work(self._sessions) as session:
            known = self.pumps(session, [serial for serial, _ in batches])
            refs = [known[serial] for serial, _ in batches]
            if session.get_bind().dialect.name == "postgresql":
                result = copy_store(
                    session,
                    state.clock,
                    [
                        (ref.id, records)
                        for ref, (_, records) in zip(refs, batches, strict=True)
                        if ref is not None
                    ],
                )
            else:
                incoming = [
                    _incoming(record)
                    for ref, (_, records) in zip(refs, batches, strict=True)
                    if ref is not None
                    for record in records
                ]
                result = store_events(session, state.clock, incoming)
        committed = tuple(ref is not None for ref in refs)
        self._hold_unknown(refs, batches)
        if result.duplicates:
            self._check_duplicates(refs, batches, result.redelivered)
        self.stats.batches += sum(committed)
        self.stats.unknown_pump_batches += len(committed) - sum(committed)
        self.stats.events_stored += result.stored
        self.stats.duplicates += result.duplicates
        by_pump: dict[PumpRef, list[EventRecord]] = {}
        for ref, (_, records) in zip(refs, batches, strict=True):
            if ref is not None:
                by_pump.setdefault(ref, []).extend(records)
        try:
            self._derive({ref: sorted(rs, key=lambda r: r.seq) for ref, rs in by_pump.items()})
        except Exception:
            logger.exception("deriving pump state failed; the events are stored and acknowledged")
        return CommitResult(committed=committed, stored=result.stored, duplicates=result.duplicates)

    def hold(self, held: Mapping[str, quarantine.Held]) -> None:
        """Quarantine pumps refused before ingest (by the device registry) or unknown to the fleet; a failure
        to record them is logged (their messages are neither stored nor acked either way)."""
        if not held:
            return
        try:
            with unit_of_work(self._sessions) as session:
                quarantine.hold(session, self._state.clock, held)
        except Exception:
            logger.exception("recording %d quarantined pumps failed; nothing of theirs is stored", len(held))

    def _hold_unknown(self, refs: Sequence[PumpRef | None], batches: Sequence[Batch]) -> None:
        held: dict[str, quarantine.Held] = {}
        for ref, (serial, records) in zip(refs, batches, strict=True):
            if ref is None:
                held[serial] = quarantine.add(held.get(serial), quarantine.UNKNOWN, len(records))
        self.hold(held)

    def _check_duplicates(
        self,
        refs: Sequence[PumpRef | None],
        batches: Sequence[Batch],
        redelivered: frozenset[tuple[int, int]] | None,
    ) -> None:
        """Some events were stored already (``redelivered``, when the store named them, and any (pump, seq)
        the group holds twice; else all): keep those whose content differs (a seq conflict)."""
        known = [(ref.id, rs) for ref, (_, rs) in zip(refs, batches, strict=True) if ref is not None]
        times = Counter((pump_id, r.seq) for pump_id, records in known for r in records)
        by_pump: dict[int, list[EventRecord]] = {}
        for pump_id, records in known:
            by_pump.setdefault(pump_id, []).extend(
                r
                for r in records
                if redelivered is None or (pump_id, r.seq) in redelivered or times[(pump_id, r.seq)] > 1
            )
        with unit_of_work(self._sessions) as session:
            self.stats.seq_conflicts += seq_integrity.record_conflicts(session, self._state.clock, by_pump)

    def _derive(self, by_pump: dict[PumpRef, list[EventRecord]]) -> None:
        """Gaps, skewed clocks and the highest stored seq of every pump of a group in one transaction, after
        which the alarm events above the previous highest seq are published; then those events: of pumps
        whose events only fold into the view, those without an alarm event advanced together
        (``fleet_view.advance_views``: a few statements for the group, pump by pump if they fail), those
        with one each under a savepoint, with one commit for them all (a commit costs a WAL flush: per pump
        it was most of a small batch's cost); then, pump by pump with a commit each, the patient, channel
        state, library, care area and deployment progress of the others (a pump whose state cannot be
        applied is logged and the others go on); then each pump's ``pump.status`` and changed view."""
        state = self._state
        now = state.clock.now()
        fresh_of: dict[PumpRef, list[EventRecord]] = {}
        with self._sessions() as session:
            ids = [ref.id for ref in by_pump]
            known = {
                pump_id: (max_seq, skewed)
                for pump_id, max_seq, skewed in session.execute(
                    select(PumpLink.pump_id, PumpLink.max_seq, PumpLink.skewed_events).where(
                        PumpLink.pump_id.in_(ids)
                    )
                )
            }
            created: list[dict[str, object]] = []
            changed: list[tuple[object, ...]] = []
            old_ranges: dict[int, tuple[int, int]] = {}
            for ref, records in by_pump.items():
                max_seq, skewed = known.get(ref.id, (0, 0))
                old = [r for r in records if r.seq <= max_seq]
                fresh = [r for r in records if r.seq > max_seq]
                if old:
                    old_ranges[ref.id] = (old[0].seq, old[-1].seq)
                expected = max_seq + 1
                for record in fresh:
                    if record.seq > expected:
                        self._open_gap(session, ref, expected, record.seq - 1, now)
                    expected = record.seq + 1
                    if record.type == SHED_TYPE:
                        _explain(session, ref.id, record.data)
                    if abs(record.ts - now) > SKEW_LIMIT:
                        skewed += 1
                if ref.id not in known:
                    created.append(
                        {"pump_id": ref.id, "online": False, "max_seq": expected - 1, "skewed_events": skewed}
                    )
                elif fresh:
                    changed.append((ref.id, expected - 1, skewed))
                if fresh:
                    fresh_of[ref] = fresh
            _refill_gaps(session, old_ranges)
            if created:
                session.connection().execute(insert(PumpLink), created)
            links = cast(Table, PumpLink.__table__)
            update_rows(session.connection(), links, ("pump_id", "max_seq", "skewed_events"), changed)
            session.commit()
            for ref, fresh in fresh_of.items():
                self._publish_alarms(ref, fresh)
            applied = fleet_view.applied_seqs(session, [ref.id for ref in fresh_of])
            viewed: list[PumpRef] = []
            plain = [ref for ref, fresh in fresh_of.items() if not any(map(_needs_own_commit, fresh))]
            current_of = {ref: [r for r in fresh_of[ref] if r.seq > applied.get(ref.id, 0)] for ref in plain}
            seq_only = {
                ref.id: current
                for ref, current in current_of.items()
                if not any(r.type in fleet_view.ALARM_TYPES for r in current)
            }
            try:
                with session.begin_nested():
                    fleet_view.advance_views(session, seq_only, applied)
                plain = [ref for ref in plain if ref.id not in seq_only]
            except Exception:
                logger.exception("advancing %d pump views at once failed; one by one", len(seq_only))
            for ref in plain:
                current = current_of[ref]
                try:
                    with session.begin_nested():
                        fleet_view.apply_events(session, ref.id, current)
                    if any(r.type in fleet_view.ALARM_TYPES for r in current):
                        viewed.append(ref)
                except Exception:
                    logger.exception(
                        "applying the state of pump %s failed; its events are stored", ref.serial
                    )
            session.commit()
            folded = set(current_of)
            for ref, fresh in fresh_of.items():
                if ref in folded:
                    continue
                if any(r.type == patients.ASSOCIATED_TYPE for r in fresh):
                    try:
                        patients.on_events(session, ref.id, fresh)
                        session.commit()
                    except Exception:
                        session.rollback()
                        logger.exception(
                            "recording the patient of pump %s failed; its events are stored", ref.serial
                        )
                current = [r for r in fresh if r.seq > applied.get(ref.id, 0)]
                # pump-level facts (library, configuration, software, care area) the heartbeat does not
                # carry apply from every fresh event; channel states only from those after the heartbeat
                status = [r for r in fresh if r.type in STATUS_TYPES or r.seq > applied.get(ref.id, 0)]
                try:
                    if any(_changes_status(r) for r in status):
                        self._apply_status(session, ref, status)
                    if any(_changes_status(r) for r in fresh):
                        deployment.on_events(session, state, ref.id, fresh)
                    fleet_view.apply_events(session, ref.id, current)
                    session.commit()
                    if any(_changes_status(r) or r.type in fleet_view.ALARM_TYPES for r in current):
                        viewed.append(ref)
                except Exception:
                    session.rollback()
                    logger.exception(
                        "applying the state of pump %s failed; its events are stored", ref.serial
                    )
            views = self._views(session, viewed)
        for ref, fresh in fresh_of.items():
            self._state.live.publish(
                ref.facility_id, "pump.status", {"pump": ref.serial, "max_seq": fresh[-1].seq}
            )
        for ref, view in views.items():
            self._publish_view(ref, view)

    def heartbeat(self, serial: str, heartbeat: Heartbeat) -> None:
        """``heartbeats`` of one."""
        self.heartbeats([(serial, heartbeat)])

    def heartbeats(self, received: Sequence[tuple[str, Heartbeat]]) -> None:
        """Apply a group of status heartbeats (serial, heartbeat; arrival order) to the fleet view in one
        transaction (``fleet_view.apply_heartbeats``) and publish each pump's view that changed; a group that
        cannot be applied is applied heartbeat by heartbeat, and one that cannot be applied alone is logged
        and dropped (the next heartbeat replaces it). Heartbeats of unknown pumps are quarantined."""
        if not received:
            return
        try:
            self._apply_heartbeats(received)
        except Exception:
            if len(received) == 1:
                serial, heartbeat = received[0]
                logger.exception("the heartbeat of pump %s (seq %d) was not applied", serial, heartbeat.seq)
                return
            logger.exception(
                "a group of %d heartbeats was not applied; applying them one by one", len(received)
            )
            for one in received:
                self.heartbeats([one])

    def _apply_heartbeats(self, received: Sequence[tuple[str, Heartbeat]]) -> None:
        state = self._state
        with self._sessions() as session:
            refs = self.pumps(session, [serial for serial, _ in received])
            unknown = {
                serial: quarantine.Held(quarantine.UNKNOWN) for serial, ref in refs.items() if ref is None
            }
            known = [
                (ref.id, heartbeat) for serial, heartbeat in received if (ref := refs[serial]) is not None
            ]
            try:
                applied = fleet_view.apply_heartbeats(
                    session, state.clock, known, offline_after_s=state.settings.offline_after_s
                )
                session.commit()
            except Exception:
                session.rollback()
                raise
        self.hold(unknown)
        for ref in refs.values():
            if ref is not None and ref.id in applied:
                one = applied[ref.id]
                self._publish_view(ref, one.view, changed=one.view != one.before)

    def _publish_view(self, ref: PumpRef, view: dict[str, object], *, changed: bool = True) -> None:
        """Publish a pump's live view when it ``changed`` (the view a page would render now was another) or
        is not the one this process published last for it."""
        if not changed and self._shown.get(ref.id) == view:
            return
        self._shown[ref.id] = view
        self._state.live.publish(ref.facility_id, "pump.view", view)

    def _views(self, session: Session, refs: Sequence[PumpRef]) -> dict[PumpRef, dict[str, object]]:
        """The live views of these pumps read back from the store (one query per table)."""
        pumps = session.scalars(select(Pump).where(Pump.id.in_([ref.id for ref in refs]))).all()
        views = fleet_view.live_views(
            session, pumps, self._state.clock.now(), self._state.settings.offline_after_s
        )
        return {ref: views[ref.id] for ref in refs if ref.id in views}

    def _publish_alarms(self, ref: PumpRef, fresh: list[EventRecord]) -> None:
        """Publish the alarm events among a pump's fresh events as soon as they are known fresh (stored, and
        above the highest seq seen before), ahead of the state derived from them."""
        for record in fresh:
            if record.type in LIVE_ALARM_TYPES:
                alarm = {k: _plain(record.data.get(k)) for k in ("alarm", "priority", "by", "to_priority")}
                self._state.live.publish(
                    ref.facility_id, record.type, {"pump": ref.serial, "channel": record.channel, **alarm}
                )

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
        stored: dict[str, ChannelReport] | None = None
        library_version: int | None = None
        library_sha256: str | None = None
        configuration_version: int | None = None
        care_area: str | None = None
        software = deployment.software_activated(records)
        firmware = software[-1] if software else None
        for record in records:
            data = record.data
            if record.type == _E.LIBRARY_ACTIVATED and isinstance(data.get("version"), int):
                library_version = int(data["version"])
                library_sha256 = _sha256(data.get("sha256"))
            elif record.type == _E.PUMP_STARTED and isinstance(data.get("library_version"), int):
                library_version = int(data["library_version"])
                library_sha256 = _sha256(data.get("library_sha256"))
            elif record.type == _E.CONFIGURATION_ACTIVATED and isinstance(data.get("version"), int):
                configuration_version = int(data["version"])
            elif record.type == _E.CARE_AREA_SELECTED and isinstance(data.get("care_area"), str):
                care_area = str(data["care_area"])
            elif record.channel is not None:
                previous = channels.get(record.channel)
                if previous is None:
                    if stored is None:
                        stored = {
                            row.channel: ChannelReport.of_row(row)
                            for row in session.scalars(
                                select(ChannelState).where(ChannelState.pump_id == ref.id)
                            )
                        }
                    previous = stored.get(record.channel)
                report = _channel_report(record, previous)
                if report is not None:
                    channels[record.channel] = report
        if (
            not channels
            and library_version is None
            and configuration_version is None
            and care_area is None
            and firmware is None
        ):
            return
        record_status(
            session,
            self._state.clock,
            ref.serial,
            seen_at=self._state.clock.now(),
            firmware=firmware,
            installed_library_version=library_version,
            installed_library_sha256=library_sha256,
            configuration_version=configuration_version,
            care_area=care_area,
            channels=tuple(channels.values()),
        )

    def link_changed(self, serial: str, online: bool) -> None:
        """Apply a pump's retained status (``online``, or the broker's last-will ``offline``); publish it and
        the pump's view (its presence follows the link)."""
        state = self._state
        with self._sessions() as session:
            ref = self.pump(session, serial)
            if ref is None:
                return
            link = _link(session, ref.id)
            if link.online == online and link.status_changed_at is not None:
                return
            link.online = online
            link.status_changed_at = state.clock.now()
            session.commit()
            view = self._views(session, [ref])[ref]
        state.live.publish(ref.facility_id, "pump.online" if online else "pump.offline", {"pump": serial})
        self._publish_view(ref, view)

    def hello(self, serial: str, next_seq: int, acked_seq: int) -> None:
        """A pump (re)connected: flag as a gap any seq it believes acked that the store does not hold."""
        state = self._state
        with self._sessions() as session:
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
                    _refill_gaps(session, {ref.id: (link.max_seq + 1, acked_seq)})
            session.commit()

    def command_result(self, serial: str, body: Mapping[str, Any]) -> None:
        """Record what a pump did with a command."""
        state = self._state
        with self._sessions() as session:
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
            session.commit()


def carries_alarm(batch: Batch) -> bool:
    """Whether a batch holds an event that changes the alarms a pump shows (``fleet_view.ALARM_TYPES``):
    ingest takes it ahead of the heartbeats and other batches of its group."""
    return any(record.type in fleet_view.ALARM_TYPES for record in batch[1])


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


def _refill_gaps(session: Session, ranges: Mapping[int, tuple[int, int]]) -> None:
    """Recount the open gaps overlapping each pump's [low, high] (one query finds them for all the pumps);
    a gap whose events all arrived is closed."""
    if not ranges:
        return
    gaps = session.scalars(select(SeqGap).where(SeqGap.pump_id.in_(list(ranges)))).all()
    for gap in gaps:
        low, high = ranges[gap.pump_id]
        if gap.first_seq > high or gap.last_seq < low:
            continue
        size = gap.last_seq - gap.first_seq + 1
        gap.missing = size - _stored_between(session, gap.pump_id, gap.first_seq, gap.last_seq)
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


def _sha256(value: object) -> str | None:
    """A library content hash as the pump sent it (64 lowercase hex digits), else None."""
    if isinstance(value, str) and len(value) == SHA256_HEX_DIGITS and all(c in HEX for c in value):
        return value
    return None


def _needs_own_commit(record: EventRecord) -> bool:
    """Whether applying this event goes beyond folding it into the view (patient, status, deployment:
    services that commit themselves); a pump without one is folded under a savepoint of the group."""
    return record.type == patients.ASSOCIATED_TYPE or _changes_status(record)


def _changes_status(record: EventRecord) -> bool:
    return record.type in STATUS_TYPES or (record.channel is not None and record.type in CHANNEL_TYPES)


def _plain(value: object) -> object:
    return value if value is None or isinstance(value, str | int | bool) else str(value)


def _channel_report(record: EventRecord, previous: ChannelReport | None) -> ChannelReport | None:
    """The channel's state after this event (``previous``: its state before, stored or from the same
    batch), or None when the event does not change it. The dose is the program's, as an event stated it,
    kept through pause, alarm and resume, cleared when the channel stops or by a rate change that states
    none (never left stale); it is shown only while the channel runs or is paused (``fleet.SHOWS_DOSE``)."""
    assert record.channel is not None
    data = record.data
    if record.type == _E.RATE_CHANGED and previous is not None:
        dose, unit = _dose_of(data)
        return replace(
            previous, dose=dose, dose_unit=unit, rate_ml_per_h=decimal_or_none(data.get("new_rate_ml_per_h"))
        )
    if record.type == _E.ALARM_RAISED and data.get("stops_delivery") is True:
        if previous is None:
            return ChannelReport(channel=record.channel, state=_S.ALARM, rate_ml_per_h=Decimal(0))
        return replace(previous, state=_S.ALARM, rate_ml_per_h=Decimal(0))
    state = CHANNEL_MOVES.get(record.type)
    if state is None:
        return None
    kept = previous if previous is not None and state is not _S.IDLE else None
    drug = data.get("drug")
    dose, unit = _dose_of(data)
    if dose is None and kept is not None:
        dose, unit = kept.dose, kept.dose_unit
    infused = decimal_or_none(data.get("infused_ml"))
    vtbi = decimal_or_none(data.get("vtbi_ml"))
    return ChannelReport(
        channel=record.channel,
        state=state,
        drug=str(drug) if drug is not None else (kept.drug if kept else None),
        dose=dose if state is not _S.IDLE else None,
        dose_unit=unit if state is not _S.IDLE else None,
        rate_ml_per_h=Decimal(0)
        if state in (_S.IDLE, _S.PAUSED)
        else decimal_or_none(data.get("rate_ml_per_h")),
        volume_infused_ml=infused if infused is not None or kept is None else kept.volume_infused_ml,
        vtbi_ml=vtbi if vtbi is not None or kept is None else kept.vtbi_ml,
    )


def _dose_of(data: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    """An event's dose and unit, both or neither (one longer than its column is not shown, never cut)."""
    dose, unit = decimal_or_none(data.get("dose")), data.get("dose_unit")
    if dose is None or len(str(dose)) > MAX_DOSE_TEXT:
        return None, None
    if not isinstance(unit, str) or not 0 < len(unit) <= MAX_DOSE_UNIT:
        return None, None
    return dose, unit
