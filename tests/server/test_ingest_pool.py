"""Ingest keeps its own connections (issue 15, capacity): with every connection of the request engine
taken, as a burst of requests or live streams would take them, the ingest worker still stores and acks
pump events at once through its own engine."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, QueuePool

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog
from smartpump.server.db.engine import BACKGROUND_CONNECTIONS, INGEST_CONNECTIONS, POOL_TIMEOUT_S, make_engine
from smartpump.server.settings import Settings
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import Uplink
from tests.server.conftest import _wipe
from tests.server.connected_helpers import Harness, outbox_path, wire
from tests.unit.transport.helpers import vitals_every_minute

REQUEST_SLOTS = 2


def _in_use(engine: Engine) -> int:
    """Connections of the engine's pool checked out now."""
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def test_ingest_stores_and_acks_while_the_request_pool_is_exhausted(
    database_url: str, settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    requests = make_engine(database_url, request_slots=REQUEST_SLOTS)
    harness = Harness(settings.model_copy(update={"max_concurrent_requests": REQUEST_SLOTS}), requests, clock)
    held = []
    try:
        harness.register("p-1")
        log = EventLog("p-1")
        uplink = Uplink(
            outbox=Outbox(outbox_path(tmp_path, "p-1"), pump="p-1"),
            transport=harness.link.pump_transport("p-1"),
            clock=clock,
            batch_size=50,
            ack_timeout_s=5,
        )
        uplink.start()
        vitals_every_minute(log, clock, 30, alarm_every=10)
        uplink.take(log.since(0))
        held = [requests.connect() for _ in range(REQUEST_SLOTS + BACKGROUND_CONNECTIONS)]
        assert _in_use(requests) == REQUEST_SLOTS + BACKGROUND_CONNECTIONS  # nothing left to borrow
        began = time.monotonic()
        uplink.step()
        harness.pump_messages()
        elapsed = time.monotonic() - began
        assert harness.worker.failed_commits == 0
        assert uplink.backlog == 0  # stored and acked while no request connection was free
        assert elapsed < POOL_TIMEOUT_S / 2  # never waited for the request pool
        assert _in_use(harness.state.ingest_engine) <= INGEST_CONNECTIONS
        for connection in held:
            connection.close()
        held = []
        assert harness.stored() == wire(log.since(0))
    finally:
        for connection in held:
            connection.close()
        harness.close()
        _wipe(requests)
        requests.dispose()
