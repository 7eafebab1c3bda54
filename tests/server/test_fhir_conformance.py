"""FHIR endpoint conformance: /metadata, OperationOutcome for every error, absolute fullUrl, date-only
authoredOn, and orders for any channel (resources validated with fhir.resources R4B)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from smartpump.interop.fhir.mappers import CHANNEL_EXTENSION
from smartpump.server.db.models_fleet_ops import PumpCommand
from tests.server.conftest import START, World
from tests.server.ehr_support import SERIAL, ehr_site
from tests.server.test_ehr_fhir import _request

URL = "/api/v1/fhir/MedicationRequest"


def _outcome(response: Any, status: int, issue_code: str) -> OperationOutcome:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].code == issue_code
    return outcome


def test_metadata_is_a_public_valid_capability_statement(world: World) -> None:
    response = world.client.get("/api/v1/fhir/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    assert statement.rest is not None
    served = {r.type: [i.code for i in r.interaction or []] for r in statement.rest[0].resource or []}
    assert served["MedicationRequest"] == ["create", "read"]
    assert set(served) == {"Device", "MedicationAdministration", "Observation", "MedicationRequest"}
    assert statement.implementation is not None
    assert statement.implementation.url == "http://testserver/api/v1/fhir"


def test_every_fhir_error_is_an_operation_outcome(world: World) -> None:
    site = ehr_site(world)
    _outcome(world.client.get(f"/api/v1/fhir/Device/{SERIAL}"), 401, "login")
    _outcome(world.client.get("/api/v1/fhir/Device/NOPE", headers=site.nurse), 404, "not-found")
    _outcome(world.client.get("/api/v1/fhir/Patient/1", headers=site.nurse), 404, "not-found")
    _outcome(world.client.get("/api/v1/fhir/MedicationAdministration", headers=site.biomed), 403, "forbidden")
    _outcome(
        world.client.get("/api/v1/fhir/Observation", headers=site.nurse, params={"date": "x"}), 422, "invalid"
    )
    _outcome(world.client.delete(f"/api/v1/fhir/Device/{SERIAL}", headers=site.nurse), 405, "not-supported")
    garbled = world.client.post(
        URL, headers={**site.nurse, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert garbled.status_code in (400, 422)
    OperationOutcome.model_validate(garbled.json())


def test_the_rest_of_the_api_keeps_its_error_envelope(world: World) -> None:
    site = ehr_site(world)
    response = world.client.get("/api/v1/pumps/NOPE", headers=site.nurse)
    assert response.status_code == 404 and response.json()["error"]["code"] == "pump.not_found"


def test_search_bundles_have_absolute_full_urls(world: World) -> None:
    site = ehr_site(world)
    response = world.client.get("/api/v1/fhir/Device", headers=site.nurse)
    bundle = Bundle.model_validate(response.json())
    urls = [e.fullUrl for e in bundle.entry or []]
    assert urls and all(u is not None and u.startswith("http://testserver/api/v1/fhir/") for u in urls)
    assert f"http://testserver/api/v1/fhir/Device/{SERIAL}" in urls


@pytest.mark.parametrize("authored", [START.date().isoformat(), START.strftime("%Y-%m"), "2026"])
def test_a_date_only_authored_on_of_today_is_accepted(world: World, authored: str) -> None:
    site = ehr_site(world)
    response = world.client.post(URL, headers=site.nurse, json=_request(authoredOn=authored))
    assert response.status_code == 201, response.text


def test_a_date_only_authored_on_of_an_earlier_day_is_stale_not_a_crash(world: World) -> None:
    site = ehr_site(world)
    response = world.client.post(URL, headers=site.nurse, json=_request(authoredOn="2026-02-20"))
    outcome = _outcome(response, 422, "business-rule")
    assert outcome.issue[0].details is not None
    assert outcome.issue[0].details.coding[0].code == "9022"  # type: ignore[index]


def test_an_authored_on_with_a_time_and_offset_is_the_order_time(world: World) -> None:
    site = ehr_site(world)
    fresh = world.client.post(URL, headers=site.nurse, json=_request(authoredOn="2026-03-02T07:59:00Z"))
    assert fresh.status_code == 201, fresh.text
    stale = _request(authoredOn="2026-03-02T02:00:00-05:00")
    stale["identifier"][0]["value"] = "MR-2"
    _outcome(world.client.post(URL, headers=site.nurse, json=stale), 422, "business-rule")


def _with_channel(channel: str) -> dict[str, Any]:
    return _request(extension=[{"url": CHANNEL_EXTENSION, "valueString": channel}])


def test_an_order_can_target_any_channel_of_the_pump(world: World) -> None:
    site = ehr_site(world)
    response = world.client.post(URL, headers=site.nurse, json=_with_channel("C"))
    assert response.status_code == 201, response.text
    with world.state.sessions() as session:
        [command] = session.scalars(select(PumpCommand)).all()
        assert json.loads(command.signed)["command"]["args"]["channel"] == "C"


def test_a_channel_the_pump_does_not_have_is_9001(world: World) -> None:
    site = ehr_site(world)
    outcome = _outcome(
        world.client.post(URL, headers=site.nurse, json=_with_channel("E")), 422, "business-rule"
    )
    assert outcome.issue[0].details.coding[0].code == "9001"  # type: ignore[union-attr,index]
