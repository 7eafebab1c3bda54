"""The in-process broker: same bytes as MQTT, seeded faults, and a store that still ends equal to the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog
from smartpump.transport.inprocess import Faults, InProcessBroker, InProcessTransport
from smartpump.transport.messages import (
    Envelope,
    EventRecord,
    Kind,
    MessageError,
    PumpState,
    ack_message,
    events_message,
    hello_message,
)
from smartpump.transport.mqtt import IngestSubscriber
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import Uplink
from tests.unit.transport.helpers import Store, vitals_every_minute

PUMP = "pump-1"


def _collect(endpoint: InProcessTransport) -> list[Envelope]:
    received: list[Envelope] = []
    endpoint.start(received.append, lambda up: None)
    return received


def _drive(broker: InProcessBroker, uplink: Uplink, clock: ManualClock, *, max_ticks: int = 5000) -> None:
    """Advance virtual seconds, stepping the uplink and the broker, until the outbox is empty."""
    for _ in range(max_ticks):
        if uplink.backlog == 0 and broker.in_flight == 0:
            return
        clock.advance(1)
        uplink.step()
        broker.run_until_idle()
    raise AssertionError(f"not drained after {max_ticks} ticks: backlog {uplink.backlog}")


@pytest.mark.parametrize(
    "faults",
    [
        Faults(drop=0.3, seed=1),
        Faults(duplicate=0.5, seed=2),
        Faults(reorder=0.5, duplicate=0.3, seed=3),
        Faults(drop=0.2, duplicate=0.2, reorder=0.3, delay_s=2.0, seed=4),
    ],
    ids=["drop", "duplicate", "reorder", "all"],
)
def test_store_equals_the_pump_log_despite_faults(
    faults: Faults, tmp_path: Path, clock: ManualClock, store: Store
) -> None:
    broker = InProcessBroker(faults=faults, clock=clock)
    IngestSubscriber(broker.server_endpoint(), store.commit).start()
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 300, alarm_every=7)
    uplink = Uplink(
        outbox=Outbox(tmp_path / "o.db", pump=PUMP),
        transport=broker.pump_endpoint(PUMP),
        clock=clock,
        batch_size=25,
        ack_timeout_s=5,
    )
    uplink.take(log)
    uplink.start()

    _drive(broker, uplink, clock)

    assert store.rows == store.expected(list(log))
    assert store.order == sorted(store.order)


def test_faults_happen_and_are_reproducible_from_the_seed() -> None:
    def run() -> tuple[int, int, list[int]]:
        broker = InProcessBroker(faults=Faults(drop=0.2, duplicate=0.2, reorder=0.5, seed=9))
        received = _collect(broker.server_endpoint())
        pump = broker.pump_endpoint(PUMP)
        pump.start(lambda e: None, lambda up: None)
        log = EventLog(PUMP)
        vitals_every_minute(log, ManualClock(), 100)
        for event in log:
            pump.send(events_message(PUMP, [EventRecord.from_event(event)]))
        broker.run_until_idle()
        seqs = [int(e.body["events"][0]["seq"]) for e in received if e.kind is Kind.EVENTS]
        return broker.stats.dropped, broker.stats.duplicated, seqs

    first, second = run(), run()
    assert first == second
    dropped, duplicated, seqs = first
    assert dropped > 0 and duplicated > 0
    assert seqs != sorted(seqs)
    assert len(seqs) == 100 - dropped + duplicated


def test_delayed_message_waits_for_the_clock(clock: ManualClock) -> None:
    broker = InProcessBroker(faults=Faults(delay_s=5), clock=clock)
    received = _collect(broker.server_endpoint())
    pump = broker.pump_endpoint(PUMP)
    pump.start(lambda e: None, lambda up: None)
    clock.advance(5)
    broker.run_until_idle()
    received.clear()
    pump.send(hello_message(PUMP, next_seq=1, acked_seq=0))

    broker.deliver()
    assert received == []
    clock.advance(5)
    broker.deliver()
    assert [e.kind for e in received] == [Kind.HELLO]


def test_messages_for_an_offline_pump_wait_for_its_return() -> None:
    broker = InProcessBroker()
    server = broker.server_endpoint()
    _collect(server)
    pump = broker.pump_endpoint(PUMP)
    received = _collect(pump)
    pump.set_link(False)

    server.send(ack_message(PUMP, 3))
    broker.run_until_idle()
    assert received == []
    pump.set_link(True)
    broker.run_until_idle()
    assert [e.kind for e in received] == [Kind.ACK]


def test_losing_the_link_publishes_the_last_will() -> None:
    broker = InProcessBroker()
    pump = broker.pump_endpoint(PUMP)
    _collect(pump)
    assert broker.status(PUMP) is PumpState.ONLINE
    pump.set_link(False)
    assert broker.status(PUMP) is PumpState.OFFLINE


def test_send_while_offline_returns_false_and_sends_nothing() -> None:
    broker = InProcessBroker()
    pump = broker.pump_endpoint(PUMP)
    _collect(pump)
    pump.set_link(False)
    accepted = broker.stats.accepted
    assert pump.send(hello_message(PUMP, next_seq=1, acked_seq=0)) is False
    assert broker.stats.accepted == accepted


def test_pump_may_not_send_server_messages_nor_speak_for_another_pump() -> None:
    broker = InProcessBroker()
    pump = broker.pump_endpoint(PUMP)
    with pytest.raises(MessageError) as direction:
        pump.send(ack_message(PUMP, 1))
    with pytest.raises(MessageError) as impersonation:
        pump.send(hello_message("pump-2", next_seq=1, acked_seq=0))
    assert (direction.value.code, impersonation.value.code) == ("message.direction", "message.pump_mismatch")


def test_malformed_bytes_are_counted_not_delivered() -> None:
    broker = InProcessBroker()
    server = broker.server_endpoint()
    received = _collect(server)
    server.receive(b"\xff\xfe")
    server.receive(b'{"v":2,"kind":"ack","pump":"p","body":{}}')
    assert received == []
    assert server.rejected == 2


def test_two_server_replicas_split_the_uplink_and_lose_nothing() -> None:
    broker = InProcessBroker()
    first, second = _collect(broker.server_endpoint()), _collect(broker.server_endpoint())
    pump = broker.pump_endpoint(PUMP)
    pump.start(lambda e: None, lambda up: None)
    for seq in range(1, 21):
        pump.send(hello_message(PUMP, next_seq=seq, acked_seq=0))
    broker.run_until_idle()
    got_first, got_second = _hello_seqs(first), _hello_seqs(second)
    assert got_first and got_second
    assert got_first | got_second == set(range(1, 21))
    assert not got_first & got_second


def _hello_seqs(received: list[Envelope]) -> set[int]:
    return {int(e.body["next_seq"]) for e in received if e.kind is Kind.HELLO}


def test_fault_probabilities_outside_zero_to_one_are_refused() -> None:
    with pytest.raises(ValueError, match="drop"):
        Faults(drop=1.5)
