"""FHIR R4 in the server: Device, MedicationAdministration and Observation views (validated, role- and
facility-checked, PHI reads audited) and MedicationRequest auto-programming through the PCD-03 path."""

from __future__ import annotations

import copy
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.medicationrequest import MedicationRequest

from smartpump.server.auth import Role
from smartpump.server.services.ehr import OrderListener, eui64
from tests.server.conftest import World
from tests.server.ehr_support import SERIAL, dopamine_order, ehr_site
from tests.server.test_ehr_documentation import Events

REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "identifier": [{"system": "urn:smartpump:order-id", "value": "MR-1"}],
    "status": "active",
    "intent": "order",
    "contained": [
        {
            "resourceType": "Medication",
            "id": "med",
            "code": {"coding": [{"code": "1234", "display": "Dopamine"}]},
            "ingredient": [
                {
                    "itemCodeableConcept": {"text": "dopamine"},
                    "strength": {
                        "numerator": {
                            "value": 400,
                            "unit": "mg",
                            "system": "http://unitsofmeasure.org",
                            "code": "mg",
                        },
                        "denominator": {
                            "value": 250,
                            "unit": "mL",
                            "system": "http://unitsofmeasure.org",
                            "code": "mL",
                        },
                    },
                }
            ],
        },
        {
            "resourceType": "Observation",
            "id": "wt",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "valueQuantity": {"value": 85, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        },
    ],
    "medicationReference": {"reference": "#med"},
    "subject": {"reference": "Patient/98765"},
    "performer": {"reference": f"Device/{SERIAL}"},
    "supportingInformation": [{"reference": "#wt"}],
    "dosageInstruction": [
        {
            "doseAndRate": [
                {
                    "rateQuantity": {
                        "value": 10,
                        "unit": "ug/kg/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "ug/kg/min",
                    }
                }
            ]
        }
    ],
}


def _request(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(REQUEST)
    body.update(changes)
    return body


def test_device_is_a_valid_fhir_device_with_serial_and_eui64(world: World) -> None:
    site = ehr_site(world)
    response = world.client.get(f"/api/v1/fhir/Device/{SERIAL}", headers=site.nurse)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    device = Device.model_validate(response.json())
    assert device.serialNumber == SERIAL
    assert {"system": "urn:ieee:eui-64", "value": eui64(SERIAL)} in response.json()["identifier"]


def test_device_of_another_facility_is_not_found(world: World) -> None:
    ehr_site(world)
    south = world.facility("south")
    outsider = world.as_role(Role.NURSE, south, username="south-nurse")
    assert world.client.get(f"/api/v1/fhir/Device/{SERIAL}", headers=outsider).status_code == 404


def test_device_search_by_eui64_includes_channel_metrics(world: World) -> None:
    site = ehr_site(world)
    Events(world).add("infusion.stopped", infused_ml="1", reason="user")
    with world.state.sessions() as session:
        from smartpump.server.services import fleet

        fleet.record_status(
            session,
            world.clock,
            SERIAL,
            seen_at=world.clock.now(),
            channels=[fleet.ChannelReport(channel="A", state="idle")],
        )
        session.commit()
    response = world.client.get(
        "/api/v1/fhir/Device", headers=site.nurse, params={"identifier": f"urn:ieee:eui-64|{eui64(SERIAL)}"}
    )
    bundle = Bundle.model_validate(response.json())
    assert bundle.total == 1
    kinds = [e.resource.__resource_type__ for e in bundle.entry or [] if e.resource is not None]
    assert kinds == ["Device", "DeviceMetric", "DeviceMetric", "DeviceMetric"]


def test_medication_request_auto_programs_the_pump(world: World) -> None:
    site = ehr_site(world)
    response = world.client.post("/api/v1/fhir/MedicationRequest", headers=site.nurse, json=_request())
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active"
    from sqlalchemy import select

    from smartpump.server.db.models_fleet_ops import PumpCommand

    with world.state.sessions() as session:
        [command] = session.scalars(select(PumpCommand)).all()
        assert command.command == "program.offer"
    again = world.client.post("/api/v1/fhir/MedicationRequest", headers=site.nurse, json=_request())
    assert again.status_code == 200
    with world.state.sessions() as session:
        assert len(session.scalars(select(PumpCommand)).all()) == 1


def test_refused_medication_request_answers_an_operation_outcome_with_the_piv_code(world: World) -> None:
    site = ehr_site(world)
    body = _request()
    body["contained"][0]["code"] = {"coding": [{"code": "9999", "display": "Heparin"}]}
    response = world.client.post("/api/v1/fhir/MedicationRequest", headers=site.nurse, json=body)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "9010"


def test_medication_request_for_a_pump_in_another_facility_is_unknown_9001(world: World) -> None:
    ehr_site(world)
    south = world.facility("south")
    outsider = world.as_role(Role.NURSE, south, username="south-nurse")
    response = world.client.post("/api/v1/fhir/MedicationRequest", headers=outsider, json=_request())
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == "9001"


def test_not_a_medication_request_is_a_400_outcome(world: World) -> None:
    site = ehr_site(world)
    response = world.client.post("/api/v1/fhir/MedicationRequest", headers=site.nurse, json={"a": 1})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def _administered(world: World) -> Events:
    OrderListener(world.state).answer(dopamine_order())
    events = Events(world)
    events.add("infusion.started", drug="DOPamine", rate_ml_per_h="31.9", dose="10", auto_programmed=True)
    world.clock.advance(600)
    events.add("infusion.stopped", infused_ml="5.3", reason="user")
    return events


def test_medication_administration_by_patient_names_the_pump_and_the_order(world: World) -> None:
    site = ehr_site(world)
    _administered(world)
    response = world.client.get(
        "/api/v1/fhir/MedicationAdministration", headers=site.nurse, params={"patient": "Patient/98765"}
    )
    bundle = Bundle.model_validate(response.json())
    [entry] = bundle.entry or []
    resource = response.json()["entry"][0]["resource"]
    assert resource["request"] == {"reference": "MedicationRequest/12345"}
    assert resource["device"] == [{"reference": f"Device/{SERIAL}"}]
    assert resource["status"] == "stopped"
    assert entry.resource is not None


def test_medication_administration_search_by_order_and_date(world: World) -> None:
    site = ehr_site(world)
    _administered(world)
    url = "/api/v1/fhir/MedicationAdministration"
    found = world.client.get(url, headers=site.nurse, params={"request": "12345", "date": "ge2026-03-02"})
    assert found.json()["total"] == 1
    later = world.client.get(url, headers=site.nurse, params={"date": "ge2026-03-03"})
    assert later.json()["total"] == 0
    assert world.client.get(url, headers=site.nurse, params={"patient": "other"}).json()["total"] == 0


def test_phi_reads_are_audited_and_refused_to_biomed(world: World) -> None:
    site = ehr_site(world)
    _administered(world)
    url = "/api/v1/fhir/MedicationAdministration"
    assert world.client.get(url, headers=site.biomed).status_code == 403
    world.client.get(url, headers=site.nurse, params={"patient": "98765"})
    auditor = world.as_role(Role.AUDITOR, None, username="ehr-auditor")
    records = world.client.get("/api/v1/audit", headers=auditor, params={"action": "phi.fhir_read"}).json()
    assert [r["actor"] for r in records] == ["ehr-nurse"]
    assert records[0]["details"]["patients_returned"] == ["98765"]


def test_observations_of_a_pump_are_its_readings(world: World) -> None:
    site = ehr_site(world)
    _administered(world)
    response = world.client.get("/api/v1/fhir/Observation", headers=site.nurse, params={"device": SERIAL})
    bundle = Bundle.model_validate(response.json())
    values = [
        (e["resource"]["code"]["coding"][0]["display"], e["resource"]["valueQuantity"]["value"])
        for e in response.json()["entry"]
    ]
    assert values == [("MDC_FLOW_FLUID_PUMP", 31.9), ("MDC_VOL_FLUID_DELIV_TOTAL", 5.3)]
    assert bundle.total == 2


def test_bad_date_search_is_a_422(world: World) -> None:
    site = ehr_site(world)
    response = world.client.get("/api/v1/fhir/Observation", headers=site.nurse, params={"date": "gexyz"})
    assert response.status_code == 422


def _request_status(world: World, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    """GET the order as a MedicationRequest, validated by fhir.resources."""
    response = world.client.get(f"/api/v1/fhir/MedicationRequest/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    MedicationRequest.model_validate(response.json())
    resource: dict[str, Any] = response.json()
    return resource


def test_a_medication_request_status_follows_its_order_offered_started_stopped(world: World) -> None:
    site = ehr_site(world)
    OrderListener(world.state).answer(dopamine_order(prescriber="P-77^Smith^Ann^^^Dr"))
    offered = _request_status(world, site.nurse, "12345")
    assert offered["status"] == "active"
    assert offered["requester"] == {"reference": "Practitioner/P-77", "display": "Dr Ann Smith"}
    events = Events(world)
    events.add("infusion.started", drug="DOPamine", rate_ml_per_h="31.9", dose="10", auto_programmed=True)
    started = _request_status(world, site.nurse, "12345")
    assert started["status"] == "active" and "statusReason" not in started
    world.clock.advance(600)
    events.add("infusion.stopped", infused_ml="5.3", reason="user")
    stopped = _request_status(world, site.nurse, "12345")
    assert stopped["status"] == "stopped"
    assert stopped["subject"] == {"reference": "Patient/98765"}
    assert stopped["identifier"] == [{"system": "urn:smartpump:order-id", "value": "12345"}]


def test_a_declined_order_is_a_cancelled_request_with_the_nurses_reason(world: World) -> None:
    site = ehr_site(world)
    response = world.client.post("/api/v1/fhir/MedicationRequest", headers=site.nurse, json=_request())
    assert response.json()["status"] == "active"
    Events(world).add(
        "program.cancelled",
        verdict="ok",
        entry_id="icu-dopamine",
        alerts=[],
        auto_programmed=True,
        reason="wrong_patient",
    )
    declined = _request_status(world, site.nurse, "MR-1")
    assert declined["status"] == "cancelled"
    assert declined["statusReason"]["coding"] == [
        {"system": "urn:smartpump:order-outcome", "code": "wrong_patient"}
    ]
    again = world.client.post("/api/v1/fhir/MedicationRequest", headers=site.nurse, json=_request())
    assert again.status_code == 200
    MedicationRequest.model_validate(again.json())
    assert again.json()["status"] == "cancelled"
    assert again.json()["statusReason"] == declined["statusReason"]


def test_a_medication_request_read_is_phi_facility_checked_and_404_as_an_operation_outcome(
    world: World,
) -> None:
    site = ehr_site(world)
    OrderListener(world.state).answer(dopamine_order())
    south = world.facility("south")
    outsider = world.as_role(Role.NURSE, south, username="south-nurse")
    missing = world.client.get("/api/v1/fhir/MedicationRequest/12345", headers=outsider)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert world.client.get("/api/v1/fhir/MedicationRequest/12345", headers=site.biomed).status_code == 403
    assert _request_status(world, site.nurse, "12345")["status"] == "active"
