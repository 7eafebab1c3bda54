"""docs/fleet.md's demo walkthrough, followed as written: the demo's pumps run the example library as
their factory v1; the demo seeds the first release (v2: the pharmacist completed the hard maxima lint
asks for, both approvers approved it, it is signed), a biomed deploys it, and currency reaches 100 % only
once the pumps activate the release's content hash. The demo fleet's event times never run ahead of the
server's clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from smartpump.cli.demo import SeedReport, seed_demo
from smartpump.clock import ManualClock
from smartpump.data import DEMO_LIBRARY
from smartpump.demo.fleet import SimFleet
from smartpump.ders.program import InfusionProgram, ProgramKind
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.library.formats import json_format
from smartpump.server.app import create_app
from smartpump.server.db.models import AuditRecord, Event, Pump
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.keys import load
from smartpump.server.services.ehr import OrderListener
from smartpump.server.settings import Settings
from smartpump.server.state import ServerState
from smartpump.server.workers import IngestWorker, InProcessLink
from tests.server.conftest import _wipe
from tests.server.ehr_support import dopamine_order

API = "/api/v1"
FLEET_DOC = Path(__file__).resolve().parents[2] / "docs" / "fleet.md"


@dataclass
class Demo:
    """The demo as `smartpump demo` seeds it, with its ingest worker driven by the test."""

    client: TestClient
    state: ServerState
    fleet: SimFleet
    worker: IngestWorker
    clock: ManualClock
    report: SeedReport

    def headers(self, username: str) -> dict[str, str]:
        """A bearer token of a seeded demo user."""
        password = next(p for name, _, p in self.report.users if name == username)
        response = self.client.post(f"{API}/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def exchange(self, rounds: int = 60) -> None:
        """Advance the fleet to the wall clock and move messages both ways until nothing is left."""
        link = self.worker.link
        assert link is not None
        for _ in range(rounds):
            self.fleet.advance()
            self.worker.poke()
            delivered = link.deliver()
            processed = self.worker.run_once()
            if delivered == 0 and processed == 0 and link.broker.in_flight == 0:
                return


def _demo(settings: Settings, engine: Engine, tmp_path: Path, *, history_s: float) -> Iterator[Demo]:
    keys = load(settings.signing_keys_dir, create_missing=True, now=datetime.now(UTC))
    link = InProcessLink()
    fleet = SimFleet(
        library=json_format.read(DEMO_LIBRARY),
        pumps=8,
        seed=1,
        speed=1.0,
        history_s=history_s,
        trust=keys.trust_store(),
        transport_for=link.pump_transport,
        link=link,
        outbox_dir=tmp_path / "outbox",
    )
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, engine=engine, sim_fleet=fleet)
    state: ServerState = app.state.smartpump
    worker = state.background[0]
    assert isinstance(worker, IngestWorker)
    worker.attach(state)
    with unit_of_work(state.sessions) as session:
        report = seed_demo(session, state, fleet)
    demo = Demo(client=TestClient(app), state=state, fleet=fleet, worker=worker, clock=clock, report=report)
    try:
        demo.exchange()
        yield demo
    finally:
        worker.transport.close()
        fleet.close()
        state.ingest_engine.dispose()
        _wipe(engine)


@pytest.fixture
def demo(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Demo]:
    """The seeded demo with a fleet that starts now."""
    yield from _demo(settings, engine, tmp_path, history_s=0)


def _deployment_body() -> dict[str, Any]:
    """The deployment request exactly as docs/fleet.md's walkthrough writes it."""
    text = FLEET_DOC.read_text(encoding="utf-8")
    match = re.search(r"`POST /api/v1/deployments` with `(\{.*?\})`", text, re.DOTALL)
    assert match is not None, "docs/fleet.md no longer shows the walkthrough's deployment request"
    return dict(json.loads(match.group(1).replace("<id>", "0").replace("\n", " ")))


def _seeded_release(demo: Demo, library_id: int, pharmacist: dict[str, str]) -> dict[str, Any]:
    """The demo's first release, read through the API: released, no lint errors, each completed entry's
    hard max twice its highest limit and said in its provenance, approved by both approvers."""
    version = demo.client.get(f"{API}/libraries/{library_id}", headers=pharmacist).json()
    findings = demo.client.get(f"{API}/libraries/{library_id}/lint", headers=pharmacist).json()
    assert [f for f in findings if f["severity"] == "error"] == []
    document = demo.client.get(f"{API}/libraries/{library_id}/document", headers=pharmacist).json()
    completed = [e for e in document["entries"] if "added by the demo seed" in e.get("provenance", "")]
    assert len(completed) == len(demo.report.completed) == 7
    for entry in completed:
        limits = dict(entry["dose"]["limits"])
        hard_max = Decimal(str(limits.pop("hard_max")))
        assert hard_max == 2 * max(Decimal(str(v)) for v in limits.values())
    with demo.state.sessions() as session:
        actions = session.execute(
            select(AuditRecord.actor, AuditRecord.action).where(AuditRecord.object_id == str(library_id))
        ).all()
    assert ("pharmacist", "library.edited") in actions
    assert {("approver", "library.approved"), ("approver2", "library.approved")} <= set(actions)
    assert ("approver", "library.released") in actions
    return dict(version)


def _currency(demo: Demo, headers: dict[str, str]) -> dict[str, Any]:
    [currency] = demo.client.get(f"{API}/fleet/library-currency", headers=headers).json()
    return dict(currency)


def test_the_demo_starts_with_v2_released_a_biomed_deploys_it_and_currency_follows_the_hash(
    demo: Demo,
) -> None:
    pharmacist, biomed = (demo.headers(u) for u in ("pharmacist", "biomed"))
    library_id = demo.report.library_id
    assert demo.report.library_version == 2
    before = _currency(demo, biomed)
    assert (before["released_version"], before["current"]) == (2, 0)
    assert before["pumps_by_version"] == {"1": len(demo.fleet.serials())}
    released = _seeded_release(demo, library_id, pharmacist)
    assert (released["version"], released["status"]) == (2, "released")

    released_currency = _currency(demo, biomed)
    assert released_currency["released_version"] == 2 and released_currency["current"] == 0
    assert released_currency["same_version_other_content"] == []

    busy = _hold_one_channel(demo)
    body = _deployment_body() | {"library_id": library_id}
    with demo.state.sessions() as session:
        facility_id = session.scalars(select(Pump.facility_id)).first()
    assert body["facility_id"] == facility_id
    created = demo.client.post(f"{API}/deployments", headers=biomed, json=body)
    assert created.status_code == 201, created.text
    deployment_id = created.json()["id"]
    for _ in range(3):
        demo.exchange()
        demo.clock.advance(body["pause_s"] + 1)
        demo.worker.poke()
    demo.exchange()
    waiting = demo.client.get(f"{API}/deployments/{deployment_id}", headers=biomed).json()
    held = [t for t in waiting["targets"] if t["pump"] == busy]
    assert held and held[0]["state"] == "accepted" and held[0]["reason"].startswith("waiting for")
    partial = _currency(demo, biomed)
    assert busy in partial["outdated_serials"]
    assert partial["current"] == len(demo.fleet.serials()) - len(partial["outdated_serials"])
    for serial in partial["outdated_serials"]:
        demo.fleet.act(serial, _free_every_channel)

    demo.exchange()
    final = _currency(demo, biomed)
    assert (final["current"], final["outdated_serials"]) == (len(demo.fleet.serials()), [])
    with demo.state.sessions() as session:
        hashes = set(session.scalars(select(Pump.library_sha256)))
    assert hashes == {final["released_sha256"]}
    done = demo.client.get(f"{API}/deployments/{deployment_id}", headers=biomed).json()
    assert done["status"] == "completed"


def _hold_one_channel(demo: Demo) -> str:
    """A nurse starts a long basic infusion on a free channel of the first pump (Adult ICU), so that pump
    holds the deployed library pending; returns its serial."""
    serial = demo.fleet.serials()[0]

    def start(pump: Any) -> None:
        cid = next(
            c for c in pump.channels if pump.channel(c).therapy is None and pump.channel(c).pending is None
        )
        program = InfusionProgram(
            entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=Decimal(10), vtbi_ml=Decimal(500)
        )
        pump.program(cid, program)
        pump.confirm(cid)
        pump.start(cid)

    demo.fleet.act(serial, start)
    return serial


def _free_every_channel(pump: Any) -> None:
    """The nurse ends every therapy and drops every pending program on the pump."""
    for cid in pump.channels:
        channel = pump.channel(cid)
        if channel.therapy is not None:
            pump.stop(cid)
        elif channel.pending is not None:
            pump.cancel(cid)


def test_the_demo_fleet_never_runs_ahead_of_the_server_clock(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    history_s = 6 * 3600.0
    for demo in _demo(settings, engine, tmp_path, history_s=history_s):
        now = datetime.now(UTC)
        with demo.state.sessions() as session:
            times = [_aware(t) for t in session.scalars(select(Event.ts))]
        assert times, "the demo fleet's history reached the server"
        assert max(times) <= now
        assert min(times) >= now - timedelta(seconds=history_s + 60)
        assert max(times) >= now - timedelta(hours=1), "the fleet caught up with the wall clock"
        viewer = demo.headers("auditor")
        overview = demo.client.get(f"{API}/cqi/overview", headers=viewer)
        assert overview.status_code == 200, overview.text
        assert overview.json()["events"] > 0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def test_an_ehr_order_to_a_demo_pump_for_its_patient_is_accepted_and_offered(demo: Demo) -> None:
    """docs/interop.md "Sending an order to a demo pump": the seeded release takes the order (no 9010)."""
    serial = next(s for s in demo.fleet.serials() if demo.fleet.pump(s).care_area.id == "ADULT_ICU")  # type: ignore[union-attr]
    with demo.fleet.lock:
        pump = demo.fleet.pump(serial)
        patient = pump.patient_id
        channel = next(c for c, state in sorted(pump.channels.items()) if state.state.value == "idle")
    assert patient is not None
    order = dopamine_order(
        serial=serial, patient=patient, channel=channel, order_id="ORD-1", prescriber="P-77^Smith^Ann"
    )
    reply = OrderListener(demo.state).answer(order)
    assert ack_code_of(reply) is AckCode.CA, reply.to_er7()
    demo.exchange()
    with demo.fleet.lock:
        pending = demo.fleet.pump(serial).channel(channel).pending
    assert pending is not None and pending.auto_programmed
    assert demo.fleet.order_behind(serial, channel, pending.program) is not None
