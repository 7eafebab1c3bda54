"""Patient association on the server: from the pump's events, the API and an order's PID; the documentation
names that patient with its original assigning authority, identifier type and name, and validates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from smartpump.interop.hl7v2.message import Message, parse
from smartpump.interop.hl7v2.validation import structure_problems
from smartpump.server.auth import Role
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.ingest import Ingestor
from smartpump.server.services.ehr import AutoDocumentation, EhrConfig, OrderListener, queue_state
from smartpump.transport.messages import EventRecord
from tests.server.conftest import World
from tests.server.ehr_support import SERIAL, documentation_pass, dopamine_order, ehr_site, segments
from tests.server.test_ehr_documentation import Events

DESTINATION = "ehr.patients:2575"
DOE = {
    "patient_id": "98765",
    "authority": "HOSP",
    "id_type": "MR",
    "family_name": "Doe",
    "given_name": "John",
}


def _valid(payloads: list[str]) -> list[str]:
    for payload in payloads:
        assert structure_problems(parse(payload)) == (), payload
    return payloads


def _pid(payload: str) -> tuple[str, str]:
    [pid] = segments(payload, "PID")
    return pid[3], pid[5]


def _order(pid: str) -> Message:
    """The dopamine order with its PID segment replaced."""
    text = dopamine_order().to_er7()
    return parse("\r".join(pid if line.startswith("PID|") else line for line in text.split("\r")))


def _pump_reports(world: World, seq: int, **data: Any) -> None:
    record = EventRecord(
        v=1, pump=SERIAL, seq=seq, ts=world.clock.now(), channel=None, type="patient.associated", data=data
    )
    Ingestor(world.state).commit([(SERIAL, (record,))])


def _manual_start(world: World, events: Events) -> None:
    events.add("infusion.started", drug="DOPamine", rate_ml_per_h="10", auto_programmed=False)


def test_a_bedside_association_names_the_patient_in_documentation_of_manual_infusions(world: World) -> None:
    ehr_site(world)
    _pump_reports(world, 1, **DOE, source="scan", previous_patient_id=None)
    events = Events(world)
    events.seq = 1
    world.clock.advance(5)
    _manual_start(world, events)
    [payload] = _valid(documentation_pass(world, DESTINATION))
    assert _pid(payload) == ("98765^^^HOSP^MR", "Doe^John^^^^^L")


def _status_reports(world: World) -> list[str]:
    """One documentation pass with periodic status on: the PCD-01 (ORU^R01) payloads queued."""
    AutoDocumentation(
        state=world.state, destination=DESTINATION, config=EhrConfig(status_interval=timedelta(minutes=1))
    ).run_once()
    with world.state.sessions() as session:
        payloads = [row.payload for row in queue_state(session, DESTINATION)]
    return [p for p in payloads if "|ORU^R01^ORU_R01|" in p]


def _ingested_manual_start(world: World, seq: int) -> None:
    """A manual dopamine start as the pump reports it (through ingest, so the channel's state follows)."""
    record = EventRecord(
        v=1,
        pump=SERIAL,
        seq=seq,
        ts=world.clock.now(),
        channel="A",
        type="infusion.started",
        data={"drug": "DOPamine", "rate_ml_per_h": "10", "vtbi_ml": "250", "auto_programmed": False},
    )
    Ingestor(world.state).commit([(SERIAL, (record,))])


def test_a_manual_infusion_for_an_associated_patient_gets_its_periodic_status(world: World) -> None:
    # the PCD-01 status used to go out only for infusions started from an order
    ehr_site(world)
    _pump_reports(world, 1, **DOE, source="scan", previous_patient_id=None)
    world.clock.advance(5)
    _ingested_manual_start(world, 2)
    [status] = _valid(_status_reports(world))
    assert _pid(status) == ("98765^^^HOSP^MR", "Doe^John^^^^^L")
    assert "DOPamine" in status


def test_a_manual_infusion_without_a_patient_gets_no_periodic_status(world: World) -> None:
    ehr_site(world)
    _ingested_manual_start(world, 1)
    assert _status_reports(world) == []


def test_a_malformed_association_event_is_stored_but_not_applied(world: World) -> None:
    site = ehr_site(world)
    _pump_reports(world, 1, patient_id="", authority="HOSP", source="scan")
    response = world.client.get(f"/api/v1/pumps/{SERIAL}/patient", headers=site.nurse)
    assert response.status_code == 404 and response.json()["error"]["code"] == "patient.not_associated"


def test_without_a_known_patient_the_patient_group_is_left_out(world: World) -> None:
    ehr_site(world)
    _manual_start(world, Events(world))
    [payload] = _valid(documentation_pass(world, DESTINATION))
    assert segments(payload, "PID") == [] and segments(payload, "PV1") == []


def test_an_order_keeps_its_assigning_authority_type_and_name(world: World) -> None:
    ehr_site(world)
    OrderListener(world.state).answer(_order("PID|||98765^^^HOSP^MR||Doe^John^^^^^L"))
    events = Events(world)
    events.add("infusion.started", drug="DOPamine", rate_ml_per_h="31.9", auto_programmed=True)
    [payload] = _valid(documentation_pass(world, DESTINATION))
    assert _pid(payload) == ("98765^^^HOSP^MR", "Doe^John^^^^^L")


def test_an_order_without_a_name_follows_the_pcd_convention_for_an_unknown_name(world: World) -> None:
    ehr_site(world)
    OrderListener(world.state).answer(_order("PID|||98765^^^HOSP^MR"))
    Events(world).add("infusion.started", drug="DOPamine", rate_ml_per_h="31.9", auto_programmed=True)
    [payload] = _valid(documentation_pass(world, DESTINATION))
    assert _pid(payload) == ("98765^^^HOSP^MR", "^^^^^^U")


def test_an_order_to_a_pump_without_a_patient_associates_the_orders_patient(world: World) -> None:
    site = ehr_site(world)
    OrderListener(world.state).answer(_order("PID|||98765^^^HOSP^MR||Doe^John^^^^^L"))
    body = world.client.get(f"/api/v1/pumps/{SERIAL}/patient", headers=site.nurse).json()
    assert (body["patient_id"], body["authority"], body["family_name"], body["source"]) == (
        "98765",
        "HOSP",
        "Doe",
        "order",
    )


def test_the_api_associates_audits_and_sends_the_association_to_the_pump(world: World) -> None:
    site = ehr_site(world)
    put = world.client.put(f"/api/v1/pumps/{SERIAL}/patient", headers=site.nurse, json=DOE)
    assert put.status_code == 200, put.text
    assert put.json()["source"] == "server" and put.json()["authority"] == "HOSP"
    with world.state.sessions() as session:
        [command] = session.scalars(select(PumpCommand)).all()
        assert command.command == "patient.associate"
    world.clock.advance(2)
    _manual_start(world, Events(world))
    [payload] = _valid(documentation_pass(world, DESTINATION))
    assert _pid(payload) == ("98765^^^HOSP^MR", "Doe^John^^^^^L")


def test_the_api_refuses_malformed_identities_and_other_roles(world: World) -> None:
    site = ehr_site(world)
    url = f"/api/v1/pumps/{SERIAL}/patient"
    for bad in ({**DOE, "patient_id": ""}, {**DOE, "id_type": "ZZ"}, {**DOE, "family_name": "a|b"}, {"x": 1}):
        response = world.client.put(url, headers=site.nurse, json=bad)
        assert response.status_code in (400, 422), (bad, response.text)
    assert world.client.put(url, headers=site.biomed, json=DOE).status_code == 403
    other = world.as_role(Role.NURSE, world.facility("south"))
    assert world.client.put(url, headers=other, json=DOE).status_code == 404
    assert world.client.get(url, headers=site.nurse).status_code == 404


def test_the_outbound_validation_fixture_sees_every_queued_message(
    world: World, every_outbound_hl7_message_validates: list[Message]
) -> None:
    ehr_site(world)
    _manual_start(world, Events(world))
    payloads = documentation_pass(world, DESTINATION)
    assert [m.to_er7() for m in every_outbound_hl7_message_validates] == payloads


def test_a_rate_change_documents_the_dose_in_the_unit_of_its_own_event(world: World) -> None:
    ehr_site(world)
    events = Events(world)
    events.add("infusion.started", drug="DOPamine", rate_ml_per_h="31.9", dose="10", dose_unit="mcg/kg/min")
    events.add(
        "rate.changed",
        old_rate_ml_per_h="31.9",
        new_rate_ml_per_h="47.8",
        dose="2",
        dose_unit="mg/h",
        cause="titration",
    )
    start, stop, restart = _valid(documentation_pass(world, DESTINATION))

    def dose(payload: str) -> tuple[str, str]:
        [obx] = [f for f in segments(payload, "OBX") if "MDC_RATE_DOSE" in f[3]]
        return obx[5], obx[6].split("^")[1]

    per_kg_min = ("10", "MDC_DIM_MICRO_G_PER_KG_PER_MIN")
    assert dose(start) == per_kg_min and dose(stop) == per_kg_min
    assert dose(restart) == ("2", "MDC_DIM_MILLI_G_PER_HR")
