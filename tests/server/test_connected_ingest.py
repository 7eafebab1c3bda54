"""Ingest over the in-process transport: stored exactly once, acked after commit, gaps, link state, live."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, select

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog, EventType, EventValue
from smartpump.server.db.models import AuditRecord, ChannelState, Event, Pump
from smartpump.server.db.models_fleet_ops import PumpLink, SeqGap
from smartpump.server.settings import Settings
from smartpump.transport.inprocess import Faults, InProcessBroker
from smartpump.transport.messages import EventRecord
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import Uplink
from tests.server.conftest import START, _wipe
from tests.server.connected_helpers import Harness, harness, outbox_path, wire
from tests.unit.transport.helpers import vitals_every_minute

__all__ = ["harness"]


def _pump(harness: Harness, tmp_path: Path, serial: str, clock: ManualClock) -> tuple[EventLog, Uplink]:
    log = EventLog(serial)
    uplink = Uplink(
        outbox=Outbox(outbox_path(tmp_path, serial), pump=serial),
        transport=harness.link.pump_transport(serial),
        clock=clock,
        batch_size=50,
        ack_timeout_s=5,
    )
    uplink.start()
    return log, uplink


def test_batches_from_many_pumps_are_stored_exactly_once_despite_duplicates(
    settings: Settings, engine: Engine, clock: ManualClock, tmp_path: Path
) -> None:
    harness = Harness(settings, engine, clock)
    harness.link.broker = InProcessBroker(faults=Faults(duplicate=0.5, reorder=0.3, seed=7))
    harness.worker.transport = harness.link.server_transport()
    harness.worker.attach(harness.state)
    try:
        pumps = {}
        for serial in ("p-1", "p-2", "p-3"):
            harness.register(serial)
            pumps[serial] = _pump(harness, tmp_path, serial, clock)
        expected = {}
        for log, uplink in pumps.values():
            vitals_every_minute(log, clock, 120, alarm_every=30)
            uplink.take(log.since(0))
            expected.update(wire(log.since(0)))

        def resend() -> None:
            clock.advance(6)
            for _, uplink in pumps.values():
                uplink.step()

        harness.pump_messages(200, step=resend)
        assert harness.link.broker.stats.duplicated > 0
        assert harness.stored() == expected
        assert all(uplink.backlog == 0 for _, uplink in pumps.values())
    finally:
        harness.close()
        _wipe(engine)


def test_a_pump_that_is_not_registered_is_not_acknowledged(
    harness: Harness, clock: ManualClock, tmp_path: Path
) -> None:
    log, uplink = _pump(harness, tmp_path, "stranger", clock)
    vitals_every_minute(log, clock, 5)
    uplink.take(log.since(0))
    uplink.step()
    harness.pump_messages()
    assert harness.stored() == {}
    assert uplink.backlog == 5
    assert harness.worker.ingestor.stats.unknown_pump_batches >= 1


def _records(serial: str, clock: ManualClock, seqs: list[int]) -> tuple[EventRecord, ...]:
    return tuple(
        EventRecord(v=1, pump=serial, seq=s, ts=clock.now(), channel="A", type="vitals.recorded", data={})
        for s in seqs
    )


def _gaps(harness: Harness) -> list[tuple[int, int, int]]:
    with harness.session() as session:
        return [(g.first_seq, g.last_seq, g.missing) for g in session.scalars(select(SeqGap))]


def test_a_gap_in_seq_is_flagged_until_the_missing_events_arrive(
    harness: Harness, clock: ManualClock
) -> None:
    harness.register("p-1")
    ingestor = harness.worker.ingestor
    ingestor.commit([("p-1", _records("p-1", clock, [1, 2, 3]))])
    ingestor.commit([("p-1", _records("p-1", clock, [6, 7]))])
    assert _gaps(harness) == [(4, 5, 2)]
    ingestor.commit([("p-1", _records("p-1", clock, [4]))])
    assert _gaps(harness) == [(4, 5, 1)]
    ingestor.commit([("p-1", _records("p-1", clock, [5]))])
    assert _gaps(harness) == []
    assert sorted(seq for _, seq in harness.stored()) == [1, 2, 3, 4, 5, 6, 7]


def test_a_hello_claiming_acked_events_the_store_lacks_opens_a_gap(
    harness: Harness, clock: ManualClock
) -> None:
    harness.register("p-1")
    harness.worker.ingestor.commit([("p-1", _records("p-1", clock, [1, 2]))])
    harness.worker.ingestor.hello("p-1", next_seq=10, acked_seq=9)
    assert _gaps(harness) == [(3, 9, 7)]


def test_last_will_marks_the_pump_offline_and_publishes_it(
    harness: Harness, clock: ManualClock, tmp_path: Path
) -> None:
    harness.register("p-1")
    _pump(harness, tmp_path, "p-1", clock)
    harness.pump_messages()
    with harness.session() as session:
        assert session.get(PumpLink, 1) is not None
        assert session.scalars(select(PumpLink.online)).one() is True
    endpoint = harness.link.broker._pumps["p-1"]
    with harness.link.lock:
        endpoint.set_link(False)
    harness.worker.ingestor.link_changed("p-1", harness.link.broker.status("p-1") == "online")
    with harness.session() as session:
        assert session.scalars(select(PumpLink.online)).one() is False
    assert [m.payload["pump"] for m in harness.state.live.recent("pump.offline")] == ["p-1"]


def test_alarms_are_published_live_and_channel_state_is_recorded(
    harness: Harness, clock: ManualClock
) -> None:
    harness.register("p-1")
    log = EventLog("p-1")
    log.append(
        EventType.INFUSION_STARTED,
        clock.now(),
        "A",
        {"drug": "dopamine", "rate_ml_per_h": Decimal("12.5"), "vtbi_ml": Decimal("250")},
    )
    log.append(
        EventType.ALARM_RAISED,
        clock.now(),
        "A",
        {"alarm": "occlusion_downstream", "priority": "high", "stops_delivery": True},
    )
    harness.worker.ingestor.commit([("p-1", tuple(EventRecord.from_event(e) for e in log.since(0)))])
    alarms = harness.state.live.recent("alarm.raised")
    assert [(m.payload["pump"], m.payload["alarm"], m.payload["priority"]) for m in alarms] == [
        ("p-1", "occlusion_downstream", "high")
    ]
    with harness.session() as session:
        channel = session.scalars(select(ChannelState)).one()
    assert (channel.channel, channel.state, channel.drug, channel.rate_ml_per_h) == (
        "A",
        "alarm",
        "dopamine",
        Decimal(0),
    )


def test_an_event_from_a_clock_years_off_is_stored_and_flagged(harness: Harness, clock: ManualClock) -> None:
    harness.register("p-1")
    skewed = EventRecord(
        v=1,
        pump="p-1",
        seq=1,
        ts=clock.now() - timedelta(days=3650),
        channel=None,
        type="pump.started",
        data={},
    )
    harness.worker.ingestor.commit([("p-1", (skewed,))])
    assert list(harness.stored()) == [("p-1", 1)]
    with harness.session() as session:
        assert session.scalars(select(PumpLink.skewed_events)).one() == 1


def test_unknown_pumps_of_one_group_are_registered_together_with_one_audit_record(
    settings: Settings, engine: Engine, clock: ManualClock
) -> None:
    harness = Harness(settings.model_copy(update={"ingest_register_facility": "sim"}), engine, clock)
    try:
        batches = [
            (serial, (EventRecord(v=1, pump=serial, seq=1, ts=START, channel=None, type="pump.started"),))
            for serial in ("new-1", "new-2", "new-3")
        ]
        result = harness.worker.ingestor.commit(batches)
        assert result.committed == (True, True, True)
        with harness.state.sessions() as session:
            serials = set(session.scalars(select(Pump.serial).where(Pump.serial.like("new-%"))))
            records = session.scalars(
                select(AuditRecord).where(AuditRecord.action == "pump.registered")
            ).all()
        assert serials == {"new-1", "new-2", "new-3"}
        assert [json.loads(r.details)["serials"] for r in records] == [["new-1", "new-2", "new-3"]]
    finally:
        harness.close()
        _wipe(engine)


def test_awkward_text_and_offsets_are_stored_as_sent(
    harness: Harness, tmp_path: Path, clock: ManualClock
) -> None:
    harness.register("p-txt")
    log, uplink = _pump(harness, tmp_path, "p-txt", clock)
    india = timezone(timedelta(hours=5, minutes=30))
    notes = ['back\\slash "quoted"', "new\nline\ttab\r", "nul \u0000 end", "Héparine µg — \\N 😀", "\\."]
    for i, note in enumerate(notes):
        log.append(
            EventType.VITALS_RECORDED,
            (START + timedelta(minutes=i)).astimezone(india),
            "A",
            {"note": note, "patient_id": "MRN\\42" if i == 0 else "x" * 65, "order_id": f"ord\t{i}"},
        )
    uplink.take(log.since(0))
    uplink.step()

    harness.pump_messages()

    assert harness.stored() == wire(log.since(0))
    with harness.session() as session:
        keys = session.execute(select(Event.seq, Event.patient_id, Event.order_id).order_by(Event.seq)).all()
    assert keys[0] == (1, "MRN\\42", None)
    assert all(patient is None and order is None for _, patient, order in keys[1:])


def test_channel_state_follows_events_across_batches_with_the_dose(
    harness: Harness, clock: ManualClock
) -> None:
    harness.register("p-1")
    log = EventLog("p-1")
    ingestor = harness.worker.ingestor
    mcg = "mcg/kg/min"
    steps: list[tuple[EventType, dict[str, EventValue]]] = [
        (
            EventType.INFUSION_STARTED,
            {"drug": "dopamine", "dose": "5", "dose_unit": mcg, "rate_ml_per_h": "13.1", "vtbi_ml": "250"},
        ),
        (
            EventType.RATE_CHANGED,
            {"old_rate_ml_per_h": "13.1", "new_rate_ml_per_h": "15.8", "dose": "6", "dose_unit": mcg},
        ),
        (EventType.INFUSION_PAUSED, {"infused_ml": "10", "reason": "user"}),
        (EventType.INFUSION_RESUMED, {"rate_ml_per_h": "15.8"}),
        (
            EventType.ALARM_RAISED,
            {"alarm": "occlusion_downstream", "priority": "high", "stops_delivery": True},
        ),
        (EventType.INFUSION_RESUMED, {"rate_ml_per_h": "15.8"}),
        (EventType.RATE_CHANGED, {"old_rate_ml_per_h": "15.8", "new_rate_ml_per_h": "20"}),
        (EventType.INFUSION_STOPPED, {"infused_ml": "40"}),
    ]
    seen = []
    for event_type, data in steps:
        event = log.append(event_type, clock.now(), "A", data)
        ingestor.commit([("p-1", (EventRecord.from_event(event),))])
        with harness.session() as session:
            row = session.scalars(select(ChannelState)).one()
            seen.append((row.state, row.drug, row.dose, row.dose_unit, row.rate_ml_per_h, row.vtbi_ml))

    assert seen == [
        ("running", "dopamine", "5", mcg, Decimal("13.1"), Decimal("250")),
        ("running", "dopamine", "6", mcg, Decimal("15.8"), Decimal("250")),
        ("paused", "dopamine", "6", mcg, Decimal(0), Decimal("250")),
        ("running", "dopamine", "6", mcg, Decimal("15.8"), Decimal("250")),
        ("alarm", "dopamine", "6", mcg, Decimal(0), Decimal("250")),
        ("running", "dopamine", "6", mcg, Decimal("15.8"), Decimal("250")),
        ("running", "dopamine", None, None, Decimal("20"), Decimal("250")),
        ("idle", None, None, None, Decimal(0), None),
    ]
    views = [cast(dict[str, Any], m.payload["channels"])["A"] for m in harness.state.live.recent("pump.view")]
    live = [(view["dose"], view["dose_unit"]) for view in views]
    shown = [
        ("5", mcg),
        ("6", mcg),
        ("6", mcg),
        ("6", mcg),
        (None, None),
        ("6", mcg),
        (None, None),
        (None, None),
    ]
    assert live == shown


def test_a_pump_whose_state_cannot_be_applied_leaves_no_false_gap(
    harness: Harness, clock: ManualClock
) -> None:
    harness.register("p-1")
    harness.register("p-2")
    ingestor = harness.worker.ingestor
    logs = {serial: EventLog(serial) for serial in ("p-1", "p-2")}
    too_long = "x" * 300
    for log in logs.values():
        log.append(EventType.INFUSION_STARTED, clock.now(), "A", {"drug": too_long, "rate_ml_per_h": "5"})
        log.append(EventType.VITALS_RECORDED, clock.now(), None, {"spo2_percent": "97"})
    ingestor.commit([(s, tuple(EventRecord.from_event(e) for e in log.since(0))) for s, log in logs.items()])
    for log in logs.values():
        log.append(EventType.VITALS_RECORDED, clock.now(), None, {"spo2_percent": "96"})
    ingestor.commit([(s, (EventRecord.from_event(log.since(2)[0]),)) for s, log in logs.items()])

    assert _gaps(harness) == []
    assert sorted(harness.stored()) == [
        ("p-1", 1),
        ("p-1", 2),
        ("p-1", 3),
        ("p-2", 1),
        ("p-2", 2),
        ("p-2", 3),
    ]
    with harness.session() as session:
        assert sorted(session.scalars(select(PumpLink.max_seq))) == [3, 3]


def test_one_event_is_published_once_as_the_pumps_view(harness: Harness, clock: ManualClock) -> None:
    # issue 14: one infusion.started went out as channel.state and as pump.view, both carrying the channel
    harness.register("p-1")
    log = EventLog("p-1")
    live = harness.state.live
    alarm: dict[str, EventValue] = {
        "alarm": "occlusion.downstream",
        "priority": "high",
        "stops_delivery": True,
    }
    steps: list[tuple[EventType, dict[str, EventValue]]] = [
        (EventType.INFUSION_STARTED, {"drug": "dopamine", "rate_ml_per_h": "12.5", "vtbi_ml": "250"}),
        (EventType.RATE_CHANGED, {"old_rate_ml_per_h": "12.5", "new_rate_ml_per_h": "15"}),
        (EventType.ALARM_RAISED, alarm),
        (EventType.ALARM_CLEARED, {"alarm": "occlusion.downstream", "by": "operator", "priority": "high"}),
        (EventType.INFUSION_STOPPED, {"infused_ml": "40", "reason": "user"}),
    ]
    per_event = []
    for event_type, data in steps:
        before = live.published
        event = log.append(event_type, clock.now(), "A", data)
        harness.worker.ingestor.commit([("p-1", (EventRecord.from_event(event),))])
        sent = live.recent()[before - live.published :] if live.published > before else []
        per_event.append(sorted(m.kind for m in sent))
    assert per_event == [
        ["pump.status", "pump.view"],
        ["pump.status", "pump.view"],
        ["alarm.raised", "pump.status", "pump.view"],
        ["alarm.cleared", "pump.status", "pump.view"],
        ["pump.status", "pump.view"],
    ]
    tiles = [cast(dict[str, Any], m.payload["tile"]) for m in live.recent("pump.view")]
    assert [(t["state"], t["priority"]) for t in tiles] == [
        ("running", ""),
        ("running", ""),
        ("alarming", "high"),
        ("running", ""),
        ("idle", ""),
    ]
