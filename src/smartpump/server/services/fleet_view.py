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
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.pump.channel import ChannelState as ChannelStateName
from smartpump.pump.events import EventType
from smartpump.server.db.models import ChannelState, Pump
from smartpump.server.db.models_fleet_ops import PumpLink
from smartpump.server.db.models_fleet_view import ActiveAlarm, PumpView
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
    """Apply a heartbeat: presence and battery always; alarms, channels and library identity only when it
    accounts for every event the view has applied (else it is older than the view); returns whether the
    view was replaced (the caller commits)."""
    now = clock.now()
    view = _view(session, pump.id)
    view.heartbeat_at = now
    view.pump_clock = heartbeat.clock
    view.skew_s = Decimal(str(round((heartbeat.clock - now).total_seconds(), 3)))
    view.interval_s = heartbeat.interval_s
    view.battery_percent = heartbeat.battery_percent
    view.on_ac = heartbeat.on_ac
    pump.battery_percent = heartbeat.battery_percent  # what the dashboard shows, even from an older heartbeat
    if pump.last_seen is None or now > pump.last_seen:
        pump.last_seen = now
    if heartbeat.seq < view.applied_seq:
        return False
    view.applied_seq = heartbeat.seq
    view.library_version = heartbeat.library_version
    view.library_sha256 = heartbeat.library_sha256
    view.configuration_version = heartbeat.configuration_version
    _replace_alarms(session, pump.id, heartbeat, now)
    _replace_channels(session, pump.id, heartbeat, now)
    if pump.configuration_version is None:
        # the first the server learns of the pump's configuration: a report, not an activation (that is
        # audited from the pump's configuration.activated event)
        pump.configuration_version = heartbeat.configuration_version
    record_status(
        session,
        clock,
        pump.serial,
        seen_at=now,
        installed_library_version=heartbeat.library_version,
        installed_library_sha256=heartbeat.library_sha256,
        care_area=heartbeat.care_area,
    )
    return True


def _replace_alarms(session: Session, pump_id: int, heartbeat: Heartbeat, now: datetime) -> None:
    shown = {(a.channel or PUMP_WIDE, a.alarm): a.priority for a in heartbeat.alarms}
    for row in session.scalars(select(ActiveAlarm).where(ActiveAlarm.pump_id == pump_id)):
        priority = shown.pop((row.channel, row.alarm), None)
        if priority is None:
            session.delete(row)
        else:
            row.priority = priority
    session.flush()
    for (channel, alarm), priority in shown.items():
        session.add(ActiveAlarm(pump_id=pump_id, channel=channel, alarm=alarm, priority=priority, since=now))


def _replace_channels(session: Session, pump_id: int, heartbeat: Heartbeat, now: datetime) -> None:
    rows = {
        row.channel: row
        for row in session.scalars(select(ChannelState).where(ChannelState.pump_id == pump_id))
    }
    for reported in heartbeat.channels:
        row = rows.get(reported.channel)
        if row is None:
            row = ChannelState(
                pump_id=pump_id, channel=reported.channel, state=reported.state, updated_at=now
            )
            session.add(row)
        row.dose = None if reported.dose is None else str(reported.dose)
        row.dose_unit = reported.dose_unit
        row.state = reported.state
        row.drug = reported.drug
        row.rate_ml_per_h = reported.rate_ml_per_h
        row.volume_infused_ml = reported.infused_ml
        if reported.remaining_ml is None:
            row.vtbi_ml = None
        row.remaining_ml = reported.remaining_ml
        row.remaining_min = reported.remaining_min
        row.reported_at = now
        row.updated_at = now


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
    for alarms in result.values():
        alarms.sort(
            key=lambda a: (
                PRIORITY_ORDER.get(a.priority, len(PRIORITY_ORDER)),
                a.since,
                a.channel or "",
                a.alarm,
            )
        )
    return result


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
        row.pump_id: row.online if row.online or row.status_changed_at is not None else None
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


def live_view(session: Session, pump: Pump, now: datetime, offline_after_s: float) -> dict[str, object]:
    """A pump's view as the live stream carries it (no PHI): model, presence, battery, alarms in presentation
    order with their icon and label, channels, and the tile's look (``services.tile_look``: state, priority,
    sort key) so the browser renders what the first render shows without rules of its own."""
    presence = presence_by_pump(session, [pump], now, offline_after_s)[pump.id]
    channels = session.scalars(select(ChannelState).where(ChannelState.pump_id == pump.id)).all()
    shown: dict[str, object] = {}
    for row in channels:
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
    alarms: list[dict[str, Any]] = [
        {"alarm": a.alarm, "channel": a.channel, "priority": a.priority, "since": a.since}
        for a in alarms_of(session, [pump.id])[pump.id]
    ]
    look = tile_look(
        pump.serial, alarms, offline=not presence.reachable, channel_states=(row.state for row in channels)
    )
    return {
        "pump": pump.serial,
        "model": pump.model,
        "presence": presence.value,
        "battery_percent": pump.battery_percent,
        "alarms": [
            {
                **a,
                "since": a["since"].isoformat(),
                "icon": look_of(a["priority"]).icon,
                "label": alarm_label(a),
            }
            for a in alarms
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
