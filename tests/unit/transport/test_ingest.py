"""The server-side ingest helper: acks a batch only after commit returned True (sync or async)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator

import pytest

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog
from smartpump.transport.inprocess import InProcessBroker
from smartpump.transport.messages import Envelope, EventRecord, Kind, events_message, hello_message
from smartpump.transport.mqtt import Commit, IngestSubscriber, MqttSettings, TlsOptions
from tests.unit.transport.helpers import vitals_every_minute

PUMP = "pump-1"


def _run(
    commit: Commit, *, loop: asyncio.AbstractEventLoop | None = None
) -> tuple[list[Envelope], list[Envelope]]:
    """Send one batch and one hello through a broker; returns (messages the pump got, others)."""
    broker = InProcessBroker()
    others: list[Envelope] = []
    IngestSubscriber(broker.server_endpoint(), commit, on_other=others.append, loop=loop).start()
    pump = broker.pump_endpoint(PUMP)
    received: list[Envelope] = []
    pump.start(received.append, lambda up: None)
    log = EventLog(PUMP)
    vitals_every_minute(log, ManualClock(), 4)
    pump.send(hello_message(PUMP, next_seq=5, acked_seq=0))
    pump.send(events_message(PUMP, [EventRecord.from_event(e) for e in log]))
    broker.run_until_idle()
    return received, others


def _acks(received: list[Envelope]) -> list[int]:
    return [int(e.body["upto_seq"]) for e in received if e.kind is Kind.ACK]


def test_sync_commit_true_is_acked_with_the_last_seq() -> None:
    received, others = _run(lambda pump, records: True)
    assert _acks(received) == [4]
    assert [e.kind for e in others if e.kind is Kind.HELLO] == [Kind.HELLO]


def test_sync_commit_false_is_not_acked() -> None:
    received, _ = _run(lambda pump, records: False)
    assert _acks(received) == []


def test_commit_that_raises_is_not_acked() -> None:
    def broken(pump: str, records: tuple[EventRecord, ...]) -> bool:
        raise RuntimeError("database is down")

    received, _ = _run(broken)
    assert _acks(received) == []


def test_async_commit_is_awaited_before_the_ack() -> None:
    committed: list[int] = []

    async def commit(pump: str, records: tuple[EventRecord, ...]) -> bool:
        await asyncio.sleep(0)
        committed.extend(r.seq for r in records)
        return True

    received, _ = _run(commit)
    assert committed == [1, 2, 3, 4]
    assert _acks(received) == [4]


@pytest.fixture
def running_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread, as the server's would be."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def test_async_commit_runs_on_the_given_loop(running_loop: asyncio.AbstractEventLoop) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def commit(pump: str, records: tuple[EventRecord, ...]) -> bool:
        loops.append(asyncio.get_running_loop())
        return False

    received, _ = _run(commit, loop=running_loop)
    assert loops == [running_loop]
    assert _acks(received) == []


def test_settings_from_url_take_credentials_and_port() -> None:
    settings = MqttSettings.from_url("mqtt://pump%2D1:s%40cret@broker.local:1884")
    assert (settings.host, settings.port, settings.username, settings.password) == (
        "broker.local",
        1884,
        "pump-1",
        "s@cret",
    )
    assert settings.tls is None


def test_mqtts_url_means_tls_on_8883() -> None:
    settings = MqttSettings.from_url("mqtts://broker.local")
    assert settings.port == 8883
    assert settings.tls == TlsOptions()


def test_tls_context_verifies_the_broker_with_tls12_or_newer() -> None:
    context = TlsOptions().context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("url", ["http://broker", "mqtt://", "broker:1883"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="mqtt"):
        MqttSettings.from_url(url)
