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
(`--quick`: 1,000 pumps at 2,000 events/s for 10 s). The pumps and the live stream reader are in
``fleet_view_clients.py``.
"""

from __future__ import annotations

import argparse
import contextlib
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
from pathlib import Path

import httpx
import psycopg
from fleet_view_clients import (
    ACK_TIMEOUT_S,
    ALARM_WAIT_S,
    REGISTER_LIMIT_S,
    LiveStream,
    Probes,
    PublisherSpec,
    events_payload,
    publisher,
    reference_payload,
)

from smartpump.server.broker_config import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES
from smartpump.transport.mqtt import MqttSettings

BROKER_URL = os.environ.get("SMARTPUMP_BENCH_MQTT_URL")
PG_URL = os.environ.get("SMARTPUMP_BENCH_POSTGRES_URL")
PG_ADMIN = os.environ.get(
    "SMARTPUMP_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REPO = Path(__file__).resolve().parents[1]
TARGET_EVENTS_S = 20_000
TARGET_ALARM_P99_S = 1.0
TARGET_LIST_P95_S = 0.100
QUIET_WINDOW_S = 2.0
QUIET_LIMIT_S = 240.0
LIST_EVERY_S = 0.2
PROBE_INFIX = "probe"
ADMIN_PASSWORD = "correct-horse-battery-9876"
NEW_PASSWORD = "fleet-view-bench-5432-staple"


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
