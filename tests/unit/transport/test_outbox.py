"""The durable outbox: survives restarts, deletes only on cumulative ack, sheds only low-value events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog, EventType
from smartpump.transport.outbox import SHED_EVENT_TYPE, Outbox, OutboxError, shed_rank
from tests.unit.transport.helpers import vitals_every_minute

PUMP = "pump-1"


def _log(minutes: int, *, alarm_every: int = 0) -> EventLog:
    log = EventLog(PUMP)
    vitals_every_minute(log, ManualClock(), minutes, alarm_every=alarm_every)
    return log


def test_events_survive_closing_and_reopening_the_file(tmp_path: Path) -> None:
    log = _log(10)
    with Outbox(tmp_path / "outbox.db", pump=PUMP) as outbox:
        for event in log:
            outbox.append(event)

    with Outbox(tmp_path / "outbox.db", pump=PUMP) as reopened:
        kept = reopened.pending(0, 100)
        assert [r.to_dict() for r in kept] == [e.to_dict() for e in log]
        assert reopened.last_seq == 10


def test_cumulative_ack_deletes_only_acked_rows_and_persists(tmp_path: Path) -> None:
    log = _log(10)
    with Outbox(tmp_path / "outbox.db", pump=PUMP) as outbox:
        for event in log:
            outbox.append(event)
        assert outbox.acknowledge(6) == 6
        assert outbox.acknowledge(3) == 0

    with Outbox(tmp_path / "outbox.db", pump=PUMP) as reopened:
        assert reopened.acked_seq == 6
        assert [r.seq for r in reopened.pending(reopened.acked_seq, 100)] == [7, 8, 9, 10]
        assert len(reopened) == 4


def test_pending_pages_in_seq_order(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", pump=PUMP) as outbox:
        for event in _log(10):
            outbox.append(event)
        assert [r.seq for r in outbox.pending(2, 3)] == [3, 4, 5]


def test_ack_ahead_of_the_data_is_refused(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", pump=PUMP) as outbox:
        for event in _log(3):
            outbox.append(event)
        with pytest.raises(OutboxError) as caught:
            outbox.acknowledge(4)
        assert caught.value.code == "outbox.ack_ahead"
        assert len(outbox) == 3


def test_seq_must_increase_even_after_acks_and_restart(tmp_path: Path) -> None:
    log = _log(3)
    with Outbox(tmp_path / "o.db", pump=PUMP) as outbox:
        for event in log:
            outbox.append(event)
        outbox.acknowledge(3)
    with Outbox(tmp_path / "o.db", pump=PUMP) as reopened, pytest.raises(OutboxError) as caught:
        reopened.append(list(log)[-1])
    assert caught.value.code == "outbox.seq_order"


def test_other_pumps_event_is_refused(tmp_path: Path) -> None:
    other = EventLog("pump-2").append(
        EventType.BATTERY_LOW, datetime(2026, 1, 1, tzinfo=UTC), None, {"remaining_min": 30}
    )
    with Outbox(tmp_path / "o.db", pump=PUMP) as outbox, pytest.raises(OutboxError) as caught:
        outbox.append(other)
    assert caught.value.code == "outbox.pump_mismatch"


def test_other_pumps_file_is_refused(tmp_path: Path) -> None:
    Outbox(tmp_path / "o.db", pump=PUMP).close()
    with pytest.raises(OutboxError) as caught:
        Outbox(tmp_path / "o.db", pump="pump-2")
    assert caught.value.code == "outbox.pump_mismatch"


def test_counters_persist(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", pump=PUMP) as outbox:
        outbox.save_counter("command", 17)
    with Outbox(tmp_path / "o.db", pump=PUMP) as reopened:
        assert reopened.load_counter("command") == 17
        assert reopened.load_counter("never") == 0


@pytest.mark.parametrize(
    ("event_type", "rank"),
    [
        ("alarm.raised", None),
        ("alert.overridden", None),
        ("library.rejected", None),
        ("configuration.rejected", None),
        ("configuration.activated", None),
        ("command.refused", None),
        ("events.shed", None),
        ("verification.failed", None),
        ("occlusion.detected", None),
        ("pump.state_restored", None),
        ("vitals.recorded", 0),
        ("rate.changed", 1),
        ("infusion.started", 1),
    ],
)
def test_shed_rank_protects_safety_events(event_type: str, rank: int | None) -> None:
    assert shed_rank(event_type) == rank


def test_over_capacity_sheds_telemetry_and_keeps_every_alarm(tmp_path: Path) -> None:
    log = _log(120, alarm_every=10)
    with Outbox(tmp_path / "o.db", pump=PUMP, capacity=40, shed_batch=10) as outbox:
        for event in log:
            outbox.append(event)
        kept = outbox.pending(0, 1000)
        shed_total = outbox.shed_count

    kept_seqs = {r.seq for r in kept}
    alarms = {e.seq for e in log if e.type is EventType.ALARM_RAISED}
    assert alarms <= kept_seqs
    assert len(kept) <= 40
    gaps = [r for r in kept if r.type == SHED_EVENT_TYPE]
    assert gaps
    described = {seq for gap in gaps for first, last in gap.data["seqs"] for seq in range(first, last + 1)}
    originals = {r.seq for r in kept if r.type != SHED_EVENT_TYPE}
    assert described | originals == {e.seq for e in log}
    assert not described & originals
    assert sum(g.data["count"] for g in gaps) == shed_total == len(described)
    assert all(g.data["types"] == {"vitals.recorded": g.data["count"]} for g in gaps)


def test_gap_event_takes_the_seq_and_time_of_the_last_shed_event(tmp_path: Path) -> None:
    log = _log(5)
    with Outbox(tmp_path / "o.db", pump=PUMP, capacity=4, shed_batch=2) as outbox:
        for event in log:
            outbox.append(event)
        kept = outbox.pending(0, 10)
    gap = next(r for r in kept if r.type == SHED_EVENT_TYPE)
    assert (gap.data["first_seq"], gap.data["last_seq"], gap.data["count"]) == (1, 2, 2)
    assert gap.seq == 2
    assert gap.ts == list(log)[1].ts
    assert [r.seq for r in kept] == [2, 3, 4, 5]


def test_only_protected_events_left_grows_past_capacity_rather_than_lose_one(tmp_path: Path) -> None:
    clock = ManualClock()
    log = EventLog(PUMP)
    with Outbox(tmp_path / "o.db", pump=PUMP, capacity=5, shed_batch=2) as outbox:
        for _ in range(12):
            clock.advance(1)
            outbox.append(
                log.append(
                    EventType.ALARM_CLEARED,
                    clock.now(),
                    "A",
                    {"alarm": "air_in_line", "by": "user", "duration_s": 3},
                )
            )
        assert len(outbox) == 12
        assert outbox.shed_count == 0


def test_capacity_below_two_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutboxError) as caught:
        Outbox(tmp_path / "o.db", pump=PUMP, capacity=1)
    assert caught.value.code == "outbox.capacity"
