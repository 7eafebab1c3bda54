"""The clients of the server in ``benchmarks/fleet_view.py``: the simulated pumps (message payloads, the
publisher processes pacing their share of the fleet as the device uplink does, the alarm probes) and the
central station's live stream, read by a process of its own as a browser reads it."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.synchronize import Event as EventFlag
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho_client import paho_client

from smartpump.transport.heartbeat import Heartbeat, HeartbeatChannel, heartbeat_message
from smartpump.transport.messages import EventRecord, Topics, events_message
from smartpump.transport.mqtt import MqttSettings
from smartpump.transport.uplink import ack_wait_s

MAX_BATCH = 200
ACK_TIMEOUT_S = 10.0
REGISTER_WINDOW = 500
REGISTER_LIMIT_S = 600.0
REGISTER_HEARTBEATS_S = 1000.0
TICK_S = 0.05
ALARM_WAIT_S = 10.0
VITALS = '{"spo2_percent":"97.5","etco2_mmhg":"38","resp_rate_bpm":"14"}'


def events_payload(pump: str, first_seq: int, count: int, ts: str) -> bytes:
    """An ``events`` message of ``count`` pump-wide vitals events (as a PCA pump with a monitor emits
    them) from ``first_seq``, all stamped ``ts`` (the same
    bytes as ``reference_payload``, from a template: the simulated pumps share the server's cores)."""
    events = ",".join(
        f'{{"v":1,"pump":"{pump}","seq":{seq},"ts":"{ts}","channel":null,"type":"vitals.recorded",'
        f'"data":{VITALS}}}'
        for seq in range(first_seq, first_seq + count)
    )
    return f'{{"v":1,"kind":"events","pump":"{pump}","body":{{"events":[{events}]}}}}'.encode()


def reference_payload(pump: str, first_seq: int, count: int, moment: datetime) -> bytes:
    """``events_payload`` through the transport's encoder."""
    records = [
        EventRecord(
            v=1,
            pump=pump,
            seq=seq,
            ts=moment,
            channel=None,
            type="vitals.recorded",
            data=json.loads(VITALS),
        )
        for seq in range(first_seq, first_seq + count)
    ]
    return events_message(pump, records).encode()


def alarm_payload(pump: str, seq: int, raised: bool) -> bytes:
    """An ``alarm.raised`` (or ``alarm.cleared``) of a downstream occlusion on channel A."""
    if raised:
        data: dict[str, Any] = {
            "alarm": "occlusion.downstream",
            "priority": "high",
            "latching": True,
            "stops_delivery": True,
            "value": None,
            "limit": None,
            "message": "downstream occlusion",
        }
    else:
        data = {
            "alarm": "occlusion.downstream",
            "by": "operator",
            "duration_s": 1,
            "priority": "high",
            "superseded_by": None,
        }
    record = EventRecord(
        v=1,
        pump=pump,
        seq=seq,
        ts=datetime.now(UTC),
        channel="A",
        type="alarm.raised" if raised else "alarm.cleared",
        data=data,
    )
    return events_message(pump, [record]).encode()


def heartbeat_payload(pump: str, seq: int, interval_s: int) -> bytes:
    """A running pump's status heartbeat, through the transport's encoder."""
    channel = HeartbeatChannel(
        channel="A",
        state="running",
        drug="heparin",
        entry_id=None,
        dose=None,
        dose_unit=None,
        rate_ml_per_h=Decimal("25"),
        infused_ml=Decimal("12.5"),
        vtbi_ml=Decimal("250"),
        remaining_ml=Decimal("237.5"),
        remaining_min=Decimal("570"),
    )
    heartbeat = Heartbeat(
        pump=pump,
        seq=seq,
        clock=datetime.now(UTC),
        interval_s=interval_s,
        battery_percent=87,
        on_ac=True,
        library_version=None,
        library_sha256=None,
        configuration_version=0,
        care_area=None,
        alarms=(),
        channels=(channel,),
    )
    return heartbeat_message(heartbeat).encode()


def _subscribe_acks(client: paho.Client, topics: Topics, serials: list[str]) -> None:
    for start in range(0, len(serials), 500):
        client.subscribe([(topics.ack(s), 1) for s in serials[start : start + 500]])


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherSpec:
    """One publisher process: its pumps and their pace."""

    index: int
    host: str
    port: int
    prefix: str
    serials: list[str]
    events_per_pump_s: float
    batch_s: float
    heartbeat_s: int
    publishers: int


@dataclass(slots=True)
class Uplinks:
    """Per-pump uplink state of one publisher (lists indexed by the pump's position)."""

    pumps: int
    sent_seq: list[int] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    in_flight: list[tuple[int, int, bytes, float, int] | None] = field(default_factory=list)
    """Per pump: the batch awaiting its ack (first and last seq, payload, when sent, times resent)."""
    pending: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    flying: int = 0
    resent: int = 0
    batches: int = 0
    heartbeats: int = 0

    def __post_init__(self) -> None:
        self.sent_seq = [0] * self.pumps
        self.acked = [0] * self.pumps
        self.in_flight = [None] * self.pumps
        self.pending = [0.0] * self.pumps

    def ack(self, index: int, upto: int) -> None:
        """A cumulative ack arrived."""
        with self.lock:
            if upto > self.acked[index]:
                self.acked[index] = upto
                flight = self.in_flight[index]
                if flight is not None and upto >= flight[1]:
                    self.in_flight[index] = None
                    self.flying -= 1

    def next_batch(self, index: int, now: float) -> tuple[int, int] | bytes | None:
        """What pump ``index`` sends now: a new batch's (first, count), a batch to resend, or nothing."""
        with self.lock:
            flight = self.in_flight[index]
            if flight is not None:
                if now - flight[3] < ack_wait_s(ACK_TIMEOUT_S, flight[4]):
                    return None
                self.in_flight[index] = (flight[0], flight[1], flight[2], now, flight[4] + 1)
                self.resent += 1
                return flight[2]
            count = min(int(self.pending[index]), MAX_BATCH)
            if count == 0:
                return None
            self.pending[index] -= count
            first = self.sent_seq[index] + 1
            self.sent_seq[index] += count
            return first, count

    def sent(self, index: int, first: int, count: int, payload: bytes, now: float) -> None:
        """Record a new batch in flight."""
        with self.lock:
            self.in_flight[index] = (first, first + count - 1, payload, now, 0)
            self.flying += 1
            self.batches += 1


def publisher(spec: PublisherSpec, go: EventFlag, stop: EventFlag, results: Any) -> None:
    """A publisher process: registers its pumps (one event and a heartbeat each, acked), reports ready,
    then paces its pumps from ``go`` until ``stop``, drains what is in flight and reports its counts."""
    topics = Topics(spec.prefix)
    index_of = {serial: i for i, serial in enumerate(spec.serials)}
    uplinks = Uplinks(len(spec.serials))

    def on_ack(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        index = index_of.get(body["pump"])
        if index is not None:
            uplinks.ack(index, int(body["body"]["upto_seq"]))

    client = paho_client(spec.host, spec.port, f"fleetview-pumps{spec.index}", in_flight=5000)
    client.on_message = on_ack  # before the subscription: no ack can arrive earlier
    _subscribe_acks(client, topics, spec.serials)
    time.sleep(1.0)
    _register(client, topics, spec, uplinks)
    results.put(("ready", spec.index, len(spec.serials) - uplinks.flying))
    go.wait()
    _pace(client, topics, spec, uplinks, stop)
    deadline = time.monotonic() + 60
    while uplinks.flying and time.monotonic() < deadline:
        _resend_late(client, topics, spec.serials, uplinks)
        time.sleep(0.1)
    with uplinks.lock:
        counts = {
            "sent": sum(uplinks.sent_seq),
            "acked": sum(uplinks.acked),
            "batches": uplinks.batches,
            "resent": uplinks.resent,
            "heartbeats": uplinks.heartbeats,
            "unacked": sum(1 for flight in uplinks.in_flight if flight is not None),
        }
    results.put(("done", spec.index, counts))
    client.loop_stop()
    client.disconnect()


def _register(client: paho.Client, topics: Topics, spec: PublisherSpec, uplinks: Uplinks) -> None:
    """Each pump's first event, at most ``REGISTER_WINDOW`` (shared by the publishers) awaiting their ack
    (beyond Mosquitto's per-subscriber queue the broker drops QoS 1 messages); then one heartbeat each,
    paced at ``REGISTER_HEARTBEATS_S`` in all."""
    window = max(10, REGISTER_WINDOW // spec.publishers)
    ts = datetime.now(UTC).isoformat()
    deadline = time.monotonic() + REGISTER_LIMIT_S
    index = 0
    while index < len(spec.serials) or uplinks.flying:
        if time.monotonic() > deadline:
            return
        while index < len(spec.serials) and uplinks.flying < window:
            serial = spec.serials[index]
            payload = events_payload(serial, 1, 1, ts)
            uplinks.sent_seq[index] = 1
            uplinks.sent(index, 1, 1, payload, time.monotonic())
            client.publish(topics.events(serial), payload, qos=1)
            index += 1
        _resend_late(client, topics, spec.serials, uplinks)
        time.sleep(0.02)
    pace = REGISTER_HEARTBEATS_S / spec.publishers
    started = time.monotonic()
    for index, serial in enumerate(spec.serials):
        client.publish(topics.heartbeat(serial), heartbeat_payload(serial, 1, spec.heartbeat_s), qos=1)
        time.sleep(max(0.0, started + (index + 1) / pace - time.monotonic()))


def _resend_late(client: paho.Client, topics: Topics, serials: list[str], uplinks: Uplinks) -> None:
    now = time.monotonic()
    for index, serial in enumerate(serials):
        due = uplinks.next_batch(index, now) if uplinks.in_flight[index] is not None else None
        if isinstance(due, bytes):
            client.publish(topics.events(serial), due, qos=1)


def _turns(pumps: int, slots: int) -> list[list[int]]:
    """The pumps whose turn each of ``slots`` ticks is, spread evenly (each pump once per cycle)."""
    turns: list[list[int]] = [[] for _ in range(slots)]
    for index in range(pumps):
        turns[index * slots // pumps].append(index)
    return turns


def _pace(
    client: paho.Client, topics: Topics, spec: PublisherSpec, uplinks: Uplinks, stop: EventFlag
) -> None:
    """Every tick, the pumps whose turn it is (each every ``batch_s``, spread over the interval) add their
    events since their last turn and send; heartbeats likewise every ``heartbeat_s``."""
    pumps = len(spec.serials)
    turns = _turns(pumps, max(1, round(spec.batch_s / TICK_S)))
    heartbeat_turns = _turns(pumps, max(1, round(spec.heartbeat_s / TICK_S)))
    per_turn = spec.events_per_pump_s * spec.batch_s
    started = time.monotonic()
    tick = 0
    while not stop.is_set():
        now = time.monotonic()
        ts = datetime.now(UTC).isoformat()
        for index in turns[tick % len(turns)]:
            serial = spec.serials[index]
            with uplinks.lock:
                uplinks.pending[index] += per_turn
            due = uplinks.next_batch(index, now)
            if isinstance(due, bytes):
                client.publish(topics.events(serial), due, qos=1)
            elif due is not None:
                first, count = due
                payload = events_payload(serial, first, count, ts)
                uplinks.sent(index, first, count, payload, now)
                client.publish(topics.events(serial), payload, qos=1)
        for index in heartbeat_turns[tick % len(heartbeat_turns)]:
            serial = spec.serials[index]
            payload = heartbeat_payload(serial, uplinks.sent_seq[index], spec.heartbeat_s)
            client.publish(topics.heartbeat(serial), payload, qos=1)
            uplinks.heartbeats += 1
        tick += 1
        pause = started + tick * TICK_S - time.monotonic()
        if pause > 0:
            time.sleep(pause)


FRAMES_EVERY = 1000
"""The stream reader process reports its frame count every this many frames (and when it ends)."""
READER_STOP_S = 5.0


def read_stream(base: str, token: str, out: Any, stop: EventFlag) -> None:
    """The reader process: reads ``/ui/stream`` and puts ``("connected", "", 0)`` once the starting views
    arrived, ``("alarm", pump, perf_counter)`` for each ``alarm.raised``, ``("frames", "", n)`` now and
    then and ``("end", "", n)`` when it stops. A process of its own, as a browser is: a thread parsing
    thousands of frames a second would share the interpreter lock with the probes' MQTT client and delay
    their publishing."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    frames = 0
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream("GET", "/ui/stream", headers=headers) as response,
    ):
        response.raise_for_status()
        alarm = False
        for line in response.iter_lines():
            if stop.is_set():
                break
            if line.startswith("event: "):
                frames += 1
                if frames % FRAMES_EVERY == 0:
                    out.put(("frames", "", frames))
                alarm = line == "event: alarm.raised"
                if line == "event: live.current":
                    out.put(("connected", "", 0))
            elif alarm and line.startswith("data: "):
                out.put(("alarm", json.loads(line[6:])["pump"], time.perf_counter()))
                alarm = False
    out.put(("end", "", frames))


class LiveStream:
    """The central station's live stream read by a process of its own (``read_stream``; the monotonic
    clock is the machine's, so its arrival times compare with this process's): ``connected`` once its
    starting views arrived, the arrival time of each ``alarm.raised`` by pump, how many frames arrived."""

    def __init__(self, base: str, token: str) -> None:
        self.frames = 0
        self.arrived: dict[str, float] = {}
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.changed = threading.Condition()
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._out: Any = context.Queue()
        self._process = context.Process(
            target=read_stream, args=(base, token, self._out, self._stop), daemon=True
        )
        self._process.start()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while True:
            kind, pump, value = self._out.get()
            if kind == "connected":
                self.connected.set()
            elif kind in ("frames", "end"):
                self.frames = int(value)
                if kind == "end":
                    self.ended.set()
                    return
            elif kind == "alarm":
                with self.changed:
                    self.arrived[pump] = float(value)
                    self.changed.notify_all()

    def wait_for(self, pump: str, timeout_s: float) -> float | None:
        """The arrival time of ``pump``'s next alarm (taken off the record), or None after the timeout."""
        deadline = time.perf_counter() + timeout_s
        with self.changed:
            while pump not in self.arrived:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.changed.wait(left)
            return self.arrived.pop(pump)

    def close(self) -> None:
        """Stop the reader process (its last frame count is kept when it ends in time)."""
        self._stop.set()
        self.ended.wait(READER_STOP_S)
        self._process.join(READER_STOP_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()


class Probes:
    """Probe pumps driven from this process: each probe raises an alarm, waits for it on the live stream
    and clears it; the latencies of the raises are kept."""

    def __init__(self, settings: MqttSettings, prefix: str, serials: list[str], heartbeat_s: int) -> None:
        self.topics = Topics(prefix)
        self.serials = serials
        self.seq = dict.fromkeys(serials, 0)
        self.client = paho_client(settings.host, settings.port, "fleetview-probes")
        self.heartbeat_s = heartbeat_s

    def register(self) -> None:
        """One event and a heartbeat each, so the server knows them before the clock starts."""
        ts = datetime.now(UTC).isoformat()
        for serial in self.serials:
            self.seq[serial] = 1
            self.client.publish(self.topics.events(serial), events_payload(serial, 1, 1, ts), qos=1)
            self.client.publish(
                self.topics.heartbeat(serial), heartbeat_payload(serial, 1, self.heartbeat_s), qos=1
            )

    def run(self, stream: LiveStream, seconds: float, hz: float) -> tuple[list[float], int]:
        """Alarms at ``hz`` for ``seconds`` (round robin over the probes, each awaited before the next on
        the same pump); returns the latencies (s) and how many were not seen within ``ALARM_WAIT_S``."""
        latencies: list[float] = []
        missed = [0]
        lock = threading.Lock()
        busy: set[str] = set()

        def probe(serial: str) -> None:
            self.seq[serial] += 1
            sent = time.perf_counter()
            self.client.publish(
                self.topics.events(serial), alarm_payload(serial, self.seq[serial], True), qos=1
            )
            arrived = stream.wait_for(serial, ALARM_WAIT_S)
            self.seq[serial] += 1
            self.client.publish(
                self.topics.events(serial), alarm_payload(serial, self.seq[serial], False), qos=1
            )
            with lock:
                if arrived is None:
                    missed[0] += 1
                else:
                    latencies.append(arrived - sent)
                busy.discard(serial)

        threads = []
        started = time.perf_counter()
        count = 0
        while time.perf_counter() - started < seconds:
            with lock:
                free = [s for s in self.serials if s not in busy]
                serial = free[count % len(free)] if free else None
                if serial is not None:
                    busy.add(serial)
            if serial is not None:
                thread = threading.Thread(target=probe, args=(serial,), daemon=True)
                thread.start()
                threads.append(thread)
            count += 1
            time.sleep(max(0.0, started + count / hz - time.perf_counter()))
        for thread in threads:
            thread.join(ALARM_WAIT_S + 1)
        return latencies, missed[0]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
