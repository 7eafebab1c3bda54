"""The fleet view: what each pump shows now, held in ``pump_views``, ``active_alarms`` and
``channel_states``, fed by the pump's alarm events and reconciled by its status heartbeat.

Both sources carry the pump's seq: a heartbeat accounts for every event up to its ``seq``, so the view
keeps ``applied_seq``, the last event it accounts for. An event above it changes the view (``alarm.raised``
adds, ``alarm.escalated`` changes the priority, ``alarm.cleared`` removes, a restart empties the board); a
heartbeat at or above it replaces the pump's alarms and channel status wholesale (the heartbeat wins for
what is active now; the stored events remain its history). Anything older is history only, so a late
event never undoes a newer heartbeat and a lost clear or escalation is repaired by the next heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.pump.channel import ChannelState as ChannelStateName
from smartpump.pump.events import EventType
from smartpump.server.db.bulk import update_rows
from smartpump.server.db.models import ChannelState, Pump
from smartpump.server.db.models_fleet_ops import PumpLink
from smartpump.server.db.models_fleet_view import ActiveAlarm, PumpView
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.services.fleet import SHOWS_DOSE, record_status
from smartpump.server.services.presence import Presence, presence_of
from smartpump.server.services.tile_look import PRIORITY_ORDER, alarm_label, look_of, tile_look
from smartpump.transport.heartbeat import Heartbeat
from smartpump.transport.messages import EventRecord

PUMP_WIDE: Final = ""
"""The ``channel`` of an alarm of the whole pump."""
BOARD_RESET_TYPES: Final = frozenset({EventType.PUMP_STARTED, EventType.PUMP_STATE_RESTORED})
ALARM_TYPES: Final = frozenset(
    {EventType.ALARM_RAISED, EventType.ALARM_ESCALATED, EventType.ALARM_CLEARED, *BOARD_RESET_TYPES}
)
ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmView:
    """One alarm a pump shows: id, channel (None: the whole pump), priority, since when (pump time)."""

    alarm: str
    channel: str | None
    priority: str
    since: datetime


def applied_seqs(session: Session, pump_ids: Iterable[int]) -> dict[int, int]:
    """The last event seq the view of each pump accounts for (pumps without a view are left out)."""
    ids = list(pump_ids)
    rows = session.execute(select(PumpView.pump_id, PumpView.applied_seq).where(PumpView.pump_id.in_(ids)))
    return {row.pump_id: row.applied_seq for row in rows}


def apply_events(session: Session, pump_id: int, records: Sequence[EventRecord]) -> None:
    """Fold a pump's fresh events (seq order, all above ``applied_seq``) into its active alarms; a channel an
    event changes forgets the volume and time left its last heartbeat reported. Does not commit."""
    if not records:
        return
    view = _view(session, pump_id)
    for record in records:
        if record.seq <= view.applied_seq:
            continue
        view.applied_seq = record.seq
        if record.type in ALARM_TYPES:
            _fold_alarm(session, pump_id, record)
    changed = {r.channel for r in records if r.channel is not None and r.type not in ALARM_TYPES}
    if changed:
        for row in session.scalars(
            select(ChannelState).where(ChannelState.pump_id == pump_id, ChannelState.channel.in_(changed))
        ):
            row.remaining_ml = row.remaining_min = row.reported_at = None


def advance_views(
    session: Session, records_of: Mapping[int, Sequence[EventRecord]], applied: Mapping[int, int]
) -> None:
    """``apply_events`` for pumps whose fresh events (seq order, all above ``applied_seq``) hold no alarm
    event, set-based: each view's ``applied_seq`` moved to its last event (``applied``: the pumps that have
    a view, and their applied seq; a view is created for the others), and the channels an event changes
    forget their last heartbeat's volume and time left, one statement each for the group. Does not
    commit."""
    created: list[dict[str, object]] = []
    moved: list[tuple[object, ...]] = []
    touched: list[dict[str, object]] = []
    for pump_id, records in records_of.items():
        if not records:
            continue
        assert not any(r.type in ALARM_TYPES for r in records), "alarm events fold through apply_events"
        if pump_id in applied:
            moved.append((pump_id, records[-1].seq))
        else:
            created.append({"pump_id": pump_id, "applied_seq": records[-1].seq})
        for channel in sorted({r.channel for r in records if r.channel is not None}):
            touched.append({"c_pump_id": pump_id, "c_channel": channel})
    connection = session.connection()
    if created:
        connection.execute(insert(_VIEW_TABLE), created)
    update_rows(connection, _VIEW_TABLE, ("pump_id", "applied_seq"), moved, rising="applied_seq")
    if touched:
        connection.execute(
            update(_CHANNEL_TABLE)
            .where(
                _CHANNEL_TABLE.c.pump_id == bindparam("c_pump_id"),
                _CHANNEL_TABLE.c.channel == bindparam("c_channel"),
            )
            .values(remaining_ml=None, remaining_min=None, reported_at=None),
            touched,
        )


def _fold_alarm(session: Session, pump_id: int, record: EventRecord) -> None:
    if record.type in BOARD_RESET_TYPES:
        session.execute(delete(ActiveAlarm).where(ActiveAlarm.pump_id == pump_id))
        return
    data = record.data
    alarm = data.get("alarm")
    if not isinstance(alarm, str) or not alarm:
        return
    channel = record.channel or PUMP_WIDE
    row = session.scalars(
        select(ActiveAlarm).where(
            ActiveAlarm.pump_id == pump_id, ActiveAlarm.channel == channel, ActiveAlarm.alarm == alarm
        )
    ).first()
    if record.type == EventType.ALARM_CLEARED:
        if row is not None:
            session.delete(row)
        return
    priority = data.get("priority" if record.type == EventType.ALARM_RAISED else "to_priority")
    if priority not in PRIORITY_ORDER:
        return
    if row is None:
        session.add(
            ActiveAlarm(
                pump_id=pump_id, channel=channel, alarm=alarm, priority=str(priority), since=record.ts
            )
        )
        session.flush()
    else:
        row.priority = str(priority)


def apply_heartbeat(session: Session, clock: Clock, pump: Pump, heartbeat: Heartbeat) -> bool:
    """Apply one heartbeat (``apply_heartbeats`` of one); returns whether the view was replaced (the caller
    commits)."""
    applied = apply_heartbeats(session, clock, [(pump.id, heartbeat)], offline_after_s=0.0)
    return pump.id in applied and applied[pump.id].replaced


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatApplied:
    """What a group of heartbeats left of one pump: its facility, whether its alarms and channels were
    replaced, and its live view now after and before the group (``live_view`` of the stored state, built
    from memory: a pump heard again after going silent has the same view after as before it went silent,
    but not the same as before the group)."""

    facility_id: int
    replaced: bool
    view: dict[str, object]
    before: dict[str, object]


@dataclass(slots=True, kw_only=True)
class _Held:
    """One pump's rows as a group of heartbeats reads and changes them (columns by name)."""

    pump: dict[str, Any]
    view: dict[str, Any] | None
    alarms: dict[tuple[str, str], tuple[str, datetime]]
    channels: dict[str, dict[str, Any]]
    link_online: bool | None
    replaced: bool = False
    library_reports: list[tuple[int, str | None, str | None]] = field(default_factory=list)

    def copy(self) -> _Held:
        """A copy whose rows are independent of this one's."""
        return _Held(
            pump=dict(self.pump),
            view=None if self.view is None else dict(self.view),
            alarms=dict(self.alarms),
            channels={channel: dict(row) for channel, row in self.channels.items()},
            link_online=self.link_online,
        )


_PUMP_COLUMNS: Final = (
    Pump.id,
    Pump.serial,
    Pump.model,
    Pump.facility_id,
    Pump.battery_percent,
    Pump.last_seen,
    Pump.care_area,
    Pump.configuration_version,
    Pump.installed_library_version,
    Pump.library_sha256,
)
_PUMP_WRITTEN: Final = ("battery_percent", "last_seen", "care_area", "configuration_version")
_VIEW_TABLE: Final = cast(Table, PumpView.__table__)
_CHANNEL_TABLE: Final = cast(Table, ChannelState.__table__)
_PUMP_TABLE: Final = cast(Table, Pump.__table__)
_CHANNEL_COLUMNS: Final = tuple(c.name for c in _CHANNEL_TABLE.columns if c.name != "id")


def apply_heartbeats(
    session: Session, clock: Clock, heartbeats: Sequence[tuple[int, Heartbeat]], *, offline_after_s: float
) -> dict[int, HeartbeatApplied]:
    """Apply a group of heartbeats (pump id, heartbeat; a pump's in arrival order) set-based: one read of the
    group's pumps, views, alarms, channels and links, then per table one statement for the group: the
    presence, battery and clock of every pump (each heartbeat), and, for the pumps whose heartbeat accounts
    for every event the view applied (else it is older than the view), their alarms and channels replaced
    where they changed and their library identity (a library change through ``record_status``: history
    and audit). A channel the pump reports unchanged keeps its row (and ``reported_at``) unless it runs
    down (running with time left). Returns each known pump's result; does not commit."""
    ids = sorted({pump_id for pump_id, _ in heartbeats})
    if not ids:
        return {}
    now = clock.now()
    session.flush()
    held = _read_held(session, ids)
    before = {pump_id: one.copy() for pump_id, one in held.items()}
    for pump_id, heartbeat in heartbeats:
        one = held.get(pump_id)
        if one is not None:
            _fold_heartbeat(one, heartbeat, now)
    _write_held(session, held, before)
    session.expire_all()  # rows loaded before are stale now
    for one in held.values():
        for version, sha256, care_area in one.library_reports:
            record_status(
                session,
                clock,
                str(one.pump["serial"]),
                seen_at=now,
                installed_library_version=version,
                installed_library_sha256=sha256,
                care_area=care_area,
            )
    return {
        pump_id: HeartbeatApplied(
            facility_id=int(one.pump["facility_id"]),
            replaced=one.replaced,
            view=_held_view(one, now, offline_after_s),
            before=_held_view(before[pump_id], now, offline_after_s),
        )
        for pump_id, one in held.items()
    }


def _read_held(session: Session, ids: Sequence[int]) -> dict[int, _Held]:
    """The rows of these pumps that a heartbeat reads or replaces, five queries for the group."""
    pumps = {
        row.id: dict(row._mapping) for row in session.execute(select(*_PUMP_COLUMNS).where(Pump.id.in_(ids)))
    }
    views = {
        row.pump_id: dict(row._mapping)
        for row in session.execute(select(_VIEW_TABLE).where(_VIEW_TABLE.c.pump_id.in_(ids)))
    }
    alarms: dict[int, dict[tuple[str, str], tuple[str, datetime]]] = {pump_id: {} for pump_id in ids}
    for row in session.execute(
        select(
            ActiveAlarm.pump_id,
            ActiveAlarm.channel,
            ActiveAlarm.alarm,
            ActiveAlarm.priority,
            ActiveAlarm.since,
        )
        .where(ActiveAlarm.pump_id.in_(ids))
        .order_by(ActiveAlarm.id)
    ):
        alarms[row.pump_id][(row.channel, row.alarm)] = (row.priority, row.since)
    channels: dict[int, dict[str, dict[str, Any]]] = {pump_id: {} for pump_id in ids}
    for row in session.execute(
        select(*(_CHANNEL_TABLE.c[name] for name in _CHANNEL_COLUMNS))
        .where(_CHANNEL_TABLE.c.pump_id.in_(ids))
        .order_by(_CHANNEL_TABLE.c.id)
    ):
        channels[row.pump_id][row.channel] = dict(row._mapping)
    links = {
        row.pump_id: _link_state(row.online, row.status_changed_at)
        for row in session.execute(
            select(PumpLink.pump_id, PumpLink.online, PumpLink.status_changed_at).where(
                PumpLink.pump_id.in_(ids)
            )
        )
    }
    return {
        pump_id: _Held(
            pump=pump,
            view=views.get(pump_id),
            alarms=alarms[pump_id],
            channels=channels[pump_id],
            link_online=links.get(pump_id),
        )
        for pump_id, pump in pumps.items()
    }


def _fold_heartbeat(one: _Held, heartbeat: Heartbeat, now: datetime) -> None:
    """One heartbeat applied to a pump's rows in memory, as the rules of ``apply_heartbeats`` say."""
    pump = one.pump
    if one.view is None:
        one.view = {c.name: None for c in _VIEW_TABLE.columns} | {"pump_id": pump["id"], "applied_seq": 0}
    view = one.view
    view.update(
        heartbeat_at=now,
        pump_clock=heartbeat.clock,
        skew_s=Decimal(str(round((heartbeat.clock - now).total_seconds(), 3))),
        interval_s=heartbeat.interval_s,
        battery_percent=heartbeat.battery_percent,
        on_ac=heartbeat.on_ac,
    )
    pump["battery_percent"] = (
        heartbeat.battery_percent
    )  # the dashboard shows it, even from an older heartbeat
    if pump["last_seen"] is None or now > pump["last_seen"]:
        pump["last_seen"] = now
    if heartbeat.seq < view["applied_seq"]:
        return
    one.replaced = True
    view.update(
        applied_seq=heartbeat.seq,
        library_version=heartbeat.library_version,
        library_sha256=heartbeat.library_sha256,
        configuration_version=heartbeat.configuration_version,
    )
    shown = {(a.channel or PUMP_WIDE, a.alarm): a.priority for a in heartbeat.alarms}
    one.alarms = {
        key: (priority, one.alarms[key][1] if key in one.alarms else now) for key, priority in shown.items()
    }
    for reported in heartbeat.channels:
        row = one.channels.get(reported.channel)
        if row is None:
            row = dict.fromkeys(_CHANNEL_COLUMNS) | {
                "pump_id": pump["id"],
                "channel": reported.channel,
            }
            one.channels[reported.channel] = row
        row.update(
            state=reported.state,
            drug=reported.drug,
            dose=None if reported.dose is None else str(reported.dose),
            dose_unit=reported.dose_unit,
            rate_ml_per_h=reported.rate_ml_per_h,
            volume_infused_ml=reported.infused_ml,
            vtbi_ml=reported.vtbi_ml,
            remaining_ml=reported.remaining_ml,
            remaining_min=reported.remaining_min,
            reported_at=now,
            updated_at=now,
        )
    if pump["configuration_version"] is None:
        # the first the server learns of the pump's configuration: a report, not an activation (that is
        # audited from the pump's configuration.activated event)
        pump["configuration_version"] = heartbeat.configuration_version
    if heartbeat.care_area is not None:
        pump["care_area"] = heartbeat.care_area
    if heartbeat.library_version is not None and (
        heartbeat.library_version != pump["installed_library_version"]
        or heartbeat.library_sha256 != pump["library_sha256"]
    ):
        one.library_reports.append((heartbeat.library_version, heartbeat.library_sha256, heartbeat.care_area))
        pump["installed_library_version"] = heartbeat.library_version
        pump["library_sha256"] = heartbeat.library_sha256


def _channel_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether a channel's row must be written: new, reported differently, first reported since an event
    changed it, or running down (its time left counts from ``reported_at``)."""
    if old is None:
        return True
    if old == new:
        return False
    if old["reported_at"] is None:
        return True
    if new["state"] == ChannelStateName.RUNNING and new["remaining_min"] is not None:
        return True
    timing = ("reported_at", "updated_at")
    return any(old[name] != new[name] for name in _CHANNEL_COLUMNS if name not in timing)


def _write_held(session: Session, held: Mapping[int, _Held], before: Mapping[int, _Held]) -> None:
    """The group's changes, one statement per table and kind (executemany where values differ per pump)."""
    connection = session.connection()
    created = [
        one.view for pump_id, one in held.items() if before[pump_id].view is None and one.view is not None
    ]
    updated = [
        {f"v_{k}": v for k, v in one.view.items()}
        for pump_id, one in held.items()
        if before[pump_id].view is not None and one.view is not None and one.view != before[pump_id].view
    ]
    if created:
        connection.execute(insert(_VIEW_TABLE), created)
    if updated:
        connection.execute(
            update(_VIEW_TABLE)
            .where(_VIEW_TABLE.c.pump_id == bindparam("v_pump_id"))
            .values({c.name: bindparam(f"v_{c.name}") for c in _VIEW_TABLE.columns if c.name != "pump_id"}),
            updated,
        )
    pumps = [
        {"p_id": pump_id, **{f"p_{k}": one.pump[k] for k in _PUMP_WRITTEN}}
        for pump_id, one in held.items()
        if any(one.pump[k] != before[pump_id].pump[k] for k in _PUMP_WRITTEN)
    ]
    if pumps:
        connection.execute(
            update(_PUMP_TABLE)
            .where(_PUMP_TABLE.c.id == bindparam("p_id"))
            .values({k: bindparam(f"p_{k}") for k in _PUMP_WRITTEN}),
            pumps,
        )
    alarmed = [pump_id for pump_id, one in held.items() if one.alarms != before[pump_id].alarms]
    if alarmed:
        connection.execute(delete(ActiveAlarm).where(ActiveAlarm.pump_id.in_(alarmed)))
        rows = [
            {"pump_id": pump_id, "channel": channel, "alarm": alarm, "priority": priority, "since": since}
            for pump_id in alarmed
            for (channel, alarm), (priority, since) in held[pump_id].alarms.items()
        ]
        if rows:
            connection.execute(insert(ActiveAlarm), rows)
    channelled = [
        pump_id
        for pump_id, one in held.items()
        if any(_channel_changed(before[pump_id].channels.get(c), row) for c, row in one.channels.items())
    ]
    if channelled:
        connection.execute(delete(ChannelState).where(ChannelState.pump_id.in_(channelled)))
        connection.execute(
            insert(ChannelState), [row for pump_id in channelled for row in held[pump_id].channels.values()]
        )


def _held_view(one: _Held, now: datetime, offline_after_s: float) -> dict[str, object]:
    """The live view of a pump from its rows in memory (what ``live_view`` reads back from the store)."""
    channels = [ChannelState(**row) for row in one.channels.values()]
    alarms = _ordered(
        [
            AlarmView(alarm=alarm, channel=channel or None, priority=priority, since=since)
            for (channel, alarm), (priority, since) in one.alarms.items()
        ]
    )
    presence = presence_of(
        now=now,
        last_heard=one.pump["last_seen"],
        link_online=one.link_online,
        channel_states=[row.state for row in channels],
        offline_after_s=offline_after_s,
    )
    pump = one.pump
    return compose_view(
        serial=pump["serial"],
        model=pump["model"],
        battery_percent=pump["battery_percent"],
        presence=presence,
        channels=channels,
        alarms=alarms,
        now=now,
        offline_after_s=offline_after_s,
    )


def _view(session: Session, pump_id: int) -> PumpView:
    view = session.get(PumpView, pump_id)
    if view is None:
        view = PumpView(pump_id=pump_id, applied_seq=0)
        session.add(view)
        session.flush()
    return view


def alarms_of(session: Session, pump_ids: Iterable[int]) -> dict[int, list[AlarmView]]:
    """The alarms each pump shows now, highest priority first, then the oldest."""
    ids = list(pump_ids)
    result: dict[int, list[AlarmView]] = {pump_id: [] for pump_id in ids}
    for row in session.scalars(select(ActiveAlarm).where(ActiveAlarm.pump_id.in_(ids))):
        result[row.pump_id].append(
            AlarmView(alarm=row.alarm, channel=row.channel or None, priority=row.priority, since=row.since)
        )
    return {pump_id: _ordered(alarms) for pump_id, alarms in result.items()}


def _ordered(alarms: list[AlarmView]) -> list[AlarmView]:
    """Alarms in presentation order: highest priority first, then the oldest."""
    return sorted(
        alarms,
        key=lambda a: (
            PRIORITY_ORDER.get(a.priority, len(PRIORITY_ORDER)),
            a.since,
            a.channel or "",
            a.alarm,
        ),
    )


def views_of(session: Session, pump_ids: Iterable[int]) -> dict[int, PumpView]:
    """The heartbeat status of each pump that sent one."""
    ids = list(pump_ids)
    return {view.pump_id: view for view in session.scalars(select(PumpView).where(PumpView.pump_id.in_(ids)))}


def left_now(row: ChannelState, now: datetime, *, horizon_s: float) -> tuple[Decimal | None, Decimal | None]:
    """Volume (mL) and time (min) left on a channel now: the heartbeat's values run down at the reported
    rate for at most ``horizon_s`` after it (a silent pump's values stop there), never below zero (none
    when the pump reported none: no VTBI); without a heartbeat since the channel changed, the VTBI less
    the volume infused and no time."""
    if row.reported_at is None:
        if row.vtbi_ml is None:
            return None, None
        return max(ZERO, row.vtbi_ml - (row.volume_infused_ml or ZERO)), None
    if row.remaining_ml is None:
        return None, None
    if row.state != ChannelStateName.RUNNING or row.remaining_min is None or row.remaining_min <= 0:
        return max(ZERO, row.remaining_ml), None if row.remaining_min is None else max(
            ZERO, row.remaining_min
        )
    elapsed_min = Decimal(str(min(max((now - row.reported_at).total_seconds(), 0.0), horizon_s))) / 60
    minutes = max(ZERO, row.remaining_min - elapsed_min)
    volume = max(ZERO, row.remaining_ml * minutes / row.remaining_min)
    return volume.quantize(Decimal("0.001")), minutes.quantize(Decimal("0.1"))


def presence_by_pump(
    session: Session, pumps: Sequence[Pump], now: datetime, offline_after_s: float
) -> dict[int, Presence]:
    """The presence of each pump (``services.presence``), from its last message, link and channels; a link
    row ingest made before any status message (offline, never changed) is no link state."""
    ids = [p.id for p in pumps]
    links: Mapping[int, bool | None] = {
        row.pump_id: _link_state(row.online, row.status_changed_at)
        for row in session.execute(
            select(PumpLink.pump_id, PumpLink.online, PumpLink.status_changed_at).where(
                PumpLink.pump_id.in_(ids)
            )
        )
    }
    states: dict[int, list[str]] = {pump_id: [] for pump_id in ids}
    for pump_id, state in session.execute(
        select(ChannelState.pump_id, ChannelState.state).where(ChannelState.pump_id.in_(ids))
    ):
        states[pump_id].append(state)
    return {
        pump.id: presence_of(
            now=now,
            last_heard=pump.last_seen,
            link_online=links.get(pump.id),
            channel_states=states[pump.id],
            offline_after_s=offline_after_s,
        )
        for pump in pumps
    }


def _link_state(online: bool, status_changed_at: datetime | None) -> bool | None:
    """A pump's link state for presence: a link row ingest made before any status message (offline, never
    changed) is no link state."""
    return online if online or status_changed_at is not None else None


def live_view(session: Session, pump: Pump, now: datetime, offline_after_s: float) -> dict[str, object]:
    """A pump's view as the live stream carries it (``compose_view`` of its stored rows)."""
    return live_views(session, [pump], now, offline_after_s)[pump.id]


def live_views(
    session: Session, pumps: Sequence[Pump], now: datetime, offline_after_s: float
) -> dict[int, dict[str, object]]:
    """``live_view`` of many pumps, with one query per table for them all."""
    ids = [pump.id for pump in pumps]
    presence = presence_by_pump(session, pumps, now, offline_after_s)
    channels: dict[int, list[ChannelState]] = {pump_id: [] for pump_id in ids}
    for row in session.scalars(
        select(ChannelState).where(ChannelState.pump_id.in_(ids)).order_by(ChannelState.id)
    ):
        channels[row.pump_id].append(row)
    alarms = alarms_of(session, ids)
    return {
        pump.id: compose_view(
            serial=pump.serial,
            model=pump.model,
            battery_percent=pump.battery_percent,
            presence=presence[pump.id],
            channels=channels[pump.id],
            alarms=alarms[pump.id],
            now=now,
            offline_after_s=offline_after_s,
        )
        for pump in pumps
    }


def current_views(
    session: Session, facility_ids: frozenset[int] | None, now: datetime, offline_after_s: float
) -> list[tuple[int, dict[str, object]]]:
    """The live view of every pump of these facilities (None: all) with its facility id, in serial
    order: what a live stream starts from."""
    pumps = fleet_repo.all_pumps(session, facility_ids=facility_ids)
    views = live_views(session, pumps, now, offline_after_s)
    return [(pump.facility_id, views[pump.id]) for pump in pumps]


def compose_view(
    *,
    serial: str,
    model: str,
    battery_percent: int | None,
    presence: Presence,
    channels: Sequence[ChannelState],
    alarms: Sequence[AlarmView],
    now: datetime,
    offline_after_s: float,
) -> dict[str, object]:
    """A pump's view as the live stream carries it (no PHI): model, presence, battery, alarms in presentation
    order with their icon and label, channels, and the tile's look (``services.tile_look``: state, priority,
    sort key) so the browser renders what the first render shows without rules of its own."""
    shown: dict[str, object] = {}
    for row in sorted(channels, key=lambda c: c.channel):
        remaining_ml, remaining_min = left_now(row, now, horizon_s=offline_after_s)
        dose = None if row.dose is None or row.state not in SHOWS_DOSE else Decimal(row.dose)
        shown[row.channel] = {
            "state": row.state,
            "drug": row.drug,
            "dose": _text(dose),
            "dose_unit": None if dose is None else row.dose_unit,
            "rate_ml_per_h": _text(row.rate_ml_per_h),
            "remaining_ml": _text(remaining_ml),
            "remaining_min": _text(remaining_min),
        }
    listed: list[dict[str, Any]] = [
        {"alarm": a.alarm, "channel": a.channel, "priority": a.priority, "since": a.since} for a in alarms
    ]
    look = tile_look(
        serial, listed, offline=not presence.reachable, channel_states=(row.state for row in channels)
    )
    return {
        "pump": serial,
        "model": model,
        "presence": presence.value,
        "battery_percent": battery_percent,
        "alarms": [
            {
                **a,
                "since": a["since"].isoformat(),
                "icon": look_of(a["priority"]).icon,
                "label": alarm_label(a),
            }
            for a in listed
        ],
        "channels": shown,
        "tile": {
            "state": look.state.value,
            "priority": look.priority,
            "sort_key": look.sort_key,
            "offline": not presence.reachable,
        },
    }


def _text(value: Decimal | None) -> str | None:
    """Plain text of a Decimal without exponent or trailing zeros ("6.3", not "6.3000")."""
    return None if value is None else format(value.normalize(), "f")
