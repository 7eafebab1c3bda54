"""Capacity at full scale (issue 15): the documented load, 200 concurrent API requests and 200 open
live streams, against the real server (`smartpump serve` in a subprocess) on PostgreSQL, printed beside an
idle reference measured in the same run.

Phases: (1) idle: sequential `GET /api/v1/pumps` from one client (the reference latency); (2) 200 live
streams (`/ui/stream`) are opened and kept open; (3) load: 200 clients each send `GET /api/v1/pumps`
back to back for `--seconds`, honouring `Retry-After` on a 429 or 503; a health check is asked every
second beside them; (4) recovery: the load stops (streams still open) and one client asks until a request
is answered 2xx within the idle p95 x 3 (at least 50 ms), which gives the time to recover.
Printed: counts of 2xx / 429 / 503 / 500 / other / failed connections, p50 / p95 / max latency of each
phase, the health check's worst latency under load, the time to recover, and the machine's load average.
The run fails (exit 1) on any 5xx other than 503, any request without an answer, or any answer slower
than `STALL_S` (a stall).

Needs PostgreSQL (SMARTPUMP_BENCH_POSTGRES_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres;
a database smartpump_bench_capacity is created and dropped).
Run: `.venv/bin/python benchmarks/capacity.py [--clients 200] [--streams 200] [--seconds 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

PG_ADMIN = os.environ.get(
    "SMARTPUMP_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = "smartpump_bench_capacity"
PORT = 18790
FIRST_PASSWORD = "capacity-bench-first-9876"
PASSWORD = "capacity-bench-changed-5432"
STALL_S = 10.0
CLIENT_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Tally:
    """Statuses and latencies of one phase."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    def add(self, status: str, latency_s: float) -> None:
        """Count one answer (or failure) and its latency."""
        self.statuses[status] += 1
        self.latencies_s.append(latency_s)

    def line(self) -> str:
        """Counts and p50 / p95 / max latency in ms."""
        ordered = sorted(self.latencies_s) or [0.0]
        p50 = statistics.median(ordered) * 1000
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
        counts = ", ".join(f"{k} {self.statuses[k]}" for k in ("2xx", "429", "503", "500", "other", "failed"))
        worst = ordered[-1] * 1000
        return f"{len(ordered)} requests ({counts}); p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {worst:.0f} ms"

    def p95_s(self) -> float:
        """The 95th percentile latency in seconds."""
        ordered = sorted(self.latencies_s) or [0.0]
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _kind(status: int) -> str:
    if 200 <= status < 300:
        return "2xx"
    return str(status) if status in (429, 503, 500) else "other"


def _database() -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_NAME}"


def _drop_database() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def _server(db_url: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SMARTPUMP_DATABASE_URL": db_url,
        "SMARTPUMP_SIGNING_KEYS_DIR": str(tmp / "keys"),
        "SMARTPUMP_AUDIT_ANCHOR_DIR": str(tmp / "anchors"),
        "SMARTPUMP_LOG_LEVEL": "WARNING",
        "SMARTPUMP_ADMIN_PASSWORD": FIRST_PASSWORD,
    }
    command = [sys.executable, "-c", "from smartpump.cli import main; main()", "serve", "--port", str(PORT)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer /api/v1/health within 60 s")


def _headers(base: str) -> dict[str, str]:
    """Bearer headers of the first admin, after the forced change of its first password."""
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": FIRST_PASSWORD})
    token.raise_for_status()
    first = {"Authorization": f"Bearer {token.json()['access_token']}"}
    changed = httpx.post(
        f"{base}/api/v1/auth/password",
        json={"current_password": FIRST_PASSWORD, "new_password": PASSWORD},
        headers=first,
    )
    changed.raise_for_status()
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    token.raise_for_status()
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def _ask(client: httpx.AsyncClient, url: str, tally: Tally) -> float | None:
    """One request; returns the Retry-After to honour (None when there is none)."""
    began = time.perf_counter()
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        tally.add("failed", time.perf_counter() - began)
        return None
    tally.add(_kind(response.status_code), time.perf_counter() - began)
    retry = response.headers.get("retry-after")
    return float(retry) if retry is not None and response.status_code in (429, 503) else None


async def _idle(client: httpx.AsyncClient, base: str, count: int) -> Tally:
    tally = Tally()
    for _ in range(count):
        await _ask(client, f"{base}/api/v1/pumps", tally)
    return tally


async def _stream(client: httpx.AsyncClient, base: str, opened: list[int], stop: asyncio.Event) -> None:
    async with client.stream("GET", f"{base}/ui/stream", headers={"Accept": "text/event-stream"}) as response:
        opened.append(response.status_code)
        await stop.wait()


async def _load(client: httpx.AsyncClient, base: str, clients: int, seconds: float) -> tuple[Tally, Tally]:
    tally, health = Tally(), Tally()
    end = time.monotonic() + seconds

    async def one_client() -> None:
        while time.monotonic() < end:
            retry = await _ask(client, f"{base}/api/v1/pumps", tally)
            if retry is not None:
                await asyncio.sleep(retry)

    async def health_checks() -> None:
        while time.monotonic() < end:
            await _ask(client, f"{base}/api/v1/health", health)
            await asyncio.sleep(1)

    await asyncio.gather(health_checks(), *(one_client() for _ in range(clients)))
    return tally, health


async def _recover(client: httpx.AsyncClient, base: str, within_s: float) -> float:
    """Seconds until a lone request is answered 2xx within ``within_s`` (inf after 120 s)."""
    began = time.monotonic()
    tally = Tally()
    while time.monotonic() - began < 120:
        answered = tally.statuses["2xx"]
        await _ask(client, f"{base}/api/v1/pumps", tally)
        if tally.statuses["2xx"] > answered and tally.latencies_s[-1] <= within_s:
            return time.monotonic() - began
        await asyncio.sleep(0.05)
    return float("inf")


async def _run(base: str, headers: dict[str, str], clients: int, streams: int, seconds: float) -> int:
    limits = httpx.Limits(max_connections=clients + streams + 10, max_keepalive_connections=clients + 10)
    timeout = httpx.Timeout(CLIENT_TIMEOUT_S)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:
        idle = await _idle(client, base, 100)
        stop, opened = asyncio.Event(), list[int]()
        holders = [asyncio.create_task(_stream(client, base, opened, stop)) for _ in range(streams)]
        deadline = time.monotonic() + 60
        while len(opened) < streams and time.monotonic() < deadline and not any(h.done() for h in holders):
            await asyncio.sleep(0.05)
        began = time.monotonic()
        load, health = await _load(client, base, clients, seconds)
        load_s = time.monotonic() - began
        within_s = max(idle.p95_s() * 3, 0.05)
        recovery_s = await _recover(client, base, within_s)
        stop.set()
        await asyncio.gather(*holders, return_exceptions=True)
    streams_ok = sum(1 for s in opened if s == 200)
    print(f"idle reference : {idle.line()}")
    print(f"live streams   : {streams_ok} of {streams} open (status 200) through the load and the recovery")
    print(f"load           : {clients} clients for {load_s:.1f} s: {load.line()}")
    print(f"  throughput   : {load.statuses['2xx'] / load_s:.0f} answered 2xx/s")
    print(f"health check   : {health.line()}")
    print(f"recovery       : {recovery_s:.2f} s to a 2xx within {within_s * 1000:.0f} ms (idle p95 x 3)")
    print(f"load average   : {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    bad = [
        name
        for name, failed in (
            ("5xx other than 503", load.statuses["500"] + load.statuses["other"] > 0),
            ("requests without an answer", load.statuses["failed"] + health.statuses["failed"] > 0),
            (f"a stall (an answer slower than {STALL_S:.0f} s)", max(load.latencies_s, default=0) > STALL_S),
            ("a health check that was not 2xx", health.statuses["2xx"] != len(health.latencies_s)),
            ("streams that did not open", streams_ok != streams),
            ("no recovery", recovery_s == float("inf")),
        )
        if failed
    ]
    print("verdict        : " + ("PASS" if not bad else "FAIL: " + "; ".join(bad)))
    return 0 if not bad else 1


def main() -> int:
    """Start the server on a fresh database, run the phases, print the figures; 1 when the bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    db_url = _database()
    base = f"http://127.0.0.1:{PORT}"
    with tempfile.TemporaryDirectory() as tmp:
        server = _server(db_url, Path(tmp))
        try:
            _wait_healthy(base, server)
            headers = _headers(base)
            return asyncio.run(_run(base, headers, options.clients, options.streams, options.seconds))
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            _drop_database()


if __name__ == "__main__":
    sys.exit(main())
