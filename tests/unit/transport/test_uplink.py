"""The pump-side uplink: offline for a day then everything once and in order; restarts; signed commands."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from smartpump.clock import ManualClock
from smartpump.library import signing
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore
from smartpump.pump import Pump, PumpModel
from smartpump.pump.events import EventLog, EventType
from smartpump.transport.commands import (
    INSTALL_LIBRARY,
    Command,
    install_library_args,
    sign_command,
    signed_library_of,
)
from smartpump.transport.inprocess import InProcessBroker, InProcessTransport
from smartpump.transport.messages import Envelope, EventRecord, Kind, ack_message, command_message
from smartpump.transport.mqtt import IngestSubscriber
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import CommandPolicy, CommandRefusal, Uplink, ack_wait_s
from tests.factories import make_library
from tests.unit.transport.helpers import Store, vitals_every_minute

PUMP = "pump-1"
PRIVATE, PUBLIC = signing.generate_keypair()
LIBRARY_PRIVATE, LIBRARY_PUBLIC = signing.generate_keypair()
TRUST = TrustStore(
    [
        TrustedKey(key_id="server-1", purpose=KeyPurpose.COMMAND, public_pem=PUBLIC),
        TrustedKey(key_id="pharmacy-1", purpose=KeyPurpose.LIBRARY, public_pem=LIBRARY_PUBLIC),
    ]
)


def _drive(broker: InProcessBroker, uplink: Uplink, clock: ManualClock, *, max_ticks: int = 5000) -> int:
    """Tick virtual seconds until the outbox is empty; returns the ticks it took."""
    for tick in range(max_ticks):
        if uplink.backlog == 0 and broker.in_flight == 0:
            return tick
        clock.advance(1)
        uplink.step()
        broker.run_until_idle()
    raise AssertionError(f"not drained after {max_ticks} ticks: backlog {uplink.backlog}")


def _server(broker: InProcessBroker, store: Store) -> tuple[InProcessTransport, list[Envelope]]:
    others: list[Envelope] = []
    endpoint = broker.server_endpoint()
    IngestSubscriber(endpoint, store.commit, on_other=others.append).start()
    return endpoint, others


def test_offline_for_a_day_then_everything_arrives_once_in_order(
    tmp_path: Path, clock: ManualClock, store: Store
) -> None:
    broker = InProcessBroker(clock=clock)
    _server(broker, store)
    pump_link = broker.pump_endpoint(PUMP)
    uplink = Uplink(outbox=Outbox(tmp_path / "o.db", pump=PUMP), transport=pump_link, clock=clock)
    uplink.start()
    pump_link.set_link(False)
    log = EventLog(PUMP)

    for _ in range(24):
        vitals_every_minute(log, clock, 60, alarm_every=30)
        uplink.take(log)
        uplink.step()
        broker.run_until_idle()
    assert store.rows == {}
    assert uplink.backlog == len(log) == 24 * 62

    pump_link.set_link(True)
    _drive(broker, uplink, clock)

    assert store.rows == store.expected(list(log))
    assert store.order == [(PUMP, e.seq) for e in log]
    assert uplink.stats.batches_resent == 0


def test_taking_events_while_offline_never_touches_the_link(tmp_path: Path, clock: ManualClock) -> None:
    broker = InProcessBroker(clock=clock)
    pump_link = broker.pump_endpoint(PUMP)
    uplink = Uplink(outbox=Outbox(tmp_path / "o.db", pump=PUMP), transport=pump_link, clock=clock)
    uplink.start()
    pump_link.set_link(False)
    accepted = broker.stats.accepted
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 10)

    assert uplink.take(log) == 10
    assert uplink.take(log) == 0
    assert uplink.step() is False
    assert broker.stats.accepted == accepted
    assert uplink.backlog == 10


def test_reconnect_says_hello_with_the_acked_seq(tmp_path: Path, clock: ManualClock, store: Store) -> None:
    broker = InProcessBroker(clock=clock)
    _, others = _server(broker, store)
    pump_link = broker.pump_endpoint(PUMP)
    uplink = Uplink(outbox=Outbox(tmp_path / "o.db", pump=PUMP), transport=pump_link, clock=clock)
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 5)
    uplink.take(log)
    uplink.start()
    _drive(broker, uplink, clock)
    pump_link.set_link(False)
    pump_link.set_link(True)
    broker.run_until_idle()

    hellos = [e.body for e in others if e.kind is Kind.HELLO]
    assert hellos[-1] == {"next_seq": 6, "acked_seq": 5}


def test_restart_resends_only_what_was_not_acked(tmp_path: Path, clock: ManualClock, store: Store) -> None:
    batches: list[tuple[int, int]] = []

    def commit(pump: str, records: tuple[EventRecord, ...]) -> bool:
        batches.append((records[0].seq, records[-1].seq))
        return store.commit(pump, records)

    broker = InProcessBroker(clock=clock)
    IngestSubscriber(broker.server_endpoint(), commit).start()
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 30)
    first_link = broker.pump_endpoint(PUMP)
    outbox = Outbox(tmp_path / "o.db", pump=PUMP)
    first = Uplink(outbox=outbox, transport=first_link, clock=clock, batch_size=10)
    first.take(log)
    first.start()
    broker.deliver()
    broker.deliver()
    first_link.set_link(False)
    outbox.close()

    reopened = Outbox(tmp_path / "o.db", pump=PUMP)
    assert reopened.acked_seq == 10
    second = Uplink(outbox=reopened, transport=broker.pump_endpoint(PUMP), clock=clock, batch_size=10)
    assert second.take(log) == 0
    batches.clear()
    second.start()
    _drive(broker, second, clock)

    assert store.rows == store.expected(list(log))
    assert min(first for first, _ in batches) == 11


def _three_events_sent(
    tmp_path: Path, clock: ManualClock, commit: Callable[[str, tuple[EventRecord, ...]], bool]
) -> tuple[InProcessBroker, Uplink, EventLog]:
    """A pump with three events sent once (ack timeout 10 s) to a server that stores through ``commit``."""
    broker = InProcessBroker(clock=clock)
    IngestSubscriber(broker.server_endpoint(), commit).start()
    uplink = Uplink(
        outbox=Outbox(tmp_path / "o.db", pump=PUMP),
        transport=broker.pump_endpoint(PUMP),
        clock=clock,
        ack_timeout_s=10,
    )
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 3)
    uplink.take(log)
    uplink.start()
    broker.run_until_idle()
    return broker, uplink, log


def test_batch_not_committed_is_resent_after_the_ack_timeout(
    tmp_path: Path, clock: ManualClock, store: Store
) -> None:
    attempts: list[int] = []

    def commit_second_time(pump: str, records: tuple[EventRecord, ...]) -> bool:
        attempts.append(len(records))
        return len(attempts) > 1 and store.commit(pump, records)

    broker, uplink, log = _three_events_sent(tmp_path, clock, commit_second_time)
    assert attempts == [3] and uplink.backlog == 3

    clock.advance(9)
    assert uplink.step() is False
    clock.advance(1)
    assert uplink.step() is True
    broker.run_until_idle()

    assert uplink.backlog == 0
    assert store.rows == store.expected(list(log))
    assert uplink.stats.batches_resent == 1


def test_each_resend_of_an_unacknowledged_batch_waits_twice_as_long_up_to_the_cap(
    tmp_path: Path, clock: ManualClock, store: Store
) -> None:
    """A server that stays behind (no ack) gets the batch again after 10, 20, 40, 80, 80 s, not every 10 s;
    the ack resets the wait for the next batch."""
    behind = True
    sent_at: list[float] = []

    def commit_when_caught_up(pump: str, records: tuple[EventRecord, ...]) -> bool:
        sent_at.append(clock.monotonic_s())
        return not behind and store.commit(pump, records)

    broker, uplink, log = _three_events_sent(tmp_path, clock, commit_when_caught_up)
    first_s = clock.monotonic_s()
    for _ in range(300):
        clock.advance(1)
        uplink.step()
        broker.run_until_idle()
    assert [t - first_s for t in sent_at] == [0, 10, 30, 70, 150, 230]
    assert [ack_wait_s(10, n) for n in range(6)] == [10, 20, 40, 80, 80, 80]
    assert uplink.stats.batches_resent == 5 and uplink.backlog == 3

    behind = False
    clock.advance(80)
    uplink.step()
    broker.run_until_idle()
    assert uplink.backlog == 0 and store.rows == store.expected(list(log))
    vitals_every_minute(log, clock, 2)
    uplink.take(log)
    behind = True
    uplink.step()
    broker.run_until_idle()
    resent_from_s = clock.monotonic_s()
    clock.advance(10)
    assert uplink.step() is True, "the next batch waits one timeout again"
    assert clock.monotonic_s() - resent_from_s == 10


def test_ack_ahead_of_the_outbox_is_counted_and_ignored(tmp_path: Path, clock: ManualClock) -> None:
    broker = InProcessBroker(clock=clock)
    server = broker.server_endpoint()
    server.start(lambda e: None, lambda up: None)
    uplink = Uplink(
        outbox=Outbox(tmp_path / "o.db", pump=PUMP), transport=broker.pump_endpoint(PUMP), clock=clock
    )
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 2)
    uplink.take(log)
    uplink.start()
    server.send(ack_message(PUMP, 99))
    broker.run_until_idle()
    assert uplink.stats.bad_acks == 1
    assert uplink.backlog == 2


def test_an_ack_of_events_kept_but_never_sent_deletes_nothing(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15: forged acks while the server was down made pumps delete 40 unsent events."""
    broker = InProcessBroker(clock=clock)
    server = broker.server_endpoint()
    server.start(lambda e: None, lambda up: None)
    pump_link = broker.pump_endpoint(PUMP)
    uplink = Uplink(
        outbox=Outbox(tmp_path / "o.db", pump=PUMP), transport=pump_link, clock=clock, batch_size=10
    )
    uplink.start()
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 40)
    uplink.take(log)
    assert uplink.step() is True
    broker.run_until_idle()
    kept = uplink.backlog
    first_batch_upto = 10
    assert kept == len(log) == 40 and uplink.stats.batches_sent == 1

    server.send(ack_message(PUMP, len(log)))
    broker.run_until_idle()

    assert uplink.backlog == kept
    assert uplink.stats.bad_acks == 1 and uplink.stats.acks == 0
    assert "uplink.ack_unsent" in caplog.text

    server.send(ack_message(PUMP, first_batch_upto))
    broker.run_until_idle()
    assert uplink.stats.acks == 1
    assert uplink.backlog == kept - first_batch_upto


class _PumpSide:
    """What the pump application hands the uplink: it runs accepted commands and logs refusals."""

    def __init__(self, pump: Pump | None = None) -> None:
        self.accepted: list[Command] = []
        self.refused: list[CommandRefusal] = []
        self.pump = pump

    def on_command(self, command: Command) -> None:
        self.accepted.append(command)
        if self.pump is not None and command.command == INSTALL_LIBRARY:
            self.pump.install_library(signed_library_of(command), TRUST)

    def policy(self) -> CommandPolicy:
        return CommandPolicy(trust=lambda: TRUST, on_command=self.on_command, on_refused=self.refused.append)


def _command(clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "pump_id": PUMP,
        "command": "config.set",
        "args": {"kvo_rate_ml_per_h": "1"},
        "issued_at": clock.now(),
        "expires_at": clock.now() + timedelta(minutes=5),
        "nonce": "n-1",
        "counter": 1,
        "private_key_pem": PRIVATE,
        "key_id": "server-1",
    }
    fields.update(overrides)
    return sign_command(**fields).to_dict()


def _command_rig(
    tmp_path: Path, clock: ManualClock, side: _PumpSide
) -> tuple[InProcessBroker, InProcessTransport, list[Envelope], Uplink]:
    broker = InProcessBroker(clock=clock)
    results: list[Envelope] = []
    server = broker.server_endpoint()
    server.start(results.append, lambda up: None)
    uplink = Uplink(
        outbox=Outbox(tmp_path / "o.db", pump=PUMP),
        transport=broker.pump_endpoint(PUMP),
        clock=clock,
        commands=side.policy(),
    )
    uplink.start()
    broker.run_until_idle()
    return broker, server, results, uplink


def _results(received: list[Envelope]) -> list[tuple[bool, str | None]]:
    return [(e.body["ok"], e.body["code"]) for e in received if e.kind is Kind.COMMAND_RESULT]


def test_valid_command_reaches_the_pump_and_is_answered(tmp_path: Path, clock: ManualClock) -> None:
    side = _PumpSide()
    broker, server, results, _ = _command_rig(tmp_path, clock, side)
    server.send(command_message(PUMP, _command(clock)))
    broker.run_until_idle()
    assert [c.nonce for c in side.accepted] == ["n-1"]
    assert _results(results) == [(True, None)]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"private_key_pem": signing.generate_keypair()[0]}, "command.forged"),
        ({"pump_id": "pump-2"}, "command.foreign"),
        (
            {
                "issued_at": ManualClock().now() - timedelta(hours=2),
                "expires_at": ManualClock().now() - timedelta(hours=1),
            },
            "command.expired",
        ),
    ],
    ids=["forged", "foreign", "expired"],
)
def test_refused_command_is_answered_and_reported_to_the_pump(
    overrides: dict[str, Any], code: str, tmp_path: Path, clock: ManualClock
) -> None:
    side = _PumpSide()
    broker, server, results, _ = _command_rig(tmp_path, clock, side)
    server.send(command_message(PUMP, _command(clock, **overrides)))
    broker.run_until_idle()
    assert side.accepted == []
    assert [(r.code, r.nonce, r.command) for r in side.refused] == [(code, "n-1", "config.set")]
    assert _results(results) == [(False, code)]


def test_malformed_command_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    side = _PumpSide()
    broker, server, results, _ = _command_rig(tmp_path, clock, side)
    server.send(command_message(PUMP, {"format": "nonsense"}))
    broker.run_until_idle()
    assert [r.code for r in side.refused] == ["command.malformed"]
    assert _results(results) == [(False, "command.malformed")]


def test_replay_after_a_pump_restart_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    side = _PumpSide()
    broker, server, results, _ = _command_rig(tmp_path, clock, side)
    command = _command(clock)
    server.send(command_message(PUMP, command))
    broker.run_until_idle()
    assert _results(results) == [(True, None)]

    restarted = _PumpSide()
    broker2, server2, results2, _ = _command_rig(tmp_path, clock, restarted)
    server2.send(command_message(PUMP, command))
    broker2.run_until_idle()

    assert [r.code for r in restarted.refused] == ["command.replayed"]
    assert _results(results2) == [(False, "command.replayed")]


def test_library_rollback_by_command_is_refused_by_the_pump(tmp_path: Path, clock: ManualClock) -> None:
    pump = Pump(PUMP, PumpModel.LVP, clock, library=make_library(version=5))
    side = _PumpSide(pump)
    broker, server, results, _ = _command_rig(tmp_path, clock, side)
    old = signing.sign(make_library(version=4), LIBRARY_PRIVATE, "pharmacy-1")
    server.send(
        command_message(PUMP, _command(clock, command=INSTALL_LIBRARY, args=install_library_args(old)))
    )
    broker.run_until_idle()

    assert _results(results) == [(False, "signature.rollback")]
    rejected = pump.events.of_type(EventType.LIBRARY_REJECTED)
    assert [e.data["code"] for e in rejected] == ["signature.rollback"]
    assert pump.library is not None and pump.library.version == 5


def test_commands_are_refused_when_the_pump_takes_none(tmp_path: Path, clock: ManualClock) -> None:
    broker = InProcessBroker(clock=clock)
    results: list[Envelope] = []
    server = broker.server_endpoint()
    server.start(results.append, lambda up: None)
    Uplink(
        outbox=Outbox(tmp_path / "o.db", pump=PUMP), transport=broker.pump_endpoint(PUMP), clock=clock
    ).start()
    server.send(command_message(PUMP, _command(clock)))
    broker.run_until_idle()
    assert _results(results) == [(False, "command.unsupported")]


def test_comms_thread_sends_what_therapy_recorded_meanwhile(tmp_path: Path, clock: ManualClock) -> None:
    broker = InProcessBroker(clock=clock)
    pump_link = broker.pump_endpoint(PUMP)
    uplink = Uplink(outbox=Outbox(tmp_path / "o.db", pump=PUMP), transport=pump_link, clock=clock)
    uplink.start()
    accepted = broker.stats.accepted
    stop = threading.Event()
    comms = threading.Thread(target=uplink.run, args=(stop,), kwargs={"interval_s": 0.01})
    comms.start()
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 3)
    uplink.take(log)
    deadline = time.monotonic() + 5
    while broker.stats.accepted == accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    comms.join(timeout=5)
    assert broker.stats.accepted > accepted
    assert not comms.is_alive()
