"""Helpers for the connected-fleet tests: a migrated app with its ingest worker driven by hand."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from smartpump.clock import Clock, ManualClock, WallClock
from smartpump.demo.fleet import SimFleet
from smartpump.server.app import create_app
from smartpump.server.db.models import Event, Facility, Pump
from smartpump.server.keys import load
from smartpump.server.settings import Settings
from smartpump.server.state import ServerState
from smartpump.server.workers import IngestWorker, InProcessLink
from tests.factories import make_library
from tests.server.conftest import _wipe


class Harness:
    """An app whose ingest worker runs on demand (``pump_messages``), with a facility to register pumps in."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Clock,
        *,
        sim_fleet: SimFleet | None = None,
        register_facility: bool = True,
    ) -> None:
        self.app = create_app(settings, clock=clock, engine=engine, sim_fleet=sim_fleet)
        self.fleet = sim_fleet
        self.state: ServerState = self.app.state.smartpump
        worker = self.state.background[0]
        assert isinstance(worker, IngestWorker) and worker.link is not None
        self.worker = worker
        self.link: InProcessLink = worker.link
        worker.attach(self.state)
        with self.state.sessions() as session:
            existing = session.scalars(select(Facility).where(Facility.code == "north")).first()
            if existing is None or register_facility:
                existing = Facility(code="north", name="north hospital", created_at=clock.now())
                session.add(existing)
                session.commit()
            self.facility_id = existing.id

    def register(
        self, serial: str, *, care_area: str = "icu", model: str = "lvp", library: int | None = None
    ) -> None:
        """A pump in the registry (direct insert)."""
        with self.state.sessions() as session:
            session.add(
                Pump(
                    facility_id=self.facility_id,
                    serial=serial,
                    model=model,
                    firmware="1.0.0",
                    care_area=care_area,
                    installed_library_version=library,
                    status="in_service",
                    created_at=self.state.clock.now(),
                )
            )
            session.commit()

    def pump_messages(self, rounds: int = 50, *, step: Callable[[], Any] | None = None) -> None:
        """Move messages both ways until nothing is left to deliver or process."""
        for _ in range(rounds):
            if step is not None:
                step()
            delivered = self.link.deliver()
            processed = self.worker.run_once()
            if delivered == 0 and processed == 0 and self.link.broker.in_flight == 0:
                return

    def stored(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Every stored event as (pump, seq) -> {type, ts, channel, data}."""
        with self.state.sessions() as session:
            rows = session.execute(select(Event, Pump.serial).join(Pump, Pump.id == Event.pump_id)).all()
            return {
                (serial, e.seq): {
                    "type": e.type,
                    "ts": e.ts,
                    "channel": e.channel,
                    "data": json.loads(e.data),
                }
                for e, serial in rows
            }

    def session(self) -> Session:
        """A new session."""
        return self.state.sessions()

    def close(self) -> None:
        """Close the worker's transport and the ingest engine's connections."""
        self.worker.transport.close()
        self.state.ingest_engine.dispose()


def wire(events: list[Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Pump events in the shape ``Harness.stored`` returns."""
    result = {}
    for event in events:
        doc = event.to_dict()
        result[(doc["pump"], doc["seq"])] = {
            "type": doc["type"],
            "ts": datetime.fromisoformat(doc["ts"]),
            "channel": doc["channel"],
            "data": json.loads(json.dumps(doc["data"], sort_keys=True, default=str)),
        }
    return result


def outbox_path(tmp_path: Path, serial: str) -> Path:
    """Where a test pump keeps its outbox."""
    return tmp_path / f"{serial}.outbox.sqlite"


@contextmanager
def linked_fleet(
    settings: Settings, engine: Engine, tmp_path: Path, *, hospital: str
) -> Iterator[tuple[Harness, SimFleet]]:
    """Three simulated pumps (the factory library v1 of ``hospital``) linked to an app on a wall clock and
    registered in care area ``icu``; the database is wiped afterwards."""
    keys = load(settings.signing_keys_dir, create_missing=True, now=datetime.now(UTC))
    link = InProcessLink()
    fleet = SimFleet(
        library=make_library(hospital_id=hospital),
        pumps=3,
        seed=3,
        speed=1.0,
        trust=keys.trust_store(),
        transport_for=link.pump_transport,
        link=link,
        outbox_dir=tmp_path / "outbox",
    )
    harness = Harness(settings, engine, WallClock(), sim_fleet=fleet)
    for serial in fleet.serials():
        harness.register(serial, care_area="icu", model=fleet.pump(serial).caps.model.value, library=1)
    harness.pump_messages(step=fleet.advance)
    try:
        yield harness, fleet
    finally:
        harness.close()
        _wipe(engine)


@pytest.fixture
def harness(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[Harness]:
    """An app on the test database with its ingest worker driven by hand; every table emptied after."""
    built = Harness(settings, engine, clock)
    yield built
    built.close()
    _wipe(engine)
