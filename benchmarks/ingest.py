"""Ingest throughput: events/s from many simulated pumps through Mosquitto into PostgreSQL with nothing
lost, printed beside two references measured in the same run (the broker's raw rate to a counting
subscriber, PostgreSQL's raw COPY rate of the same rows into a table like the event store), and the
server's peak RSS with 10,000 pumps reporting.

The server is the real one (`smartpump serve` in a subprocess, SMARTPUMP_MQTT_URL set, pumps registered
at first contact; `--replicas N` starts N of them sharing the broker subscription); the pumps are
simulated by a few MQTT connections that each carry many pumps' batches (up to 200 events, QoS 1),
encoded before the clock starts, and resend any batch not acknowledged. The COPY reference goes into a
copy of the events table with its indexes and foreign key, because that is the work any durable store of
these events must do; COPY into a bare temporary table is printed beside it for comparison. Targets:
>= 20,000 events/s and >= 50 % of the smaller reference; <= 500 MB server RSS. Needs Mosquitto
(SMARTPUMP_BENCH_MQTT_URL, default mqtt://127.0.0.1:1883) and PostgreSQL
(SMARTPUMP_BENCH_POSTGRES_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres; a database
smartpump_bench is created and dropped).
Run: `.venv/bin/python benchmarks/ingest.py [--pumps 10000] [--events-per-pump 100] [--replicas 1]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
from paho_client import paho_client

from smartpump.server.event_copy import copy_row
from smartpump.server.workers import MAX_GROUP_EVENTS
from smartpump.transport.messages import EventRecord, Topics, events_message
from smartpump.transport.mqtt import MqttSettings

BROKER = os.environ.get("SMARTPUMP_BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
PG_ADMIN = os.environ.get(
    "SMARTPUMP_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = "smartpump_bench"
BATCH = 200
WINDOW = 500  # Mosquitto queues at most 1000 messages per subscriber by default
TARGET_EVENTS_S = 20_000
TARGET_RSS_MB = 500
REPO = Path(__file__).resolve().parents[1]


def _client(settings: MqttSettings, name: str) -> paho.Client:
    return paho_client(settings.host, settings.port, f"bench-{name}")


def _batch(pump: str, first_seq: int, count: int, start: datetime) -> bytes:
    """The ``events`` message of one pump's synthetic vitals, built through the transport's encoder."""
    records = [
        EventRecord(
            v=1,
            pump=pump,
            seq=seq,
            ts=start + timedelta(seconds=seq),
            channel="A",
            type="vitals.recorded",
            data={"spo2_percent": "97.5", "resp_rate_bpm": 14},
        )
        for seq in range(first_seq, first_seq + count)
    ]
    return events_message(pump, records).encode()


def _fast_batch(pump: str, first_seq: int, count: int, start: datetime) -> bytes:
    """The same bytes as ``_batch`` from a string template: the simulated pumps share the server's two
    cores, so their encoding must not be what the benchmark measures (checked against ``_batch``)."""
    data = '{"spo2_percent":"97.5","resp_rate_bpm":14}'
    events = ",".join(
        f'{{"v":1,"pump":"{pump}","seq":{seq},"ts":"{(start + timedelta(seconds=seq)).isoformat()}",'
        f'"channel":"A","type":"vitals.recorded","data":{data}}}'
        for seq in range(first_seq, first_seq + count)
    )
    return f'{{"v":1,"kind":"events","pump":"{pump}","body":{{"events":[{events}]}}}}'.encode()


def broker_reference(settings: MqttSettings, messages: int) -> float:
    """Events/s the broker moves from one publisher to one counting subscriber (QoS 1, 200-event batches,
    at most ``WINDOW`` messages ahead of the subscriber so the broker's per-client queue never drops)."""
    topic = f"bench-raw/{uuid.uuid4().hex[:8]}/x"
    received = threading.Event()
    count = [0]

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        count[0] += 1
        if count[0] == messages:
            received.set()

    subscriber = _client(settings, "sub")
    subscriber.on_message = on_message
    subscriber.subscribe(topic, qos=1)
    time.sleep(0.3)
    publisher = _client(settings, "pub")
    payload = _batch("raw-pump", 1, BATCH, datetime.now(UTC))
    started = time.perf_counter()
    for sent in range(messages):
        while sent - count[0] > WINDOW:
            time.sleep(0.0005)
        publisher.publish(topic, payload, qos=1)
    received.wait(120)
    elapsed = time.perf_counter() - started
    publisher.loop_stop()
    subscriber.loop_stop()
    return count[0] * BATCH / elapsed


def copy_references(url: str, pumps: int, events: int) -> tuple[float, float]:
    """Events/s PostgreSQL takes by COPY of the benchmark's own rows, formatted before the clock starts by
    the server's own row formatter: (1) into a table exactly like the event store (its columns, indexes,
    foreign key to the registered pumps and write-ahead logging) in groups of the ingest's size, a commit
    each: the reference the target is measured against; (2) into a bare temporary table (no index but
    (pump_id, seq), no WAL), for comparison."""
    start = datetime.now(UTC)
    received = start.replace(tzinfo=None).isoformat()
    per_pump = min(events, BATCH)
    count = min(pumps, max(1, 500_000 // per_pump))
    with psycopg.connect(url) as connection:
        pump_ids = [
            row[0] for row in connection.execute("SELECT id FROM pumps ORDER BY id LIMIT %s", (count,))
        ]
    groups: list[str] = []
    lines: list[str] = []
    for pump in pump_ids:
        for seq in range(1, per_pump + 1):
            record = EventRecord(
                v=1,
                pump="ref",
                seq=seq,
                ts=start + timedelta(seconds=seq),
                channel="A",
                type="vitals.recorded",
                data={"spo2_percent": "97.5", "resp_rate_bpm": 14},
            )
            lines.append(copy_row(pump, record, received))
            if len(lines) == MAX_GROUP_EVENTS:
                groups.append("".join(lines))
                lines = []
    if lines:
        groups.append("".join(lines))
    rows = len(pump_ids) * per_pump
    columns = "pump_id, seq, ts, received_at, schema_version, channel, type, patient_id, order_id, data"
    rates = []
    with psycopg.connect(url) as connection:
        connection.execute(
            "CREATE TABLE copy_store (LIKE events INCLUDING ALL, FOREIGN KEY (pump_id) REFERENCES pumps)"
        )
        connection.execute(
            "CREATE TEMP TABLE copy_bare (pump_id int, seq bigint, ts timestamp, received_at timestamp, "
            "schema_version int, channel varchar(8), type varchar(64), patient_id varchar(64), "
            "order_id varchar(64), data text, UNIQUE (pump_id, seq))"
        )
        connection.commit()
        for table in ("copy_store", "copy_bare"):
            started = time.perf_counter()
            for text in groups:
                with (
                    connection.cursor() as cursor,
                    cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
                ):
                    copy.write(text)
                connection.commit()
            rates.append(rows / (time.perf_counter() - started))
        connection.execute("DROP TABLE copy_store")
        connection.commit()
    return rates[0], rates[1]


def _rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Pumps:
    """Many pumps over a few connections: each pump sends its batches in order, one in flight, resending
    any batch not acknowledged within the timeout (what ``Uplink`` does, without a Pump behind it). A pump
    is queued to send again as soon as its ack arrives, so the client's own CPU stays small beside the
    server's on this 2-core machine."""

    def __init__(
        self, settings: MqttSettings, prefix: str, pumps: int, events: int, connections: int
    ) -> None:
        self.topics = Topics(prefix)
        self.events = events
        self.serials = [f"bench-{i:05d}" for i in range(pumps)]
        self.acked = dict.fromkeys(self.serials, 0)
        self.sent_at: dict[str, float] = {}
        self.ready: deque[str] = deque(self.serials)
        self.finished = 0
        self.payloads: dict[tuple[str, int], bytes] = {}
        self.start = datetime.now(UTC)
        self.changed = threading.Condition()
        self.clients = [_client(settings, f"pumps{i}") for i in range(connections)]
        self.client_of = {serial: self.clients[i % connections] for i, serial in enumerate(self.serials)}
        for client in self.clients:
            client.on_message = self._on_ack
            client.subscribe(self.topics.all_pumps("ack"), qos=1)
        time.sleep(0.5)
        self.resent = 0

    def _on_ack(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        pump, upto = body["pump"], body["body"]["upto_seq"]
        with self.changed:
            if upto > self.acked.get(pump, upto) and self.sent_at.pop(pump, None) is not None:
                self.acked[pump] = upto
                if upto >= self.events:
                    self.finished += 1
                else:
                    self.ready.append(pump)
                self.changed.notify()

    def run(self, deadline: float, timeout_s: float) -> None:
        """Send until every pump's events are acknowledged (or the deadline passes), at most ``WINDOW``
        batches in flight in all (beyond Mosquitto's per-subscriber queue the broker drops QoS 1
        messages, which the pumps would only resend after the timeout)."""
        last_scan = time.perf_counter()
        while time.perf_counter() < deadline:
            with self.changed:
                if self.finished == len(self.serials):
                    return
                now = time.perf_counter()
                if now - last_scan > 1.0:
                    last_scan = now
                    late = [s for s, at in self.sent_at.items() if now - at > timeout_s]
                    for serial in late:
                        del self.sent_at[serial]
                    self.resent += len(late)
                    self.ready.extend(late)
                sends = []
                while self.ready and len(self.sent_at) < WINDOW:
                    serial = self.ready.popleft()
                    self.sent_at[serial] = now
                    sends.append((serial, self.acked[serial]))
                if not sends:
                    self.changed.wait(0.05)
                    continue
            for serial, acked in sends:
                self.client_of[serial].publish(self.topics.events(serial), self.payload(serial, acked), qos=1)

    def prepare(self) -> None:
        """Encode every pump's batches before the clock starts (the pumps' CPU is not what is measured)."""
        for serial in self.serials:
            for acked in range(0, self.events, BATCH):
                count = min(BATCH, self.events - acked)
                self.payloads[(serial, acked)] = _fast_batch(serial, acked + 1, count, self.start)

    def payload(self, serial: str, acked: int) -> bytes:
        """The batch that follows ``acked`` (acks fall on batch boundaries unless a resend split them)."""
        ready = self.payloads.get((serial, acked))
        if ready is not None:
            return ready
        return _fast_batch(serial, acked + 1, min(BATCH, self.events - acked), self.start)

    def done(self) -> bool:
        with self.changed:
            return self.finished == len(self.serials)

    def close(self) -> None:
        for client in self.clients:
            client.loop_stop()
            client.disconnect()


def run_server(db_url: str, prefix: str, tmp: Path, port: int = 18777) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SMARTPUMP_DATABASE_URL": db_url,
        "SMARTPUMP_MQTT_URL": BROKER,
        "SMARTPUMP_MQTT_TOPIC_PREFIX": prefix,
        "SMARTPUMP_INGEST_REGISTER_FACILITY": "bench-hospital",
        "SMARTPUMP_SIGNING_KEYS_DIR": str(tmp / "keys"),
        "SMARTPUMP_LOG_LEVEL": "WARNING",
        "SMARTPUMP_ADMIN_PASSWORD": "correct-horse-battery-9876",
    }
    smartpump = REPO / ".venv" / "bin" / "smartpump"
    return subprocess.Popen(
        [str(smartpump), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def end_to_end(
    db_url: str, settings: MqttSettings, pumps: int, events: int, tmp: Path, replicas: int = 1
) -> tuple[float, float, int]:
    """Events/s from ``pumps`` pumps into PostgreSQL through the real server; its peak RSS; stored rows."""
    prefix = f"bench/{uuid.uuid4().hex[:8]}/v1"
    server = run_server(db_url, prefix, tmp)
    others = []
    try:
        time.sleep(4)
        for extra in range(1, replicas):
            others.append(run_server(db_url, prefix, tmp, port=18777 + extra))
        time.sleep(4 if replicas > 1 else 0)
        fleet = Pumps(settings, prefix, pumps, events, connections=4)
        fleet.prepare()
        started = time.perf_counter()
        fleet.run(deadline=started + 600, timeout_s=20.0)
        elapsed = time.perf_counter() - started
        rss = _rss_peak_mb(server.pid)
        fleet.close()
        with psycopg.connect(db_url) as connection:
            stored = int(connection.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
            distinct = int(
                connection.execute(
                    "SELECT count(*) FROM (SELECT DISTINCT pump_id, seq FROM events) d"
                ).fetchone()[0]  # type: ignore[index]
            )
        if not fleet.done():
            print(f"  NOT COMPLETE after {elapsed:.0f} s", file=sys.stderr)
        print(f"  batches resent after the ack timeout: {fleet.resent}", file=sys.stderr)
        assert stored == distinct
        return stored / elapsed, rss, stored
    finally:
        for process in [server, *others]:
            process.terminate()
            process.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pumps", type=int, default=10_000)
    parser.add_argument("--events-per-pump", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    settings = MqttSettings.from_url(BROKER)
    start = datetime.now(UTC)
    assert _fast_batch("bench-00001", 7, 3, start) == _batch("bench-00001", 7, 3, start)
    base = PG_ADMIN.rsplit("/", 1)[0]
    db_url = f"{base}/{DB_NAME}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"smartpump-bench-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    try:
        total = args.pumps * args.events_per_pump
        broker_rate = broker_reference(settings, max(200, total // BATCH // 2))
        rate, rss, stored = end_to_end(
            db_url, settings, args.pumps, args.events_per_pump, tmp, replicas=args.replicas
        )
        copy_rate, bare_rate = copy_references(db_url, args.pumps, args.events_per_pump)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    smaller = min(broker_rate, copy_rate)
    print(f"pumps {args.pumps}, events {total:,} (stored {stored:,}, lost {total - stored:,}, duplicates 0)")
    print(f"broker raw (1 publisher -> counting subscriber):       {broker_rate:>10,.0f} events/s")
    print(f"PostgreSQL COPY into a table like the event store:      {copy_rate:>10,.0f} events/s")
    print(f"PostgreSQL COPY into a bare temp table (comparison):    {bare_rate:>10,.0f} events/s")
    print(
        f"server ingest (Mosquitto -> PostgreSQL):                {rate:>10,.0f} events/s  "
        f"({rate / smaller:.0%} of the smaller reference, {rate / bare_rate:.0%} of the bare COPY; "
        f"target >= {TARGET_EVENTS_S:,} and >= 50%)"
    )
    print(
        f"server peak RSS with {args.pumps:,} pumps reporting: {rss:,.0f} MB (target <= {TARGET_RSS_MB} MB)"
    )


if __name__ == "__main__":
    main()
