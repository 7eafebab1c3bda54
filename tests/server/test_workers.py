"""The ingest worker's thread wakes on ``stop`` and ``poke`` instead of waiting out its poll."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from smartpump.server.db.models import Facility, Pump
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.services import commands
from smartpump.server.state import ServerState
from smartpump.server.workers import IngestWorker, InProcessLink
from tests.waiting import wait_until

# A poll far longer than any test: only a wake-up can move the thread within the test's time.
HOUR_S = 3600.0


@pytest.fixture
def worker(app: Any) -> Iterator[IngestWorker]:
    """A started ingest worker that polls once an hour, in place of the app's own."""
    state: ServerState = app.state.smartpump
    link = InProcessLink()
    started = IngestWorker(link.server_transport(), link=link, tick_s=HOUR_S)
    state.background[:] = [started]
    asyncio.run(started.start(state))
    yield started
    asyncio.run(started.stop())


def test_stop_ends_the_thread_without_waiting_for_the_poll(worker: IngestWorker) -> None:
    assert worker.running
    asyncio.run(worker.stop())
    assert not worker.running


def test_a_poke_sends_a_queued_command_without_waiting_for_the_poll(app: Any, worker: IngestWorker) -> None:
    state: ServerState = app.state.smartpump
    now = state.clock.now()
    with state.sessions() as session:
        facility = Facility(code="north", name="north hospital", created_at=now)
        session.add(facility)
        session.flush()
        session.add(
            Pump(
                facility_id=facility.id,
                serial="SP-1",
                model="lvp",
                firmware="1.0.0",
                care_area="icu",
                status="in_service",
                created_at=now,
            )
        )
        session.commit()
        record = commands.issue_command(
            session,
            state,
            pump_serial="SP-1",
            command="offer_program",
            args={
                "format": "smartpump.program-offer/1",
                "order_id": "o-1",
                "patient_id": "p-1",
                "channel": "A",
                "entry_id": "icu-dopamine",
                "kind": "new",
                "program_kind": "continuous",
                "route": "IV",
                "rate_ml_per_h": "5",
            },
            actor="nurse",
        )

    def status() -> str:
        with state.sessions() as session:
            return session.scalars(select(PumpCommand.status).where(PumpCommand.nonce == record.nonce)).one()

    wait_until(lambda: status() == "sent", "the poked worker to send the queued command")
