"""The MQTT 5 transport against the real broker (SMARTPUMP_TEST_MQTT_URL, default mqtt://127.0.0.1:1883).

An unreachable broker fails these tests (never skips). Each test uses its own topic prefix and client ids
so parallel runs do not collide, and every wait is bounded.
"""

from __future__ import annotations

import itertools
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog
from smartpump.transport.messages import (
    Envelope,
    EventRecord,
    Kind,
    PumpState,
    Topics,
    ack_message,
    command_message,
    decode,
    events_message,
)
from smartpump.transport.mqtt import (
    RECV_BYTES,
    BurstReadingClient,
    IngestSubscriber,
    MqttSettings,
    MqttTransport,
)
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import Uplink
from tests.integration.mqtt_broker import BROKER_URL, reachable_broker
from tests.unit.transport.helpers import Store, vitals_every_minute
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt

WAIT_S = 5.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker_url() -> str:
    """The broker address, checked reachable (unreachable fails, under CI and elsewhere)."""
    reachable_broker()
    return BROKER_URL


@pytest.fixture
def settings(broker_url: str) -> Iterator[MqttSettings]:
    """Settings with a topic prefix unique to this test; retained statuses are cleared afterwards."""
    run = uuid.uuid4().hex[:12]
    configured = MqttSettings.from_url(
        broker_url, topics=Topics(f"smartpump-test/{run}/v1"), session_expiry_s=60
    )
    yield configured
    _clear_retained(configured)


@pytest.fixture
def opened() -> Iterator[list[MqttTransport]]:
    """Transports a test opens; all are closed at its end."""
    transports: list[MqttTransport] = []
    yield transports
    for transport in transports:
        transport.close()


def _uid(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:10]}"


def _server(settings: MqttSettings, opened: list[MqttTransport], group: str, commit: Store) -> MqttTransport:
    transport = MqttTransport.for_server(settings, client_id=_uid("server"), group=group)
    opened.append(transport)
    IngestSubscriber(transport, commit.commit).start()
    assert transport.wait_ready(WAIT_S), "server did not connect and subscribe"
    return transport


def _pump(
    settings: MqttSettings, opened: list[MqttTransport], pump: str, received: list[Envelope], client_id: str
) -> MqttTransport:
    transport = MqttTransport.for_pump(pump, settings, client_id=client_id)
    opened.append(transport)
    transport.start(received.append, lambda up: None)
    assert transport.wait_ready(WAIT_S), "pump did not connect and subscribe"
    return transport


@contextmanager
def _watching(settings: MqttSettings, topic: str) -> Iterator[list[paho.MQTTMessage]]:
    """The messages the broker routes to ``topic`` (subscribed at QoS 1) while the block runs (subscribed
    before it starts)."""
    messages: list[paho.MQTTMessage] = []
    subscribed: list[int] = []
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=_uid("watcher"),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_message = lambda c, u, m: messages.append(m)
    client.on_subscribe = lambda c, u, mid, codes, props: subscribed.append(mid)
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        _, mid = client.subscribe(topic, qos=1)
        wait_until(lambda: mid in subscribed, "the watcher's subscription")
        yield messages
    finally:
        client.disconnect()
        client.loop_stop()


def _clear_retained(settings: MqttSettings) -> None:
    """Empty every retained message under the test's prefix (status topics)."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=_uid("cleaner"),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    topics: set[str] = set()
    client.on_message = lambda c, u, m: topics.add(m.topic) if m.retain else None
    client.connect(settings.host, settings.port)
    client.subscribe(settings.topics.all_pumps("status"), qos=1)
    client.loop_start()
    time.sleep(0.3)
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout=2)
    client.disconnect()
    client.loop_stop()


def test_batches_round_trip_with_qos1_and_acks(
    settings: MqttSettings, opened: list[MqttTransport], tmp_path: Path
) -> None:
    store = Store()
    _server(settings, opened, _uid("group"), store)
    pump = _uid("pump")
    clock = ManualClock()
    log = EventLog(pump)
    vitals_every_minute(log, clock, 100, alarm_every=9)
    link = MqttTransport.for_pump(pump, settings, client_id=_uid("client"))
    opened.append(link)
    uplink = Uplink(outbox=Outbox(tmp_path / "o.db", pump=pump), transport=link, clock=clock, batch_size=25)
    uplink.take(log)
    uplink.start()

    wait_until(lambda: uplink.backlog == 0, "every batch acknowledged")

    assert store.rows == store.expected(list(log))
    assert store.order == [(pump, e.seq) for e in log]


def test_duplicate_deliveries_are_stored_once_and_acked_each_time(
    settings: MqttSettings, opened: list[MqttTransport]
) -> None:
    store = Store()
    _server(settings, opened, _uid("group"), store)
    pump = _uid("pump")
    received: list[Envelope] = []
    link = _pump(settings, opened, pump, received, _uid("client"))
    log = EventLog(pump)
    vitals_every_minute(log, ManualClock(), 10)
    batch = events_message(pump, [EventRecord.from_event(e) for e in log])

    for _ in range(3):
        assert link.send(batch)

    wait_until(lambda: len([e for e in received if e.kind is Kind.ACK]) == 3, "three acks")
    assert store.deliveries == 3
    assert store.rows == store.expected(list(log))
    assert {e.body["upto_seq"] for e in received if e.kind is Kind.ACK} == {10}


_DYING_PUMP = """
import sys, time
from smartpump.transport.messages import Topics
from smartpump.transport.mqtt import MqttSettings, MqttTransport
settings = MqttSettings.from_url(sys.argv[1], topics=Topics(sys.argv[2]), keepalive_s=5)
link = MqttTransport.for_pump(sys.argv[3], settings, client_id=sys.argv[4])
link.start(lambda e: None, lambda up: None)
print("ready" if link.wait_ready(5) else "failed", flush=True)
time.sleep(30)
"""


def test_last_will_says_offline_when_a_pump_process_dies(
    settings: MqttSettings, opened: list[MqttTransport]
) -> None:
    statuses: list[Envelope] = []
    watcher = MqttTransport.for_server(settings, client_id=_uid("watcher"), group=_uid("group"))
    opened.append(watcher)
    watcher.start(lambda e: statuses.append(e) if e.kind is Kind.STATUS else None, lambda up: None)
    assert watcher.wait_ready(WAIT_S)
    pump = _uid("pump")
    with subprocess.Popen(
        [sys.executable, "-c", _DYING_PUMP, BROKER_URL, settings.topics.prefix, pump, _uid("client")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            wait_until(
                lambda: any(s.pump == pump and s.body["state"] == "online" for s in statuses), "online status"
            )
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=WAIT_S)
            wait_until(
                lambda: statuses[-1].pump == pump and statuses[-1].body["state"] == "offline", "the last will"
            )
        finally:
            process.kill()

    late: list[Envelope] = []
    latecomer = MqttTransport.for_server(settings, client_id=_uid("latecomer"), group=_uid("group"))
    opened.append(latecomer)
    latecomer.start(late.append, lambda up: None)
    wait_until(lambda: any(e.kind is Kind.STATUS for e in late), "the retained status")
    assert [e.body["state"] for e in late if e.kind is Kind.STATUS] == [PumpState.OFFLINE.value]


def test_persistent_session_delivers_commands_queued_while_offline(
    settings: MqttSettings, opened: list[MqttTransport]
) -> None:
    server = MqttTransport.for_server(settings, client_id=_uid("server"), group=_uid("group"))
    opened.append(server)
    server.start(lambda e: None, lambda up: None)
    assert server.wait_ready(WAIT_S)
    pump, client_id = _uid("pump"), _uid("client")
    first: list[Envelope] = []
    _pump(settings, opened, pump, first, client_id).close()

    commands = [command_message(pump, {"queued": str(n)}) for n in range(3)]
    with _watching(settings, settings.topics.commands(pump)) as routed:
        for command in commands:
            assert server.send(command)
        wait_until(lambda: len(routed) == 3, "the broker to route the commands while the pump is away")

    again: list[Envelope] = []
    _pump(settings, opened, pump, again, client_id)
    wait_until(lambda: len([e for e in again if e.kind is Kind.COMMAND]) == 3, "the queued commands")
    assert [e for e in again if e.kind is Kind.COMMAND] == commands
    assert first == []


def test_acks_go_at_qos0_and_commands_at_qos1(settings: MqttSettings, opened: list[MqttTransport]) -> None:
    """An ack answers a QoS 1 batch and a lost one costs a resend stored once, so it does not wait in the
    server's window of messages in flight for a PUBACK queued behind everything the broker has for it."""
    server = MqttTransport.for_server(settings, client_id=_uid("server"), group=_uid("group"))
    opened.append(server)
    server.start(lambda e: None, lambda up: None)
    assert server.wait_ready(WAIT_S)
    pump = _uid("pump")
    with (
        _watching(settings, settings.topics.ack(pump)) as acks,
        _watching(settings, settings.topics.commands(pump)) as commands,
    ):
        assert server.send(ack_message(pump, 7))
        assert server.send(command_message(pump, {"n": "1"}))
        wait_until(lambda: len(acks) == 1 and len(commands) == 1, "the ack and the command routed")
    assert [m.qos for m in acks] == [0]
    assert [m.qos for m in commands] == [1]
    assert decode(bytes(acks[0].payload)) == ack_message(pump, 7)


def test_the_network_thread_reads_every_waiting_packet_per_wake_up(settings: MqttSettings) -> None:
    """paho reads one packet per wake-up when nothing of its own is in flight; the transport's client reads
    all that wait (up to READ_BURST), here 60 messages in one ``loop_read``."""
    topic = settings.topics.events(_uid("pump"))
    received: list[bytes] = []
    subscribed: list[int] = []
    client = BurstReadingClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=_uid("reader"),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_message = lambda c, u, m: received.append(bytes(m.payload))
    client.on_subscribe = lambda c, u, mid, codes, props: subscribed.append(mid)
    client.connect(settings.host, settings.port)
    try:
        _, mid = client.subscribe(topic, qos=0)
        wait_until(lambda: client.loop(timeout=0.05) == 0 and mid in subscribed, "the reader's subscription")
        payloads = [b"message-%02d" % n for n in range(59)] + [b"last"]
        _publish_all(settings, topic, payloads)
        sock = client.socket()
        assert isinstance(sock, socket.socket)
        wait_until(lambda: b"last" in _peek(sock), "all 60 messages waiting on the reader's socket")
        assert client.loop_read() == 0
        assert received[-60:] == payloads
    finally:
        client.disconnect()


def _burst_client(settings: MqttSettings, name: str) -> BurstReadingClient:
    """A connected transport client with its network thread running."""
    client = BurstReadingClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=_uid(name),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.connect(settings.host, settings.port)
    client.loop_start()
    wait_until(client.is_connected, f"the {name} connected")
    return client


def _subscribed(client: BurstReadingClient, topic: str) -> None:
    done: list[int] = []
    client.on_subscribe = lambda c, u, mid, codes, props: done.append(mid)
    _, mid = client.subscribe(topic, qos=1)
    wait_until(lambda: mid in done, f"the subscription to {topic}")


def test_messages_of_every_size_arrive_whole_and_in_order(settings: MqttSettings) -> None:
    """The reader's large reads hold many packets, or part of one: from empty to five times a read."""
    topic = settings.topics.events(_uid("pump"))
    sizes = [0, 1, 127, 128, 2047, 2048, RECV_BYTES - 1, RECV_BYTES, RECV_BYTES + 1, 5 * RECV_BYTES]
    rng = random.Random(14)
    sizes += [rng.choice([rng.randrange(1, 400), rng.randrange(1, 3 * RECV_BYTES)]) for _ in range(150)]
    payloads = [rng.randbytes(size) for size in sizes]
    received: list[bytes] = []
    reader = _burst_client(settings, "reader")
    reader.on_message = lambda c, u, m: received.append(bytes(m.payload))
    try:
        _subscribed(reader, topic)
        _publish_all(settings, topic, payloads)
        wait_until(lambda: len(received) >= len(payloads), f"{len(payloads)} messages")
        assert received == payloads
    finally:
        reader.disconnect()
        reader.loop_stop()


def test_packets_queued_by_callbacks_and_by_other_threads_all_go_out_in_order(settings: MqttSettings) -> None:
    """Replies published from the network thread's callback (as an ack to a batch) and messages two other
    threads publish at the same time (as acks and commands from ingest) all reach the broker, each thread's
    in its order per QoS (paho holds QoS 1 messages beyond its window, QoS 0 ones it sends), although
    only the first packet queued while none waits wakes the thread."""
    run = _uid("echo")
    asks, replies, told = (f"{settings.topics.prefix}/{run}/{leaf}" for leaf in ("ask", "reply", "told"))
    echo = _burst_client(settings, "echo")

    def answer(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        client.publish(replies, message.payload, qos=1)

    echo.on_message = answer
    heard: dict[str, list[bytes]] = {asks: [], replies: [], told: []}
    watcher = _burst_client(settings, "watcher")
    watcher.on_message = lambda c, u, m: heard[m.topic].append(bytes(m.payload))
    try:
        _subscribed(echo, asks)
        _subscribed(watcher, f"{settings.topics.prefix}/{run}/+")

        def tell(thread: str) -> None:
            for n in range(400):
                echo.publish(told, f"{thread}-{n}".encode(), qos=n % 2)

        tellers = [threading.Thread(target=tell, args=(name,)) for name in ("a", "b")]
        for teller in tellers:
            teller.start()
        questions = [b"q%03d" % n for n in range(300)]
        _publish_all(settings, asks, questions)
        for teller in tellers:
            teller.join()
        wait_until(lambda: len(heard[replies]) >= 300 and len(heard[told]) >= 800, "every reply and message")
        assert heard[replies] == questions
        for thread, qos in itertools.product(("a", "b"), (0, 1)):
            mine = [
                m.decode() for m in heard[told] if m.startswith(thread.encode()) and int(m[2:]) % 2 == qos
            ]
            assert mine == [f"{thread}-{n}" for n in range(qos, 400, 2)]
    finally:
        for client in (echo, watcher):
            client.disconnect()
            client.loop_stop()


def test_a_clean_disconnect_reaches_the_broker_so_the_will_is_not_sent(settings: MqttSettings) -> None:
    """The DISCONNECT leaves the send buffer before the socket closes: the broker discards the will (a
    socket closed without it would have the broker publish the will, before the marker sent after)."""
    topic = f"{settings.topics.prefix}/{_uid('will')}"
    leaving = BurstReadingClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=_uid("leaving"),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    leaving.will_set(topic, b"will", qos=1)
    leaving.connect(settings.host, settings.port)
    leaving.loop_start()
    with _watching(settings, topic) as heard:
        wait_until(leaving.is_connected, "the leaving client connected")
        leaving.disconnect()
        leaving.loop_stop()
        _publish_all(settings, topic, [b"marker"])
        wait_until(lambda: any(m.payload == b"marker" for m in heard), "the marker")
    assert [bytes(m.payload) for m in heard] == [b"marker"]


def _peek(sock: socket.socket) -> bytes:
    """What waits on ``sock``, left there (nothing: empty)."""
    try:
        return sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


def _publish_all(settings: MqttSettings, topic: str, payloads: list[bytes]) -> None:
    """Publish ``payloads`` in order at QoS 1 as another client, each acknowledged by the broker."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=_uid("publisher"),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        sent = [client.publish(topic, payload, qos=1) for payload in payloads]
        for info in sent:
            info.wait_for_publish(timeout=WAIT_S)
        assert all(info.is_published() for info in sent), "the broker did not acknowledge every message"
    finally:
        client.disconnect()
        client.loop_stop()


def test_shared_subscription_splits_batches_between_replicas_and_loses_none(
    settings: MqttSettings, opened: list[MqttTransport]
) -> None:
    group = _uid("group")
    stores = Store(), Store()
    for store in stores:
        _server(settings, opened, group, store)
    pump = _uid("pump")
    link = _pump(settings, opened, pump, [], _uid("client"))
    log = EventLog(pump)
    vitals_every_minute(log, ManualClock(), 60)
    for event in log:
        assert link.send(events_message(pump, [EventRecord.from_event(event)]))

    wait_until(lambda: sum(len(s.rows) for s in stores) == 60, "all 60 batches committed")
    first, second = (set(s.rows) for s in stores)
    assert first and second
    assert not first & second
    assert {**stores[0].rows, **stores[1].rows} == stores[0].expected(list(log))


def _anonymous_publish(settings: MqttSettings, topic: str, payload: bytes) -> None:
    """Publish raw bytes as any client on the broker could (QoS 1, waits for the broker's ack)."""
    _publish_all(settings, topic, [payload])


def _vitals_batch(pump: str, minutes: int) -> tuple[EventLog, Envelope]:
    log = EventLog(pump)
    vitals_every_minute(log, ManualClock(), minutes)
    return log, events_message(pump, [EventRecord.from_event(e) for e in log])


def test_a_message_nesting_a_thousand_arrays_is_refused_and_stops_nothing(
    settings: MqttSettings, opened: list[MqttTransport]
) -> None:
    # This 2 KB message once killed the server's network thread: nothing stored or acked after it.
    store = Store()
    server = _server(settings, opened, _uid("group"), store)
    pump = _uid("pump")
    received: list[Envelope] = []
    link = _pump(settings, opened, pump, received, _uid("client"))
    log, batch = _vitals_batch(pump, 3)
    first_data = b'{"spo2_percent":"97.5","etco2_mmhg":"38.25","resp_rate_bpm":14}'
    deep = _vitals_batch(pump, 1)[1].encode().replace(first_data, b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}")
    assert b"[" * 1000 in deep and len(deep) < 2500

    _anonymous_publish(settings, settings.topics.events(pump), deep)
    wait_until(lambda: server.rejected == 1, "the deep message to be refused")
    assert link.send(batch)

    wait_until(lambda: any(e.kind is Kind.ACK for e in received), "the later batch to be acked")
    assert store.rows == store.expected(list(log))
    assert server.alive and server.revivals == 0


def test_a_handler_that_raises_stops_nothing(settings: MqttSettings, opened: list[MqttTransport]) -> None:
    handled: list[Envelope] = []

    def handler(envelope: Envelope) -> None:
        handled.append(envelope)
        if len(handled) == 1:
            raise RuntimeError("the first message breaks its handler")

    server = MqttTransport.for_server(settings, client_id=_uid("server"), group=_uid("group"))
    opened.append(server)
    server.start(lambda e: handler(e) if e.kind is Kind.EVENTS else None, lambda up: None)
    assert server.wait_ready(WAIT_S)
    pump = _uid("pump")
    link = _pump(settings, opened, pump, [], _uid("client"))
    for minutes in (1, 2):
        assert link.send(_vitals_batch(pump, minutes)[1])

    wait_until(lambda: len(handled) == 2, "the message after the failing one to be handled")
    assert server.handler_failures == 1 and server.alive


def test_a_network_thread_that_ended_is_started_again(
    settings: MqttSettings, opened: list[MqttTransport]
) -> None:
    store = Store()
    server = _server(settings, opened, _uid("group"), store)
    server._client.loop_stop()  # the thread ends, as an escaping callback exception would end it
    assert not server.alive

    server.revive()

    assert server.alive and server.revivals == 1
    pump = _uid("pump")
    received: list[Envelope] = []
    link = _pump(settings, opened, pump, received, _uid("client"))
    log, batch = _vitals_batch(pump, 2)
    assert link.send(batch)
    wait_until(lambda: any(e.kind is Kind.ACK for e in received), "a batch after the revival to be acked")
    assert store.rows == store.expected(list(log))
