"""The fleet view at hospital scale (issue 14): N pumps (default 10,000) over MQTT sending event batches
and status heartbeats at an offered rate (default 22,000 events/s: 10% above the target, so what is stored can
show it) into the real server and PostgreSQL;
measured under that load and, in the same run, on the idle server (the same pumps registered, no
traffic): the ingest rate (events stored per second, counted in the database), the latency from an
``alarm.raised`` published by a pump to the same alarm read on the central station's live stream
(``/ui/stream``, Server-Sent Events, as an authenticated user), and the latency of the fleet list API
(``GET /api/v1/pumps``, the first page). Targets: >= 20,000 events/s stored, alarm p99 <= 1 s, fleet
list p95 <= 100 ms.

The server is ``smartpump serve`` from this checkout in a subprocess (SMARTPUMP_MQTT_URL set, pumps
registered at first contact, the plain development broker without device identities). The pumps are
simulated by ``--publishers`` processes, each with one MQTT connection for its share of the pumps; a
pump behaves as the device uplink does: its events accumulate at its share of ``--rate``, every
``--batch-s`` it sends what is pending (at most 200 events) when no batch is awaiting its ack, resends a
batch not acknowledged within ``ACK_TIMEOUT_S``, each further time after the uplink's doubled wait
(``transport.uplink.ack_wait_s``), and sends a heartbeat every ``--heartbeat-s``. Event
batches come from a string template checked byte for byte against the transport's encoder; heartbeats
are built by the transport's own encoder. ``--probe-pumps`` further pumps, driven from the main process,
raise and clear a high-priority alarm ``--probe-hz`` times a second in all. Nothing is asserted: the
figures are printed beside their targets with the core count and load average, and the run exits 0.

The broker is a Mosquitto the run starts on a free port with the queue limits ``smartpump pki
broker-config`` writes for production (``max_queued_messages`` 100,000 per client: at Mosquitto's default
of 1,000 the broker silently drops what a server replica a second behind has not read yet, and the pumps
resend it), or the broker at SMARTPUMP_BENCH_MQTT_URL when set; the messages a broker of the run dropped
are counted from its log and printed. Plain MQTT without device identities (the TLS handshakes of 10,000
pumps are a registration cost, not a steady-state one). Needs the ``mosquitto`` program and PostgreSQL:
the database at SMARTPUMP_BENCH_POSTGRES_URL when set (the server migrates it; rows are counted as the
run's increase), else one created through SMARTPUMP_BENCH_POSTGRES_ADMIN_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end.
The fleet list and the live stream are read from a second ``smartpump serve`` that ingests nothing (the
production topology: API replicas apart from ingest, on the live bus); ``--no-api-replica`` reads them from
the ingesting process.
Run: `.venv/bin/python benchmarks/fleet_view.py [--pumps 10000] [--rate 22000] [--seconds 40]`
(`--quick`: 1,000 pumps at 2,000 events/s for 10 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.synchronize import Event as EventFlag
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from smartpump.server.broker_config import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES
from smartpump.transport.heartbeat import Heartbeat, HeartbeatChannel, heartbeat_message
from smartpump.transport.messages import EventRecord, Topics, events_message
from smartpump.transport.mqtt import MqttSettings
from smartpump.transport.uplink import ack_wait_s

BROKER_URL = os.environ.get("SMARTPUMP_BENCH_MQTT_URL")
PG_URL = os.environ.get("SMARTPUMP_BENCH_POSTGRES_URL")
PG_ADMIN = os.environ.get(
    "SMARTPUMP_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REPO = Path(__file__).resolve().parents[1]
TARGET_EVENTS_S = 20_000
TARGET_ALARM_P99_S = 1.0
TARGET_LIST_P95_S = 0.100
MAX_BATCH = 200
ACK_TIMEOUT_S = 10.0
REGISTER_WINDOW = 500
REGISTER_LIMIT_S = 600.0
REGISTER_HEARTBEATS_S = 1000.0
QUIET_WINDOW_S = 2.0
QUIET_LIMIT_S = 240.0
TICK_S = 0.05
ALARM_WAIT_S = 10.0
LIST_EVERY_S = 0.2
PROBE_INFIX = "probe"
ADMIN_PASSWORD = "correct-horse-battery-9876"
NEW_PASSWORD = "fleet-view-bench-5432-staple"
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


def _client(settings: MqttSettings, name: str) -> paho.Client:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"fleetview-{name}-{uuid.uuid4().hex[:6]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(settings.host, settings.port)
    client.loop_start()
    return client


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

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"fleetview-pumps{spec.index}-{uuid.uuid4().hex[:6]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(5000)
    client.max_queued_messages_set(0)
    client.on_message = on_ack
    client.connect(spec.host, spec.port)
    client.loop_start()
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
        self.client = _client(settings, "probes")
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


def fleet_list(client: httpx.Client, token: str, seconds: float) -> list[float]:
    """Latencies (s) of ``GET /api/v1/pumps`` (the first page, with its total), one every
    ``LIST_EVERY_S``."""
    latencies = []
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        sent = time.perf_counter()
        response = client.get("/api/v1/pumps", headers=headers)
        response.raise_for_status()
        latencies.append(time.perf_counter() - sent)
        time.sleep(max(0.0, LIST_EVERY_S - (time.perf_counter() - sent)))
    return latencies


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (nearest rank), NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def stored_events(url: str) -> int:
    """Rows in the event store."""
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def distinct_events(url: str) -> tuple[int, int, int]:
    """Rows in the event store, distinct (pump, seq) among them, and those of the alarm probes."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*), count(DISTINCT (e.pump_id, e.seq)), count(*) FILTER (WHERE p.serial LIKE "
            "%s) FROM events e JOIN pumps p ON p.id = e.pump_id",
            (f"%{PROBE_INFIX}%",),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def registered_pumps(url: str, serial_prefix: str) -> int:
    """Pumps registered with this run's serials."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pumps WHERE serial LIKE %s", (f"{serial_prefix}%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def applied_heartbeats(url: str, since: datetime) -> int:
    """Pumps whose heartbeat the server applied at or after ``since``."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pump_views WHERE heartbeat_at >= %s", (since.replace(tzinfo=None),)
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_quiet(url: str, limit_s: float) -> float:
    """Wait until the server stored no event and applied no heartbeat for ``QUIET_WINDOW_S`` (it has
    worked off what registration sent; its CPU says little, it mostly waits on PostgreSQL), at most
    ``limit_s``; returns the seconds waited."""
    started = time.perf_counter()
    last: tuple[object, ...] | None = None
    while time.perf_counter() - started < limit_s:
        with psycopg.connect(url) as connection:
            now = connection.execute(
                "SELECT (SELECT count(*) FROM events), (SELECT max(heartbeat_at) FROM pump_views)"
            ).fetchone()
        if now is not None and now == last:
            break
        last = now
        time.sleep(QUIET_WINDOW_S)
    return time.perf_counter() - started


@contextmanager
def database() -> Iterator[str]:
    """The PostgreSQL URL (psycopg form) the server uses: SMARTPUMP_BENCH_POSTGRES_URL, or a database
    created for the run and dropped after it."""
    if PG_URL:
        yield PG_URL.replace("postgresql+psycopg://", "postgresql://")
        return
    name = f"fleet_view_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True, slots=True)
class Broker:
    """The broker of the run: its URL, and its log when the run started it."""

    url: str
    log: Path | None

    def dropped(self) -> int | None:
        """Times the broker logged that it dropped a client's outgoing messages (None: not our broker)."""
        if self.log is None:
            return None
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text.count("Outgoing messages are being dropped")


@contextmanager
def running(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    what: str,
    limit_s: float,
    output: Callable[[], str],
) -> Iterator[None]:
    """Wait until ``ready()``, then run the block; ``RuntimeError`` (with ``output()``) when ``process`` ends
    or ``limit_s`` passes first. The process is terminated (killed after 20 s) when the block ends."""
    try:
        deadline = time.monotonic() + limit_s
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{what} ended: {output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} was not ready within {limit_s:.0f} s")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def broker(tmp: Path) -> Iterator[Broker]:
    """SMARTPUMP_BENCH_MQTT_URL, or a Mosquitto of the run with the production queue limits."""
    if BROKER_URL:
        yield Broker(BROKER_URL, None)
        return
    program = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = tmp / "broker.log"
    config = tmp / "mosquitto.conf"
    config.write_text(
        "\n".join(
            [
                "per_listener_settings false",
                "allow_anonymous true",
                f"max_queued_messages {MAX_QUEUED_MESSAGES}",
                f"max_queued_bytes {MAX_QUEUED_BYTES}",
                "persistence false",
                f"log_dest file {log}",
                "log_type error",
                "log_type warning",
                "log_type notice",
                f"listener {port} 127.0.0.1",
                "",
            ]
        )
    )
    process = subprocess.Popen(
        [program, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    with running(process, listening, "mosquitto", 30.0, lambda: log.read_text() if log.exists() else ""):
        yield Broker(f"mqtt://127.0.0.1:{port}", log)


@contextmanager
def server(
    db_url: str, broker_url: str | None, prefix: str, tmp: Path, port: int, *, live_bus: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """``smartpump serve`` of this checkout, until it answers ``/api/v1/health``; without ``broker_url`` an
    API replica that ingests nothing."""
    name = "server" if broker_url is not None else "api"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
        "SMARTPUMP_DATABASE_URL": db_url.replace("postgresql://", "postgresql+psycopg://", 1),
        "SMARTPUMP_MQTT_TOPIC_PREFIX": prefix,
        "SMARTPUMP_INGEST_REGISTER_FACILITY": "fleet-view-bench",
        "SMARTPUMP_SIGNING_KEYS_DIR": str(tmp / "keys"),
        "SMARTPUMP_AUDIT_ANCHOR_DIR": str(tmp / "anchors"),
        "SMARTPUMP_LOG_LEVEL": "WARNING",
        "SMARTPUMP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    if broker_url is not None:
        env["SMARTPUMP_MQTT_URL"] = broker_url
    else:
        env.pop("SMARTPUMP_MQTT_URL", None)
    if live_bus:
        env["SMARTPUMP_LIVE_BUS"] = "true"
    log_path = tmp / f"{name}.log"

    def answering() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from smartpump.cli import main; main()", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        with running(process, answering, f"the {name}", 120.0, lambda: log_path.read_text()[-2000:]):
            yield process


def login(client: httpx.Client) -> str:
    """A bearer token of the bootstrap admin (its first password changed, as the server requires)."""
    first = client.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    if first.status_code == 200:
        token = first.json()["access_token"]
        client.post(
            "/api/v1/auth/password",
            json={"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
    again = client.post("/api/v1/auth/token", data={"username": "admin", "password": NEW_PASSWORD})
    again.raise_for_status()
    return str(again.json()["access_token"])


@dataclass(slots=True)
class Phase:
    """What one phase measured."""

    seconds: float = 0.0
    events: int = 0
    alarms: list[float] = field(default_factory=list)
    alarms_missed: int = 0
    lists: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0
    heartbeats_applied: int = 0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def rate(self) -> float:
        """Events stored per second."""
        return self.events / self.seconds if self.seconds else 0.0


def measure(
    url: str,
    process: subprocess.Popen[bytes],
    probes: Probes,
    stream: LiveStream,
    api: httpx.Client,
    token: str,
    seconds: float,
    probe_hz: float,
) -> Phase:
    """Alarm probes and fleet list requests side by side for ``seconds``; events stored meanwhile."""
    phase = Phase()
    lists: list[float] = []
    lister = threading.Thread(target=lambda: lists.extend(fleet_list(api, token, seconds)), daemon=True)
    before, cpu_before = stored_events(url), cpu_seconds(process.pid)
    since = datetime.now(UTC)
    started = time.perf_counter()
    lister.start()
    phase.alarms, phase.alarms_missed = probes.run(stream, seconds, probe_hz)
    lister.join()
    phase.seconds = time.perf_counter() - started
    phase.events = stored_events(url) - before
    phase.server_cpu_s = cpu_seconds(process.pid) - cpu_before
    phase.lists = lists
    phase.heartbeats_applied = applied_heartbeats(url, since)
    phase.load = os.getloadavg()
    return phase


@dataclass(slots=True)
class Report:
    """The run's figures."""

    pumps: int
    target_rate: float
    idle: Phase
    loaded: Phase
    sent: int = 0
    stored: int = 0
    probe_sent: int = 0
    probe_stored: int = 0
    distinct: int = 0
    resent: int = 0
    unacked: int = 0
    heartbeats: int = 0
    frames: int = 0
    broker_dropped: int | None = None
    lines: list[str] = field(default_factory=list)


def run(args: argparse.Namespace) -> Report:
    """The whole run: server, registration, idle phase, loaded phase, drain, counts."""
    moment = datetime.now(UTC)
    assert events_payload("p-1", 7, 3, moment.isoformat()) == reference_payload("p-1", 7, 3, moment)
    run_id = uuid.uuid4().hex[:6]
    prefix = f"bench/fv{run_id}/v1"
    serial_prefix = f"fv{run_id}-"
    serials = [f"{serial_prefix}{i:05d}" for i in range(args.pumps)]
    probe_serials = [f"{serial_prefix}{PROBE_INFIX}{i:03d}" for i in range(args.probe_pumps)]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"smartpump-fleetview-{run_id}"
    tmp.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as running:
        mqtt = running.enter_context(broker(tmp))
        url = running.enter_context(database())
        process = running.enter_context(
            server(url, mqtt.url, prefix, tmp, args.port, live_bus=args.api_replica)
        )
        api_port = args.port
        if args.api_replica:
            api_port = args.api_port if args.api_port is not None else args.port + 1
            running.enter_context(server(url, None, prefix, tmp, api_port, live_bus=True))
        settings = MqttSettings.from_url(mqtt.url)
        stored_before = stored_events(url)
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
        token = login(api)
        stream = LiveStream(f"http://127.0.0.1:{api_port}", token)
        if not stream.connected.wait(120):
            raise SystemExit("the live stream sent no starting views within 120 s")
        go, stop = context.Event(), context.Event()
        results = context.Queue()
        share = -(-len(serials) // args.publishers)
        workers = [
            context.Process(
                target=publisher,
                args=(
                    PublisherSpec(
                        index=i,
                        host=settings.host,
                        port=settings.port,
                        prefix=prefix,
                        serials=serials[i * share : (i + 1) * share],
                        events_per_pump_s=args.rate / len(serials),
                        batch_s=args.batch_s,
                        heartbeat_s=args.heartbeat_s,
                        publishers=args.publishers,
                    ),
                    go,
                    stop,
                    results,
                ),
                daemon=True,
            )
            for i in range(args.publishers)
            if serials[i * share : (i + 1) * share]
        ]
        probes = Probes(settings, prefix, probe_serials, args.heartbeat_s)
        try:
            registering = time.perf_counter()
            for worker in workers:
                worker.start()
            probes.register()
            ready = [results.get(timeout=REGISTER_LIMIT_S + 120) for _ in workers]
            expected = len(serials) + len(probe_serials)
            deadline = time.monotonic() + 60
            while registered_pumps(url, serial_prefix) < expected and time.monotonic() < deadline:
                time.sleep(0.5)
            registered = time.perf_counter() - registering
            quiet = wait_quiet(url, QUIET_LIMIT_S)
            report = Report(pumps=args.pumps, target_rate=args.rate, idle=Phase(), loaded=Phase())
            report.lines.append(
                f"registered {registered_pumps(url, serial_prefix):,} of {expected:,} pumps in "
                f"{registered:.0f} s ({sum(r[2] for r in ready):,} acked); their first heartbeat applied for "
                f"{applied_heartbeats(url, datetime(2000, 1, 1, tzinfo=UTC)):,}; the server was quiet "
                f"{quiet:.0f} s later"
            )
            idle_s = max(2.0, min(10.0, args.seconds / 3))
            report.idle = measure(url, process, probes, stream, api, token, idle_s, args.probe_hz)
            go.set()
            time.sleep(max(1.0, min(5.0, args.seconds / 3)))
            report.loaded = measure(url, process, probes, stream, api, token, args.seconds, args.probe_hz)
            stop.set()
            done = [results.get(timeout=120) for _ in workers]
            for worker in workers:
                worker.join(30)
        finally:
            stop.set()
            go.set()
            probes.close()
            stream.close()
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
        counts = [d[2] for d in done]
        report.sent = sum(c["sent"] for c in counts)
        report.probe_sent = sum(probes.seq.values())
        report.resent = sum(c["resent"] for c in counts)
        report.unacked = sum(c["unacked"] for c in counts)
        report.heartbeats = sum(c["heartbeats"] for c in counts)
        report.frames = stream.frames
        time.sleep(1.0)
        total, distinct, probe_stored = distinct_events(url)
        report.stored = total - probe_stored - stored_before
        report.distinct = distinct - probe_stored - stored_before
        report.probe_stored = probe_stored
        report.broker_dropped = mqtt.dropped()
        api.close()
    return report


def _ms(value: float) -> str:
    return f"{value * 1000:,.0f} ms" if value == value else "-"


def show(report: Report, args: argparse.Namespace) -> None:
    """The table: target, idle reference and under load, with the machine's cores and load."""
    idle, loaded = report.idle, report.loaded
    rows = [
        ("events stored / s", f">= {TARGET_EVENTS_S:,}", f"{idle.rate:,.0f}", f"{loaded.rate:,.0f}"),
        (
            "alarm -> live stream p50",
            "",
            _ms(percentile(idle.alarms, 0.5)),
            _ms(percentile(loaded.alarms, 0.5)),
        ),
        (
            "alarm -> live stream p95",
            "",
            _ms(percentile(idle.alarms, 0.95)),
            _ms(percentile(loaded.alarms, 0.95)),
        ),
        (
            "alarm -> live stream p99",
            f"<= {TARGET_ALARM_P99_S * 1000:,.0f} ms",
            _ms(percentile(idle.alarms, 0.99)),
            _ms(percentile(loaded.alarms, 0.99)),
        ),
        (
            f"alarms seen / not seen in {ALARM_WAIT_S:.0f} s",
            "all",
            f"{len(idle.alarms)} / {idle.alarms_missed}",
            f"{len(loaded.alarms)} / {loaded.alarms_missed}",
        ),
        ("fleet list p50", "", _ms(percentile(idle.lists, 0.5)), _ms(percentile(loaded.lists, 0.5))),
        (
            "fleet list p95",
            f"<= {TARGET_LIST_P95_S * 1000:,.0f} ms",
            _ms(percentile(idle.lists, 0.95)),
            _ms(percentile(loaded.lists, 0.95)),
        ),
        ("fleet list requests", "", f"{len(idle.lists)}", f"{len(loaded.lists)}"),
        (
            "pumps with a heartbeat applied",
            f"{min(report.pumps, round(report.pumps * loaded.seconds / args.heartbeat_s)):,}",
            f"{idle.heartbeats_applied:,}",
            f"{loaded.heartbeats_applied:,}",
        ),
        (
            "server CPU (cores)",
            "",
            f"{idle.server_cpu_s / idle.seconds:.2f}" if idle.seconds else "-",
            f"{loaded.server_cpu_s / loaded.seconds:.2f}" if loaded.seconds else "-",
        ),
        (
            "load average (1, 5, 15 min)",
            "",
            "/".join(f"{v:.1f}" for v in idle.load),
            "/".join(f"{v:.1f}" for v in loaded.load),
        ),
    ]
    print(
        f"fleet view at scale: {report.pumps:,} pumps + {args.probe_pumps} alarm probes, offered "
        f"{report.target_rate:,.0f} events/s in batches every {args.batch_s:g} s, heartbeats every "
        f"{args.heartbeat_s} s, {args.publishers} publisher processes; {os.cpu_count()} cores"
    )
    if args.api_replica:
        print(
            "fleet list and live stream read from an API replica (a second `smartpump serve` without MQTT); "
            "live messages cross over the live bus; server CPU is the ingesting process's"
        )
    for line in report.lines:
        print(line)
    print(f"{'':34}{'target':>14}{'idle (ref.)':>16}{'under load':>16}")
    for name, target, idle_value, loaded_value in rows:
        print(f"{name:34}{target:>14}{idle_value:>16}{loaded_value:>16}")
    waiting = report.sent - report.distinct
    print(
        f"events sent {report.sent:,}, stored {report.stored:,} (distinct (pump, seq) {report.distinct:,}, "
        f"duplicates {report.stored - report.distinct:,}, not stored when the run ended {waiting:,}: still "
        f"in the outboxes of {report.unacked:,} pumps awaiting their ack); batches resent after "
        f"{ACK_TIMEOUT_S:.0f} s without ack {report.resent:,}; heartbeats sent {report.heartbeats:,}; "
        f"live stream frames read {report.frames:,} (counted by the thousand unless the reader ended in time)"
    )
    print(
        f"alarm probe events sent {report.probe_sent:,} once each (no resend), stored {report.probe_stored:,}"
    )
    dropped = report.broker_dropped
    print(
        "broker: SMARTPUMP_BENCH_MQTT_URL (its drops are not counted)"
        if dropped is None
        else f"broker: started by the run with max_queued_messages {MAX_QUEUED_MESSAGES:,}; times it logged "
        f"dropping a client's outgoing messages {dropped:,}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pumps", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=22_000.0, help="events/s offered by all pumps")
    parser.add_argument("--seconds", type=float, default=40.0, help="the measured window under load")
    parser.add_argument("--batch-s", type=float, default=1.0, help="how often each pump sends")
    parser.add_argument("--heartbeat-s", type=int, default=30)
    parser.add_argument("--publishers", type=int, default=3)
    parser.add_argument("--probe-pumps", type=int, default=20)
    parser.add_argument("--probe-hz", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=18791)
    parser.add_argument("--quick", action="store_true", help="1,000 pumps, 2,000 events/s, 10 s")
    parser.add_argument(
        "--api-port", type=int, default=None, help="the API replica's port (default: --port + 1)"
    )
    parser.add_argument(
        "--api-replica",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read the fleet list and the live stream from a second server process that ingests nothing "
        "(both with SMARTPUMP_LIVE_BUS; the default), or from the ingesting process",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.pumps, args.rate, args.seconds = 1000, 2000.0, 10.0
    report = run(args)
    show(report, args)


if __name__ == "__main__":
    main()
