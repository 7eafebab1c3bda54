"""A group of many pumps' small batches: the pumps whose events only fold into the view are applied
under savepoints with one commit for the group, the others pump by pump as before. Nothing is lost,
nothing counted twice (unique (pump, seq)), every pump's view accounts for its last event, alarms fold,
a redelivered group stores and folds nothing again, and a pump with a status event in the same group
still gets its channel state."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from smartpump.clock import ManualClock
from smartpump.server.db.models import ChannelState, Event
from smartpump.server.db.models import Pump as PumpRow
from smartpump.server.db.models_fleet_view import ActiveAlarm, PumpView
from smartpump.server.services import fleet_view
from smartpump.server.settings import Settings
from smartpump.transport.messages import EventRecord
from tests.server.conftest import _wipe
from tests.server.connected_helpers import Harness

PUMPS = 30
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def harness(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[Harness]:
    built = Harness(settings, engine, clock)
    for index in range(PUMPS):
        built.register(_serial(index))
    yield built
    built.close()
    _wipe(engine)


def _serial(index: int) -> str:
    return f"G-{index:03d}"


def _record(serial: str, seq: int, kind: str, channel: str | None, **data: object) -> EventRecord:
    return EventRecord(
        v=1, pump=serial, seq=seq, ts=START + timedelta(seconds=seq), channel=channel, type=kind, data=data
    )


def _vitals(serial: str, seq: int) -> EventRecord:
    return _record(serial, seq, "vitals.recorded", None, spo2_percent="97", resp_rate_bpm="14")


def _batch(index: int, first: int, last: int) -> tuple[str, tuple[EventRecord, ...]]:
    """Vitals, and on every third pump a pump-wide alarm raised at ``first`` (folded, not a status)."""
    serial = _serial(index)
    records = [_vitals(serial, seq) for seq in range(first, last + 1)]
    if index % 3 == 0:
        records[0] = _record(serial, first, "alarm.raised", None, alarm="battery.low", priority="medium")
    return serial, tuple(records)


def _views(harness: Harness) -> dict[str, int]:
    with harness.session() as session:
        rows = session.execute(select(PumpRow.serial, PumpView.applied_seq).join(PumpView)).all()
    return {row.serial: row.applied_seq for row in rows}


def _counts(harness: Harness) -> tuple[int, int]:
    with harness.session() as session:
        total = session.scalar(select(func.count()).select_from(Event))
        distinct = session.scalar(
            select(func.count()).select_from(select(Event.pump_id, Event.seq).distinct().subquery())
        )
    return int(total or 0), int(distinct or 0)


def test_a_group_of_many_pumps_is_stored_once_and_every_view_accounts_for_its_last_event(
    harness: Harness,
) -> None:
    ingestor = harness.worker.ingestor
    first = ingestor.commit([_batch(i, 1, 3) for i in range(PUMPS)])
    assert (all(first.committed), first.stored, first.duplicates) == (True, PUMPS * 3, 0)
    assert _views(harness) == {_serial(i): 3 for i in range(PUMPS)}
    with harness.session() as session:
        alarmed = session.scalars(select(PumpRow.serial).join(ActiveAlarm).order_by(PumpRow.serial)).all()
    assert alarmed == [_serial(i) for i in range(0, PUMPS, 3)]

    again = ingestor.commit([_batch(i, 1, 4) for i in range(PUMPS)])
    assert (again.stored, again.duplicates) == (PUMPS, PUMPS * 3)
    assert _counts(harness) == (PUMPS * 4, PUMPS * 4)
    assert _views(harness) == {_serial(i): 4 for i in range(PUMPS)}
    with harness.session() as session:
        assert session.scalar(select(func.count()).select_from(ActiveAlarm)) == len(range(0, PUMPS, 3))


def test_a_pump_with_a_status_event_in_the_same_group_gets_its_channel_state(harness: Harness) -> None:
    running = _serial(1)
    started = _record(running, 4, "infusion.started", "A", drug="heparin", rate_ml_per_h="25")
    batches = [_batch(i, 1, 3) for i in range(PUMPS)]
    batches[1] = (running, (*batches[1][1], started))
    result = harness.worker.ingestor.commit(batches)
    assert (result.stored, result.duplicates) == (PUMPS * 3 + 1, 0)
    views = _views(harness)
    assert views[running] == 4 and all(views[_serial(i)] == 3 for i in range(PUMPS) if i != 1)
    with harness.session() as session:
        channel = session.scalars(select(ChannelState).join(PumpRow).where(PumpRow.serial == running)).one()
    assert (channel.state, channel.drug) == ("running", "heparin")


def test_an_alarm_is_published_once_known_fresh_before_the_state_derived_from_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live stream learns of an alarm right after the group's highest seqs are committed, not after the
    views, channels and status of the group are applied; a redelivered alarm is not published again."""
    live = harness.state.live
    shown_when_applied: list[list[str]] = []
    apply_events = fleet_view.apply_events

    def watched(session: Session, pump_id: int, records: Sequence[EventRecord]) -> None:
        shown_when_applied.append([str(m.payload["pump"]) for m in live.recent("alarm.raised")])
        apply_events(session, pump_id, records)

    monkeypatch.setattr(fleet_view, "apply_events", watched)
    alarmed = [_serial(i) for i in range(0, PUMPS, 3)]

    harness.worker.ingestor.commit([_batch(i, 1, 3) for i in range(PUMPS)])

    assert shown_when_applied and all(shown == alarmed for shown in shown_when_applied)
    harness.worker.ingestor.commit([_batch(i, 1, 3) for i in range(PUMPS)])
    assert [m.payload["pump"] for m in live.recent("alarm.raised")] == alarmed
