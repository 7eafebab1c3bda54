"""The fleet view: alarms folded from events, reconciled by the heartbeat; presence by one rule.

The dropped-event tests filter one ``alarm.cleared`` or ``alarm.escalated`` out of the pump's stream:
the truth check (``tests.server.fleet_truth``) then finds the divergence, and the next heartbeat repairs
it (reconciliation), so the check passes again with no event ever arriving.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from smartpump.clock import ManualClock
from smartpump.pump import EventType, Pump
from smartpump.pump.alarms import PAUSED_REMINDER_S, AlarmId
from smartpump.pump.capabilities import PumpModel
from smartpump.server.auth import Role
from smartpump.server.db.models import ChannelState
from smartpump.server.db.models import Pump as PumpRow
from smartpump.server.services import fleet_view
from smartpump.server.services.presence import Presence, presence_of
from smartpump.server.settings import Settings
from smartpump.transport.heartbeat import heartbeat_of_status
from smartpump.transport.messages import EventRecord
from tests.server.conftest import World, _wipe
from tests.server.connected_helpers import Harness, linked_fleet
from tests.server.fleet_truth import divergences
from tests.unit.pump.library import basic, pump_library, start

SERIAL = "P-1"
D = Decimal


@pytest.fixture
def harness(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[Harness]:
    built = Harness(settings, engine, clock)
    built.register(SERIAL, care_area="icu", model="lvp")
    yield built
    built.close()
    _wipe(engine)


def _pump(clock: ManualClock) -> Pump:
    pump = Pump(SERIAL, PumpModel.LVP, clock, library=pump_library())
    pump.select_care_area("icu")
    return pump


def _send_events(harness: Harness, pump: Pump, *, after: int = 0, drop: EventType | None = None) -> None:
    records = [EventRecord.from_event(e) for e in pump.events if e.seq > after and e.type is not drop]
    harness.worker.ingestor.commit([(SERIAL, tuple(records))])


def _heartbeat(harness: Harness, pump: Pump) -> None:
    harness.worker.ingestor.heartbeat(SERIAL, heartbeat_of_status(pump.status(), interval_s=30))


def _fields(harness: Harness, pump: Pump) -> set[str]:
    with harness.session() as session:
        return {d.field for d in divergences(session, pump.status())}


def _occluded_then_cleared(clock: ManualClock) -> Pump:
    pump = _pump(clock)
    start(pump, "A", basic("60", vtbi="100"))
    pump.occlude_upstream("A")
    clock.advance(30)
    pump.release_upstream("A")
    pump.clear_alarm(AlarmId.OCCLUSION_UPSTREAM, "A")
    pump.resume("A")
    return pump


def _paused_and_escalated(clock: ManualClock) -> Pump:
    pump = _pump(clock)
    start(pump, "A", basic("60", vtbi="100"))
    pump.pause("A")
    clock.advance(int(PAUSED_REMINDER_S) + 301)
    pump.sync()
    assert [a.priority for a in pump.status().alarms] == ["medium"]
    return pump


@pytest.mark.parametrize(
    ("scenario", "dropped"),
    [(_occluded_then_cleared, EventType.ALARM_CLEARED), (_paused_and_escalated, EventType.ALARM_ESCALATED)],
)
def test_every_alarm_event_delivered_gives_the_pumps_alarms_without_a_heartbeat(
    harness: Harness, clock: ManualClock, scenario: object, dropped: EventType
) -> None:
    pump = scenario(clock)  # type: ignore[operator]
    _send_events(harness, pump)
    assert "alarms" not in _fields(harness, pump)


@pytest.mark.parametrize(
    ("scenario", "dropped"),
    [(_occluded_then_cleared, EventType.ALARM_CLEARED), (_paused_and_escalated, EventType.ALARM_ESCALATED)],
)
def test_a_dropped_clear_or_escalation_is_caught_then_repaired_by_the_heartbeat(
    harness: Harness, clock: ManualClock, scenario: object, dropped: EventType
) -> None:
    pump = scenario(clock)  # type: ignore[operator]
    _send_events(harness, pump, drop=dropped)
    assert "alarms" in _fields(harness, pump), "the check must see the alarm the server kept wrong"
    _heartbeat(harness, pump)
    assert _fields(harness, pump) == set()


def test_a_late_event_never_undoes_a_newer_heartbeat_and_a_stale_heartbeat_never_undoes_events(
    harness: Harness, clock: ManualClock
) -> None:
    pump = _occluded_then_cleared(clock)
    _heartbeat(harness, pump)
    _send_events(harness, pump)
    assert _fields(harness, pump) == set()
    stale = heartbeat_of_status(pump.status(), interval_s=30)
    seen = pump.events.next_seq - 1
    pump.open_door("A")
    _send_events(harness, pump, after=seen)
    harness.worker.ingestor.heartbeat(SERIAL, stale)
    assert "alarms" not in _fields(harness, pump)
    with harness.session() as session:
        row = session.scalars(select(PumpRow)).one()
        shown = fleet_view.alarms_of(session, [row.id])[row.id]
    assert [(a.alarm, a.channel, a.priority) for a in shown] == [(AlarmId.DOOR_OPEN.value, "A", "high")]


def test_a_heartbeat_older_than_the_view_still_reports_the_battery(
    harness: Harness, clock: ManualClock
) -> None:
    pump = _occluded_then_cleared(clock)
    _send_events(harness, pump)
    older = replace(heartbeat_of_status(pump.status(), interval_s=30), seq=1, battery_percent=42)
    harness.worker.ingestor.heartbeat(SERIAL, older)
    with harness.session() as session:
        assert session.scalars(select(PumpRow.battery_percent)).one() == 42


def test_volume_and_time_left_run_down_between_heartbeats_and_stop_at_zero(
    harness: Harness, clock: ManualClock
) -> None:
    pump = _pump(clock)
    start(pump, "A", basic("60", vtbi="10"))
    _send_events(harness, pump)
    _heartbeat(harness, pump)
    with harness.session() as session:
        row = session.scalars(select(ChannelState).where(ChannelState.channel == "A")).one()
        now = clock.now()
        assert fleet_view.left_now(row, now, horizon_s=300) == (D(10), D(10))
        assert fleet_view.left_now(row, now + timedelta(minutes=4), horizon_s=300) == (D(6), D(6))
        assert fleet_view.left_now(row, now + timedelta(minutes=60), horizon_s=300) == (D(5), D(5)), (
            "stops at horizon"
        )
        assert fleet_view.left_now(row, now + timedelta(minutes=60), horizon_s=3600) == (D(0), D(0)), (
            "never negative"
        )


def test_a_therapy_without_vtbi_shows_no_volume_left_after_one_that_had_one(
    harness: Harness, clock: ManualClock
) -> None:
    pump = _pump(clock)
    start(pump, "A", basic("60", vtbi="10"))
    _send_events(harness, pump)
    _heartbeat(harness, pump)
    seen = pump.events.next_seq - 1
    pump.stop("A")
    start(pump, "A", basic("60", vtbi=None))
    _send_events(harness, pump, after=seen)
    _heartbeat(harness, pump)
    assert _fields(harness, pump) == set()
    with harness.session() as session:
        row = session.scalars(select(ChannelState).where(ChannelState.channel == "A")).one()
        assert fleet_view.left_now(row, clock.now(), horizon_s=300) == (None, None)


def test_an_idle_pump_that_heartbeats_is_idle_never_offline(harness: Harness, clock: ManualClock) -> None:
    pump = _pump(clock)
    _send_events(harness, pump)
    for _ in range(20):
        clock.advance(30)
        _heartbeat(harness, pump)
    assert _fields(harness, pump) == set()
    with harness.session() as session:
        row = session.scalars(select(PumpRow)).one()
        assert fleet_view.presence_by_pump(session, [row], clock.now(), 300)[row.id] is Presence.IDLE
        later = clock.now() + timedelta(seconds=301)
        assert fleet_view.presence_by_pump(session, [row], later, 300)[row.id] is Presence.SILENT


def test_presence_is_one_rule_of_last_heard_link_and_channels() -> None:
    clock = ManualClock()
    now = clock.now()
    heard = now - timedelta(seconds=299)

    def rule(last: datetime | None, link: bool | None, states: tuple[str, ...] = ("idle",)) -> Presence:
        return presence_of(
            now=now, last_heard=last, link_online=link, channel_states=states, offline_after_s=300
        )

    assert rule(heard, True) is Presence.IDLE
    assert rule(heard, None, ("idle", "running")) is Presence.ONLINE
    assert rule(now - timedelta(seconds=301), True) is Presence.SILENT
    assert rule(now - timedelta(seconds=301), None) is Presence.SILENT
    assert rule(heard, False) is Presence.OFFLINE
    assert rule(None, True) is Presence.OFFLINE
    assert Presence.IDLE.reachable and not Presence.SILENT.reachable


def paused_past_reminder(world: World) -> None:
    """Pump ``SERIAL`` (registered) reports channel A paused past its reminder in a heartbeat stored
    directly (no live message is published for it)."""
    pump = _pump(world.clock)
    start(pump, "A", basic("60", vtbi="100"))
    pump.pause("A")
    world.clock.advance(int(PAUSED_REMINDER_S) + 301)
    with world.state.sessions() as session:
        row = session.scalars(select(PumpRow).where(PumpRow.serial == SERIAL)).one()
        fleet_view.apply_heartbeat(
            session, world.clock, row, heartbeat_of_status(pump.status(), interval_s=30)
        )
        session.commit()


def test_the_fleet_api_lists_the_alarms_pumps_show_now_within_the_callers_facilities(world: World) -> None:
    north, south = world.facility("north"), world.facility("south")
    biomed = world.as_role(Role.BIOMED, north)
    world.pump(biomed, north, SERIAL)
    world.pump(world.as_role(Role.BIOMED, south), south, "S-1")
    paused_past_reminder(world)
    shown = world.client.get("/api/v1/fleet/alarms", headers=biomed).json()
    assert [(a["pump"], a["channel"], a["alarm"], a["priority"]) for a in shown] == [
        (SERIAL, "A", AlarmId.CHANNEL_PAUSED.value, "medium")
    ]
    channels = world.client.get(f"/api/v1/pumps/{SERIAL}/channels", headers=biomed).json()
    a = next(c for c in channels if c["channel"] == "A")
    assert (a["state"], Decimal(a["remaining_ml"]), a["remaining_min"]) == ("paused", D(100), None)
    assert world.client.get("/api/v1/fleet/alarms", headers=world.as_role(Role.NURSE, south)).json() == []


def test_simulated_pumps_heartbeat_over_the_in_process_link(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with linked_fleet(settings, engine, tmp_path, hospital="north") as (harness, fleet):
        fleet.heartbeat_now()
        harness.pump_messages(step=fleet.advance)
        with harness.session() as session:
            rows = session.scalars(select(PumpRow)).all()
            views = fleet_view.views_of(session, [r.id for r in rows])
            assert {r.serial for r in rows if r.id in views} == set(fleet.serials())
            assert all(v.battery_percent is not None and v.pump_clock is not None for v in views.values())
            for serial in fleet.serials():
                with fleet.lock:
                    status = fleet.fleet.act(serial, Pump.status)
                timing = {"remaining_ml", "remaining_min"}
                assert [d for d in divergences(session, status) if d.field.split(".")[-1] not in timing] == []
