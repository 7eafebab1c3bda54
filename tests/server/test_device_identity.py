"""Device identity at the server (in-process transport): unknown pumps are quarantined and admitted by a
biomed, never registered automatically; the device registry refuses unenrolled and revoked pumps with
nothing stored or acked; an event for a seq held with other content is kept as a conflict, not dropped
as a duplicate; a forged jump in seq is a gap, not a reason to lose the pump's real events."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

from smartpump.cli import app as cli_app
from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog
from smartpump.server.auth import Role
from smartpump.server.db.engine import make_engine, make_session_factory
from smartpump.server.db.models import AuditRecord, Facility, Pump
from smartpump.server.db.models_fleet_ops import SeqGap
from smartpump.server.db.models_identity import QuarantinedPump, SeqConflict
from smartpump.server.pki import DevicePki
from smartpump.server.services import quarantine
from smartpump.server.settings import Settings
from smartpump.transport.messages import EventRecord, hello_message
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import Uplink
from tests.server.conftest import START, World, _wipe
from tests.server.connected_helpers import Harness, outbox_path
from tests.unit.transport.helpers import vitals_every_minute

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


class Site:
    """An app whose ingest is driven by hand, an API client and a biomed of facility ``north``."""

    def __init__(self, settings: Settings, engine: Engine, clock: ManualClock) -> None:
        self.harness = Harness(settings, engine, clock)
        self.clock = clock
        self.client = TestClient(self.harness.app, raise_server_exceptions=False)
        world = World(self.harness.app, self.client, clock)
        world.user((Role.BIOMED, self.harness.facility_id), username="bea")
        self.biomed = world.login("bea")
        world.user((Role.AUDITOR, self.harness.facility_id), username="abe")
        self.auditor = world.login("abe")

    def pump(self, tmp_path: Path, serial: str) -> tuple[EventLog, Uplink]:
        """A pump with its outbox on the in-process link."""
        uplink = Uplink(
            outbox=Outbox(outbox_path(tmp_path, serial), pump=serial),
            transport=self.harness.link.pump_transport(serial),
            clock=self.clock,
            batch_size=50,
            ack_timeout_s=5,
        )
        uplink.start()
        return EventLog(serial), uplink

    def resend(self, *uplinks: Uplink) -> None:
        """Let the ack timeout pass and step each pump, then move everything."""
        self.clock.advance(6)
        for uplink in uplinks:
            uplink.step()
        self.harness.pump_messages()

    def held(self) -> dict[str, tuple[str, int, int]]:
        """Quarantine rows not admitted: serial -> (reason, messages, events)."""
        with self.harness.session() as session:
            rows = session.scalars(select(QuarantinedPump).where(QuarantinedPump.admitted_at.is_(None)))
            return {r.serial: (r.reason, r.messages, r.events) for r in rows}


@pytest.fixture
def site(settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[Site]:
    built = Site(settings, engine, clock)
    yield built
    built.harness.close()
    _wipe(engine)


@pytest.fixture
def pki(tmp_path: Path, clock: ManualClock) -> DevicePki:
    made = DevicePki(tmp_path / "pki", clock)
    made.init_ca("north")
    return made


def test_an_unknown_pump_is_quarantined_then_admitted_by_a_biomed_and_loses_nothing(
    site: Site, tmp_path: Path
) -> None:
    log, uplink = site.pump(tmp_path, "stranger-1")
    vitals_every_minute(log, site.clock, 5)
    uplink.take(log.since(0))
    uplink.step()
    site.harness.pump_messages()

    assert site.harness.stored() == {}
    assert uplink.backlog == 5 and uplink.stats.acks == 0
    reason, messages, events = site.held()["stranger-1"]
    assert reason == "pump.unknown" and messages >= 2 and events == 5  # its hello and its batch
    listed = site.client.get("/api/v1/fleet/quarantine", headers=site.auditor)
    assert listed.status_code == 200 and [p["serial"] for p in listed.json()] == ["stranger-1"]
    with site.harness.session() as session:
        assert session.scalars(select(AuditRecord).where(AuditRecord.action == "pump.registered")).all() == []

    admitted = site.client.post(
        "/api/v1/fleet/quarantine/stranger-1/admit",
        headers=site.biomed,
        json={"facility_id": site.harness.facility_id, "model": "lvp", "care_area": "icu"},
    )
    assert admitted.status_code == 201, admitted.text
    assert admitted.json()["serial"] == "stranger-1"
    site.resend(uplink)

    assert sorted(seq for _, seq in site.harness.stored()) == [1, 2, 3, 4, 5]
    assert uplink.backlog == 0
    assert site.held() == {}
    with site.harness.session() as session:
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "pump.admitted")).one()
        assert audit.actor == "bea" and audit.object_id == "stranger-1"


def test_admission_is_refused_for_a_pump_not_held_or_outside_the_biomeds_facilities(
    site: Site, tmp_path: Path
) -> None:
    missing = site.client.post(
        "/api/v1/fleet/quarantine/nobody/admit",
        headers=site.biomed,
        json={"facility_id": site.harness.facility_id, "model": "lvp"},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "quarantine.not_found"
    log, uplink = site.pump(tmp_path, "stranger-2")
    vitals_every_minute(log, site.clock, 1)
    uplink.take(log.since(0))
    uplink.step()
    site.harness.pump_messages()
    elsewhere = site.client.post(
        "/api/v1/fleet/quarantine/stranger-2/admit",
        headers=site.biomed,
        json={"facility_id": site.harness.facility_id + 1000, "model": "lvp"},
    )
    assert elsewhere.status_code == 403
    assert "stranger-2" in site.held()
    auditor = site.client.post(
        "/api/v1/fleet/quarantine/stranger-2/admit",
        headers=site.auditor,
        json={"facility_id": site.harness.facility_id, "model": "lvp"},
    )
    assert auditor.status_code == 403
    site.harness.register("stranger-2")  # registered through the pump registry instead
    listed = site.client.get("/api/v1/fleet/quarantine", headers=site.biomed)
    assert listed.json() == [] and listed.headers["X-Total-Count"] == "0"


def test_the_device_registry_refuses_unenrolled_and_revoked_pumps_with_nothing_stored_or_acked(
    settings: Settings,
    engine: Engine,
    clock: ManualClock,
    tmp_path: Path,
    pki: DevicePki,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = Site(settings.model_copy(update={"device_registry": pki.registry_path}), engine, clock)
    try:
        site.harness.register("PUMP-0001")
        log, uplink = site.pump(tmp_path, "PUMP-0001")
        vitals_every_minute(log, clock, 3)
        uplink.take(log.since(0))
        uplink.step()
        with caplog.at_level(logging.WARNING, logger="smartpump.server.device_identity"):
            site.harness.pump_messages()
        assert site.harness.stored() == {} and uplink.stats.acks == 0 and uplink.backlog == 3
        assert "device.unenrolled" in caplog.text
        assert site.held()["PUMP-0001"][0] == "device.unenrolled"
        refused = site.client.post(
            "/api/v1/fleet/quarantine/PUMP-0001/admit",
            headers=site.biomed,
            json={"facility_id": site.harness.facility_id, "model": "lvp"},
        )
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "quarantine.not_enrolled"

        pki.enrol_pump("PUMP-0001")
        site.resend(uplink)
        assert sorted(seq for _, seq in site.harness.stored()) == [1, 2, 3] and uplink.backlog == 0

        pki.revoke("PUMP-0001", reason="lost")
        vitals_every_minute(log, clock, 2)
        uplink.take(log.since(3))
        site.resend(uplink)
        assert sorted(seq for _, seq in site.harness.stored()) == [1, 2, 3]
        assert uplink.backlog == 2
        assert site.held()["PUMP-0001"][0] == "device.revoked"
        assert site.harness.worker.gate.refused["device.revoked"] >= 1
    finally:
        site.harness.close()
        _wipe(engine)


def _record(serial: str, seq: int, clock: ManualClock, **data: object) -> EventRecord:
    return EventRecord(v=1, pump=serial, seq=seq, ts=clock.now(), channel="A", type="alarm.raised", data=data)


def test_forged_events_at_the_next_seqs_do_not_turn_the_pumps_real_events_into_duplicates(
    site: Site, clock: ManualClock
) -> None:
    """Issue 15: forged events at a pump's next seqs made its 10 real events (2 alarms) count as
    duplicates, never stored, no gap shown."""
    site.harness.register("p-1")
    ingestor = site.harness.worker.ingestor
    forged = tuple(_record("p-1", s, clock, alarm="none", priority="low") for s in range(1, 11))
    real = tuple(_record("p-1", s, clock, alarm="occlusion", priority="high") for s in range(1, 11))
    ingestor.commit([("p-1", forged)])

    result = ingestor.commit([("p-1", real)])
    assert result.committed == (True,)
    ingestor.commit([("p-1", real)])  # the pump's resend: no new conflict
    ingestor.commit([("p-1", forged)])  # a plain redelivery of what is stored: not a conflict

    with site.harness.session() as session:
        kept = session.scalars(select(SeqConflict).order_by(SeqConflict.seq)).all()
        assert [c.seq for c in kept] == list(range(1, 11))
        assert all(json.loads(c.record)["data"]["alarm"] == "occlusion" for c in kept)
    assert ingestor.stats.seq_conflicts == 10
    shown = site.client.get("/api/v1/fleet/seq-conflicts", headers=site.biomed)
    assert shown.status_code == 200 and shown.headers["X-Total-Count"] == "10"
    assert {c["pump"] for c in shown.json()} == {"p-1"}


def test_in_a_group_only_the_redelivered_events_are_compared_and_a_differing_one_is_kept(
    site: Site, clock: ManualClock
) -> None:
    """A group of fresh batches and resends (the store names the events it held already): the resend whose
    content differs is a conflict, the plain resend is not, and so is a seq the group holds twice with two
    contents; every fresh event is stored."""
    for serial in ("p-1", "p-2", "p-3"):
        site.harness.register(serial)
    ingestor = site.harness.worker.ingestor
    ingestor.commit([("p-1", (_record("p-1", 1, clock, alarm="real"),))])
    ingestor.commit([("p-2", (_record("p-2", 1, clock),))])

    result = ingestor.commit(
        [
            ("p-1", (_record("p-1", 1, clock, alarm="forged"), _record("p-1", 2, clock, alarm="next"))),
            ("p-2", (_record("p-2", 1, clock),)),
            ("p-3", (_record("p-3", 1, clock, alarm="a"),)),
            ("p-3", (_record("p-3", 1, clock, alarm="b"),)),
        ]
    )

    assert result.committed == (True, True, True, True)
    assert (result.stored, result.duplicates) == (2, 3)
    assert sorted(site.harness.stored()) == [("p-1", 1), ("p-1", 2), ("p-2", 1), ("p-3", 1)]
    with site.harness.session() as session:
        kept = session.scalars(select(SeqConflict).order_by(SeqConflict.pump_id)).all()
        assert [(c.seq, json.loads(c.record)["data"]["alarm"]) for c in kept] == [(1, "forged"), (1, "b")]
    assert ingestor.stats.seq_conflicts == 2


def test_one_group_recounts_the_gaps_of_every_pump_it_fills(site: Site, clock: ManualClock) -> None:
    ingestor = site.harness.worker.ingestor
    for serial in ("p-1", "p-2"):
        site.harness.register(serial)
        ingestor.commit([(serial, (_record(serial, 10, clock),))])

    ingestor.commit(
        [
            ("p-1", tuple(_record("p-1", s, clock) for s in range(1, 10))),
            ("p-2", tuple(_record("p-2", s, clock) for s in range(3, 6))),
        ]
    )

    with site.harness.session() as session:
        gaps = [(g.first_seq, g.last_seq, g.missing) for g in session.scalars(select(SeqGap))]
    assert gaps == [(1, 9, 6)]


def test_a_forged_jump_in_seq_is_a_gap_and_the_real_events_fill_it(site: Site, clock: ManualClock) -> None:
    site.harness.register("p-1")
    ingestor = site.harness.worker.ingestor
    ingestor.commit([("p-1", (_record("p-1", 1000, clock, alarm="forged"),))])
    with site.harness.session() as session:
        gaps = [(g.first_seq, g.last_seq, g.missing) for g in session.scalars(select(SeqGap))]
    assert gaps == [(1, 999, 999)]

    result = ingestor.commit([("p-1", tuple(_record("p-1", s, clock, alarm="real") for s in range(1, 11)))])
    assert result.stored == 10 and result.duplicates == 0
    with site.harness.session() as session:
        gaps = [(g.first_seq, g.last_seq, g.missing) for g in session.scalars(select(SeqGap))]
    assert gaps == [(1, 999, 989)]


def test_a_forged_hello_claiming_acked_events_is_a_gap_and_the_real_events_are_stored(
    site: Site, tmp_path: Path
) -> None:
    site.harness.register("p-2")
    forger = site.harness.link.pump_transport("p-2")
    forger.start(lambda e: None, lambda up: None)
    forger.send(hello_message("p-2", next_seq=41, acked_seq=40))
    site.harness.pump_messages()
    with site.harness.session() as session:
        assert [(g.first_seq, g.last_seq) for g in session.scalars(select(SeqGap))] == [(1, 40)]

    log, uplink = site.pump(tmp_path, "p-2")
    vitals_every_minute(log, site.clock, 5)
    uplink.take(log.since(0))
    uplink.step()
    site.harness.pump_messages()
    assert sorted(seq for _, seq in site.harness.stored()) == [1, 2, 3, 4, 5]
    assert uplink.backlog == 0 and site.harness.worker.ingestor.stats.duplicates == 0


def test_a_biomed_lists_and_admits_held_pumps_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SMARTPUMP_DATABASE_URL", url)
    runner = CliRunner()
    assert runner.invoke(cli_app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(url)
    clock = ManualClock(START)
    with make_session_factory(engine)() as session:
        session.add(Facility(code="north", name="north hospital", created_at=clock.now()))
        session.commit()
        quarantine.hold(session, clock, {"stranger-9": quarantine.Held("pump.unknown", 2, 30)})
        quarantine.hold(session, clock, {"lost-1": quarantine.Held("device.revoked", 1, 5)})
        session.commit()

    listed = runner.invoke(cli_app, ["pki", "quarantine", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {(p["serial"], p["reason"], p["events"]) for p in json.loads(listed.output)} == {
        ("stranger-9", "pump.unknown", 30),
        ("lost-1", "device.revoked", 5),
    }
    refused = runner.invoke(cli_app, ["pki", "admit", "lost-1", "--facility", "north", "--model", "lvp"])
    assert refused.exit_code == 2 and "quarantine.not_enrolled" in refused.output
    admitted = runner.invoke(cli_app, ["pki", "admit", "stranger-9", "--facility", "north", "--model", "lvp"])
    assert admitted.exit_code == 0, admitted.output

    with make_session_factory(engine)() as session:
        pump = session.scalars(select(Pump).where(Pump.serial == "stranger-9")).one()
        assert pump.model == "lvp"
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "pump.admitted")).one()
        assert audit.actor == "cli"
    engine.dispose()
    again = runner.invoke(cli_app, ["pki", "quarantine", "--json"])
    assert [p["serial"] for p in json.loads(again.output)] == ["lost-1"]


def test_a_rejected_pump_leaves_the_list_stays_refused_and_cannot_be_admitted(
    site: Site, tmp_path: Path
) -> None:
    log, uplink = site.pump(tmp_path, "rogue-1")
    vitals_every_minute(log, site.clock, 3)
    uplink.take(log.since(0))
    uplink.step()
    site.harness.pump_messages()
    auditor = site.client.post("/api/v1/fleet/quarantine/rogue-1/reject", headers=site.auditor)
    assert auditor.status_code == 403
    rejected = site.client.post("/api/v1/fleet/quarantine/rogue-1/reject", headers=site.biomed)
    assert rejected.status_code == 204, rejected.text
    listed = site.client.get("/api/v1/fleet/quarantine", headers=site.biomed)
    assert listed.json() == [] and listed.headers["X-Total-Count"] == "0"
    _, before, _ = site.held()["rogue-1"]
    site.resend(uplink)
    assert site.harness.stored() == {} and uplink.backlog == 3  # still refused: nothing stored or acked
    assert site.held()["rogue-1"][1] > before  # still counted, still off the list
    assert site.client.get("/api/v1/fleet/quarantine", headers=site.biomed).json() == []
    for path in ("reject", "admit"):
        again = site.client.post(
            f"/api/v1/fleet/quarantine/rogue-1/{path}",
            headers=site.biomed,
            json={"facility_id": site.harness.facility_id, "model": "lvp"},
        )
        assert again.status_code == 404 and again.json()["error"]["code"] == "quarantine.not_found"
    with site.harness.session() as session:
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "pump.rejected")).one()
        assert audit.actor == "bea" and audit.object_id == "rogue-1"
