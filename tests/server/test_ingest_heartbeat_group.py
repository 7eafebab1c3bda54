"""Heartbeats applied per drained group (``Ingestor.heartbeats``, ``fleet_view.apply_heartbeats``).

A group leaves the same fleet view as its heartbeats applied one by one and the pumps' own status; the live
view it publishes (built in memory) is the one read back from the store; a heartbeat that changes nothing
rewrites no alarm or channel row and publishes nothing; and a batch carrying an alarm is taken ahead of
the heartbeats and batches it arrived behind in the same group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from smartpump.clock import ManualClock
from smartpump.pump import Pump
from smartpump.pump.alarms import PAUSED_REMINDER_S
from smartpump.pump.capabilities import PumpModel
from smartpump.server import workers
from smartpump.server.db.bulk import update_rows
from smartpump.server.db.models import AuditRecord, ChannelState
from smartpump.server.db.models import Pump as PumpRow
from smartpump.server.db.models_fleet_view import ActiveAlarm, PumpView
from smartpump.server.services import fleet_view
from smartpump.server.workers import MAX_GROUP_MESSAGES
from smartpump.transport.heartbeat import Heartbeat, heartbeat_message, heartbeat_of_status
from smartpump.transport.messages import EventRecord, events_message
from tests.server.connected_helpers import Harness, harness
from tests.server.fleet_truth import divergences
from tests.unit.pump.library import basic, pump_library, start

__all__ = ["harness"]

HORIZON_S = 300.0
HEARTBEAT_PUMPS = 60
CHANNEL_FIELDS = (
    "channel",
    "state",
    "drug",
    "dose",
    "dose_unit",
    "rate_ml_per_h",
    "volume_infused_ml",
    "vtbi_ml",
    "updated_at",
    "remaining_ml",
    "remaining_min",
    "reported_at",
)


def _pump(clock: ManualClock, serial: str) -> Pump:
    pump = Pump(serial, PumpModel.LVP, clock, library=pump_library())
    pump.select_care_area("icu")
    return pump


def _running(pump: Pump) -> None:
    start(pump, "A", basic("60", vtbi="100"))


def _paused(pump: Pump) -> None:
    start(pump, "A", basic("60", vtbi="100"))
    pump.pause("A")


def _occluded(pump: Pump) -> None:
    start(pump, "A", basic("60", vtbi="100"))
    pump.occlude_upstream("A")


SCENARIOS: dict[str, Callable[[Pump], None]] = {
    "idle": lambda pump: None,
    "running": _running,
    "paused": _paused,
    "occluded": _occluded,
}


def _fleet(harness: Harness, clock: ManualClock, prefix: str) -> dict[str, Pump]:
    pumps = {}
    for name, scenario in SCENARIOS.items():
        serial = f"{prefix}-{name}"
        harness.register(serial, care_area="ward")
        pumps[serial] = _pump(clock, serial)
        scenario(pumps[serial])
    return pumps


def _heartbeat(pump: Pump) -> Heartbeat:
    return heartbeat_of_status(pump.status(), interval_s=30)


def _stored(session: Session, serial: str) -> dict[str, Any]:
    """Everything a heartbeat writes for a pump, its serial masked (to compare two pumps' rows)."""
    pump = session.scalars(select(PumpRow).where(PumpRow.serial == serial)).one()
    view = session.get(PumpView, pump.id)
    assert view is not None
    now = pump.last_seen
    assert now is not None
    shown = {
        "live": fleet_view.live_view(session, pump, now, HORIZON_S),
        "pump": [
            pump.battery_percent,
            pump.last_seen,
            pump.care_area,
            pump.configuration_version,
            pump.installed_library_version,
            pump.library_sha256,
        ],
        "view": {
            c: getattr(view, c)
            for c in (
                "applied_seq",
                "heartbeat_at",
                "pump_clock",
                "skew_s",
                "interval_s",
                "battery_percent",
                "on_ac",
                "library_version",
                "library_sha256",
                "configuration_version",
            )
        },
        "alarms": sorted(
            (a.channel, a.alarm, a.priority, a.since)
            for a in session.scalars(select(ActiveAlarm).where(ActiveAlarm.pump_id == pump.id))
        ),
        "channels": sorted(
            tuple(getattr(row, c) for c in CHANNEL_FIELDS)
            for row in session.scalars(select(ChannelState).where(ChannelState.pump_id == pump.id))
        ),
        "library_audits": session.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.object_id == serial)
        ),
    }
    masked: dict[str, Any] = json.loads(json.dumps(shown, default=str).replace(serial, "SERIAL"))
    return masked


def test_a_group_of_heartbeats_leaves_what_each_applied_alone_leaves(
    harness: Harness, clock: ManualClock
) -> None:
    grouped = _fleet(harness, clock, "G")
    _fleet(harness, clock, "S")

    def apply(rounds: list[Heartbeat]) -> None:
        harness.worker.ingestor.heartbeats([(hb.pump, hb) for hb in rounds if hb.pump.startswith("G")])
        for hb in rounds:
            if hb.pump.startswith("S"):
                harness.worker.ingestor.heartbeat(hb.pump, hb)

    def both(pump: Pump) -> list[Heartbeat]:
        heartbeat = _heartbeat(pump)
        return [heartbeat, replace(heartbeat, pump=heartbeat.pump.replace("G-", "S-"))]

    first = [hb for pump in grouped.values() for hb in both(pump)]
    apply(first)
    clock.advance(int(PAUSED_REMINDER_S) + 301)
    for pump in grouped.values():
        pump.sync()
    grouped["G-occluded"].release_upstream("A")
    grouped["G-running"].pause("A")
    later = [hb for pump in grouped.values() for hb in both(pump)]
    stale = [replace(hb, seq=0, battery_percent=41) for hb in first if hb.pump.endswith("-idle")]
    apply(later + stale + [hb for hb in later if hb.pump.endswith("-paused")])
    with harness.session() as session:
        for serial in grouped:
            assert _stored(session, serial) == _stored(session, serial.replace("G-", "S-")), serial


def test_the_view_after_a_group_is_each_pumps_own_status_and_the_published_view_is_the_stored_one(
    harness: Harness, clock: ManualClock
) -> None:
    pumps = _fleet(harness, clock, "P")
    live = harness.state.live
    for _ in range(3):
        harness.worker.ingestor.heartbeats([(serial, _heartbeat(pump)) for serial, pump in pumps.items()])
        published = {m.payload["pump"]: m.payload for m in live.recent("pump.view")}
        with harness.session() as session:
            for serial, pump in pumps.items():
                assert divergences(session, pump.status(), offline_after_s=HORIZON_S) == [], serial
                row = session.scalars(select(PumpRow).where(PumpRow.serial == serial)).one()
                stored = fleet_view.live_view(
                    session, row, clock.now(), harness.state.settings.offline_after_s
                )
                assert published[serial] == stored, serial
        clock.advance(30)
        for pump in pumps.values():
            pump.sync()


def test_a_heartbeat_that_changes_nothing_rewrites_no_row_and_publishes_nothing(
    harness: Harness, clock: ManualClock
) -> None:
    pumps = _fleet(harness, clock, "P")
    quiet = {serial: pump for serial, pump in pumps.items() if not serial.endswith("-running")}
    live = harness.state.live

    def rows() -> tuple[set[int], set[int]]:
        with harness.session() as session:
            return set(session.scalars(select(ActiveAlarm.id))), set(session.scalars(select(ChannelState.id)))

    heartbeats = [(serial, _heartbeat(pump)) for serial, pump in quiet.items()]
    harness.worker.ingestor.heartbeats(heartbeats)
    alarms, channels = rows()
    assert alarms and channels
    published = live.published
    clock.advance(10)
    harness.worker.ingestor.heartbeats(heartbeats)
    assert rows() == (alarms, channels)
    assert live.published == published, "an unchanged view is not published again"
    with harness.session() as session:
        seen = session.execute(select(PumpRow.last_seen, PumpView.heartbeat_at).join(PumpView)).all()
        assert {(row.last_seen, row.heartbeat_at) for row in seen} == {(clock.now(), clock.now())}
    weaker = [(serial, replace(hb, battery_percent=12)) for serial, hb in heartbeats]
    harness.worker.ingestor.heartbeats(weaker)
    assert live.published == published + len(quiet)
    clock.advance(int(harness.state.settings.offline_after_s) + 1)
    harness.worker.ingestor.heartbeats(weaker)
    assert live.published == published + 2 * len(quiet), "a pump heard again after going silent is shown"


@pytest.mark.parametrize("group", [MAX_GROUP_MESSAGES, 10], ids=["one group", "many groups"])
def test_a_batch_carrying_an_alarm_is_published_before_the_heartbeats_it_arrived_behind(
    harness: Harness, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, group: int
) -> None:
    """In one group the alarm batch is applied first; behind more than a group of messages it overtakes
    them (the worker's urgent lane)."""
    monkeypatch.setattr(workers, "MAX_GROUP_MESSAGES", group)
    quiet = [f"H-{i:03d}" for i in range(HEARTBEAT_PUMPS)]
    for serial in [*quiet, "P-alarm", "P-plain"]:
        harness.register(serial)
    alarmed, plain = _pump(clock, "P-alarm"), _pump(clock, "P-plain")
    _occluded(alarmed)
    _running(plain)
    template = _heartbeat(_pump(clock, "H-000"))
    transports = {serial: harness.link.pump_transport(serial) for serial in [*quiet, "P-alarm", "P-plain"]}
    for transport in transports.values():
        transport.start(lambda envelope: None, lambda up: None)
    assert transports["P-plain"].send(
        events_message("P-plain", [EventRecord.from_event(e) for e in plain.events])
    )
    harness.pump_messages()
    seen = plain.events.next_seq - 1
    plain.pause("A")
    for serial in quiet:
        assert transports[serial].send(heartbeat_message(replace(template, pump=serial)))
    assert transports["P-plain"].send(
        events_message("P-plain", [EventRecord.from_event(e) for e in plain.events if e.seq > seen])
    )
    assert transports["P-alarm"].send(
        events_message("P-alarm", [EventRecord.from_event(e) for e in alarmed.events])
    )
    live = harness.state.live
    before = live.published
    harness.link.deliver()
    assert harness.worker.run_once() == HEARTBEAT_PUMPS + 2
    step = live.recent()[before - live.published :]
    order = [(m.kind, m.payload["pump"]) for m in step]
    heartbeat_views = [i for i, (kind, pump) in enumerate(order) if kind == "pump.view" and pump in quiet]
    assert len(heartbeat_views) == HEARTBEAT_PUMPS
    assert (
        order.index(("alarm.raised", "P-alarm")) < order.index(("pump.view", "P-alarm")) < heartbeat_views[0]
    )
    assert order.index(("pump.status", "P-plain")) > heartbeat_views[-1]
    with harness.session() as session:
        found = divergences(session, alarmed.status(), offline_after_s=HORIZON_S)
        assert "alarms" not in {d.field for d in found}, "the alarm shown is the pump's"


def test_events_without_alarms_fold_for_the_group_at_once_as_apply_events_folds_them(
    harness: Harness, clock: ManualClock
) -> None:
    pumps = {serial: _pump(clock, serial) for serial in ("G-1", "R-1")}
    for serial, pump in pumps.items():
        harness.register(serial)
        _running(pump)
        harness.worker.ingestor.commit([(serial, tuple(EventRecord.from_event(e) for e in pump.events))])
        harness.worker.ingestor.heartbeat(serial, _heartbeat(pump))
    after = {serial: pump.events.next_seq for serial, pump in pumps.items()}
    later = {
        serial: tuple(
            EventRecord(
                v=1,
                pump=serial,
                seq=after[serial] + i,
                ts=clock.now(),
                channel=channel,
                type="program.checked",
                data={},
            )
            for i, channel in enumerate(("A", None))
        )
        for serial in pumps
    }
    harness.worker.ingestor.commit([("G-1", later["G-1"])])
    with harness.session() as session:
        reference = session.scalars(select(PumpRow.id).where(PumpRow.serial == "R-1")).one()
        fleet_view.apply_events(session, reference, later["R-1"])
        session.commit()
        grouped, alone = _stored(session, "G-1"), _stored(session, "R-1")
    assert grouped["view"]["applied_seq"] == after["G-1"] + 1
    reported = {row[0]: row[-1] for row in grouped["channels"]}
    assert reported["A"] is None and reported["B"] is not None, "only channel A forgot its heartbeat's report"
    assert {k: v for k, v in grouped.items() if k != "pump"} == {
        k: v for k, v in alone.items() if k != "pump"
    }


def test_update_rows_sets_each_keyed_row_and_only_where_the_rising_column_grows(harness: Harness) -> None:
    for serial in ("B-1", "B-2", "B-3"):
        harness.register(serial)
    table = cast(Table, PumpView.__table__)
    with harness.session() as session:
        ids = list(session.scalars(select(PumpRow.id).order_by(PumpRow.serial)))
        session.add_all(PumpView(pump_id=i, applied_seq=seq) for i, seq in zip(ids, (5, 9, 4), strict=True))
        session.commit()
        update_rows(
            session.connection(),
            table,
            ("pump_id", "applied_seq"),
            [(ids[0], 7), (ids[1], 8)],
            rising="applied_seq",
        )
        update_rows(session.connection(), table, ("pump_id", "battery_percent"), [(ids[1], 50), (ids[2], 60)])
        session.commit()
        rows = session.execute(
            select(PumpView.applied_seq, PumpView.battery_percent).order_by(PumpView.pump_id)
        )
        assert [tuple(row) for row in rows] == [(7, None), (9, 50), (4, 60)]


def test_a_heartbeat_ahead_of_the_events_it_accounts_for_still_shows_the_pumps_vtbi(
    harness: Harness, clock: ManualClock
) -> None:
    """The worker applies a step's heartbeats before its plain event batches, and a channel's events at or
    below the heartbeat's seq are then skipped: the VTBI, stated only by ``infusion.started``, came from
    the heartbeat or not at all."""
    harness.register("V-1", care_area="ward")
    pump = _pump(clock, "V-1")
    start(pump, "A", basic("60", vtbi="100"))
    clock.advance(600)
    pump.sync()
    harness.worker.ingestor.heartbeat("V-1", _heartbeat(pump))
    harness.worker.ingestor.commit([("V-1", tuple(EventRecord.from_event(e) for e in pump.events))])
    with harness.session() as session:
        assert divergences(session, pump.status(), offline_after_s=HORIZON_S) == []
        row = session.scalars(
            select(ChannelState).join(PumpRow).where(PumpRow.serial == "V-1", ChannelState.channel == "A")
        ).one()
        assert (row.vtbi_ml, row.volume_infused_ml) == (Decimal(100), Decimal(10))
