"""Ingest keeps going and says when it does not (over the in-process transport, with the worker thread of
a running app): a message nesting 1,000 arrays is refused and stops nothing; a worker step the store
fails is restarted with backoff and reported by /health; a batch the store refuses holds back no other;
a stalled worker is reported; and later batches are stored and acked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from smartpump.clock import ManualClock
from smartpump.server.app import create_app
from smartpump.server.db.models import Event, Facility, Pump
from smartpump.server.db.models_fleet_ops import PumpLink
from smartpump.server.settings import Settings
from smartpump.server.workers import IngestWorker, InProcessLink, LockedTransport
from smartpump.transport.messages import (
    Envelope,
    EventRecord,
    Kind,
    ack_of,
    events_message,
    hello_message,
)
from tests.server.conftest import START, TestClient, _wipe
from tests.server.connected_helpers import Harness
from tests.waiting import wait_until

WAIT_S = 20.0


class LiveFleet:
    """Pumps on the in-process link of a running app, whose worker thread ingests what they send."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.state = client.app.state.smartpump  # type: ignore[attr-defined]
        worker = self.state.background[0]
        assert isinstance(worker, IngestWorker) and worker.link is not None
        self.worker = worker
        self.link: InProcessLink = worker.link
        self.acked: dict[str, int] = {}
        with self.state.sessions() as session:
            facility = Facility(code="north", name="north hospital", created_at=START)
            session.add(facility)
            session.commit()
            self.facility_id = facility.id

    def pump(self, serial: str) -> tuple[int, LockedTransport]:
        """A registered pump (its database id) and its connected endpoint, which records acks."""
        with self.state.sessions() as session:
            pump = Pump(
                facility_id=self.facility_id,
                serial=serial,
                model="lvp",
                firmware="1.0.0",
                status="in_service",
                created_at=START,
            )
            session.add(pump)
            session.commit()
            pump_id = pump.id
        transport = self.link.pump_transport(serial)
        transport.start(self._received, lambda up: None)
        self.wait_until(lambda: self._online(pump_id), f"pump {serial} to be seen online")
        return pump_id, transport

    def _online(self, pump_id: int) -> bool:
        with self.state.sessions() as session:
            return session.get(PumpLink, pump_id) is not None

    def _received(self, envelope: Envelope) -> None:
        if envelope.kind is Kind.ACK:
            self.acked[envelope.pump] = max(self.acked.get(envelope.pump, 0), ack_of(envelope))

    def send(self, transport: LockedTransport, envelope: Envelope) -> None:
        """Publish and deliver to the server."""
        assert transport.send(envelope)
        self.link.deliver()

    def stored(self, serial: str) -> list[int]:
        """The seqs stored for a pump."""
        with self.state.sessions() as session:
            query = select(Event.seq).join(Pump, Pump.id == Event.pump_id).where(Pump.serial == serial)
            return sorted(session.scalars(query))

    def health(self) -> dict[str, Any]:
        """``GET /api/v1/health``."""
        response = self.client.get("/api/v1/health")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def wait_until(self, predicate: Callable[[], bool], what: str) -> None:
        """Deliver messages both ways until ``predicate`` holds; fail with ``what`` and the health after
        ``WAIT_S``."""
        wait_until(
            predicate,
            what,
            timeout_s=WAIT_S,
            step=self.link.deliver,
            explain=lambda: f"health: {self.health()}",
        )


def _batch(serial: str, first: int, last: int) -> Envelope:
    return events_message(
        serial,
        [
            EventRecord(
                v=1,
                pump=serial,
                seq=seq,
                ts=START + timedelta(seconds=seq),
                channel="A",
                type="vitals.recorded",
                data={"spo2_percent": "97.5"},
            )
            for seq in range(first, last + 1)
        ],
    )


def _deep_batch(serial: str, levels: int) -> bytes:
    """An events message whose data nests ``levels`` arrays (written as text: encoders recurse too)."""
    raw = _batch(serial, 1, 1).encode()
    return raw.replace(b'{"spo2_percent":"97.5"}', b'{"deep":' + b"[" * levels + b"]" * levels + b"}")


@contextmanager
def refused_writes(engine: Engine, table: str, *, pump_id: int | None = None) -> Iterator[None]:
    """While open, the database itself refuses writes to ``table`` (of one pump, if given): a real failure
    of the store, made with a trigger, not a stand-in for any of our code."""
    when = "" if pump_id is None else f"WHEN (NEW.pump_id = {int(pump_id)})"
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            for operation in ("INSERT", "UPDATE"):
                connection.execute(
                    text(
                        f"CREATE TRIGGER refuse_{operation.lower()} BEFORE {operation} ON {table} {when} "
                        "BEGIN SELECT RAISE(ABORT, 'write refused by the test'); END"
                    )
                )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'write refused by the test'; END $$"
                )
            )
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse_write BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW {when} "
                    "EXECUTE FUNCTION refuse_write()"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER refuse_insert"))
                connection.execute(text("DROP TRIGGER refuse_update"))
            else:
                connection.execute(text(f"DROP TRIGGER refuse_write ON {table}"))
                connection.execute(text("DROP FUNCTION refuse_write()"))


@contextmanager
def held_write_lock(engine: Engine) -> Iterator[None]:
    """While open, another connection holds the lock every event insert needs (the worker waits on it)."""
    connection = engine.connect()
    try:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.begin()
            connection.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
        yield
    finally:
        connection.rollback()
        connection.close()


def test_a_message_nesting_a_thousand_arrays_is_refused_and_ingest_goes_on(client: TestClient) -> None:
    fleet = LiveFleet(client)
    _, pump = fleet.pump("p-1")
    server = fleet.worker.transport
    assert isinstance(server, LockedTransport)
    deep = _deep_batch("p-1", 1000)
    assert len(deep) < 2500
    with fleet.link.lock:
        server.inner.receive(deep)  # what the broker does with every message's bytes
    assert server.rejected == 1
    fleet.send(pump, _batch("p-1", 1, 3))
    fleet.wait_until(lambda: fleet.acked.get("p-1") == 3, "the batch after the refused one to be acked")
    assert fleet.stored("p-1") == [1, 2, 3]
    assert fleet.health() | {"version": "-"} == {
        "status": "ok",
        "database": "ok",
        "version": "-",
        "services": {"ingest": "ok"},
    }


def test_a_worker_step_the_store_fails_is_restarted_reported_and_later_batches_are_stored(
    client: TestClient, engine: Engine
) -> None:
    fleet = LiveFleet(client)
    _, pump = fleet.pump("p-1")
    with refused_writes(engine, "pump_links"):
        fleet.send(pump, hello_message("p-1", next_seq=1, acked_seq=0))
        fleet.wait_until(lambda: fleet.worker.restarts == 1, "the failed worker to be restarted")
        health = fleet.health()
        assert health["status"] == "degraded"
        assert re.fullmatch(
            r"failing \(1 restarts\): \w+Error: .*write refused by the test.*",
            health["services"]["ingest"],
            re.S,
        )
        metrics = client.get("/metrics").text
        assert 'smartpump_worker_restarts_total{worker="ingest"} 1.0' in metrics
        assert fleet.worker.running
    fleet.send(pump, _batch("p-1", 1, 2))
    fleet.wait_until(lambda: fleet.acked.get("p-1") == 2, "a batch after the failure to be acked")
    assert fleet.stored("p-1") == [1, 2]
    # the ack goes out inside the step; the failure clears when the step ends: wait for that state
    fleet.wait_until(lambda: fleet.health()["services"] == {"ingest": "ok"}, "ingest to report ok again")


def test_a_batch_the_store_refuses_holds_back_no_other_batch(
    settings: Settings, clock: ManualClock, engine: Engine
) -> None:
    harness = Harness(settings, engine, clock)
    try:
        acked: dict[str, int] = {}
        transports = []
        for serial in ("p-refused", "p-0", "p-1", "p-2"):
            harness.register(serial)
            transport = harness.link.pump_transport(serial)
            transport.start(
                lambda e: acked.__setitem__(e.pump, ack_of(e)) if e.kind is Kind.ACK else None,
                lambda up: None,
            )
            transports.append(transport)
        harness.pump_messages()
        with harness.session() as session:
            refused_id = session.scalars(select(Pump.id).where(Pump.serial == "p-refused")).one()
        with refused_writes(engine, "events", pump_id=refused_id):
            for transport in transports:
                assert transport.send(_batch(transport.inner.name, 1, 2))
            harness.link.deliver()
            assert harness.worker.run_once() == 4  # one group of four batches
            harness.link.deliver()
        assert harness.worker.failed_commits == 2  # the group, then the refused batch alone
        assert acked == {"p-0": 2, "p-1": 2, "p-2": 2}
        stored = harness.stored()
        assert sorted(stored) == [(f"p-{n}", seq) for n in range(3) for seq in (1, 2)]
    finally:
        harness.close()
        _wipe(engine)


def test_a_stalled_worker_is_reported_until_it_makes_progress(
    settings: Settings, clock: ManualClock, engine: Engine, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"ingest_stall_after_s": 1}), clock=clock, engine=engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            fleet = LiveFleet(client)
            _, pump = fleet.pump("p-1")
            with held_write_lock(engine):
                fleet.send(pump, _batch("p-1", 1, 1))
                fleet.wait_until(
                    lambda: fleet.health()["services"]["ingest"].startswith("stalled: one step running"),
                    "a step waiting on the lock to be reported",
                )
                assert fleet.health()["status"] == "degraded"
            fleet.wait_until(lambda: fleet.acked.get("p-1") == 1, "the batch to be stored once the lock goes")
            fleet.wait_until(lambda: fleet.health()["services"] == {"ingest": "ok"}, "ingest to report ok")
    finally:
        _wipe(engine)
