"""FHIR R4 mappers: produced resources validate (fhir.resources R4B) and a MedicationRequest auto-programs
through the same path as PCD-03."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest

from smartpump.interop.fhir.mappers import (
    FhirMappingError,
    device,
    device_metrics,
    medication_administration,
    medication_request,
    medication_request_to_order,
    observation,
)
from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.pcd03 import OrderRejected, evaluate_order
from smartpump.interop.hl7v2.reports import DeviceIdentity, SourceChannel
from tests.unit.interop.helpers import ORDER_NOW, demo_library

PUMP = DeviceIdentity(device_id="A0001", eui64="0012210000000001")
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_device_carries_identifiers_and_library_version() -> None:
    resource = device(PUMP, serial="SN-1", library_version="3", firmware="1.2")
    assert resource["resourceType"] == "Device"
    assert {"system": "urn:ieee:eui-64", "value": "0012210000000001"} in resource["identifier"]  # type: ignore[operator]
    assert {"type": {"text": "drug-library"}, "value": "3"} in resource["version"]  # type: ignore[operator]


def test_device_metrics_per_channel() -> None:
    metrics = device_metrics(PUMP, "A")
    assert [m["category"] for m in metrics] == ["setting", "setting", "measurement"]
    assert all(m["source"] == {"reference": "Device/A0001"} for m in metrics)


def test_medication_administration_links_pump_and_order() -> None:
    resource = medication_administration(
        administration_id="ma1",
        identity=PUMP,
        patient_id="98765",
        order_id="12345",
        source=SourceChannel(rate_ml_per_h=Decimal("31.9"), drug_name="Dopamine"),
        started_at=NOW,
    )
    model = MedicationAdministration.model_validate(resource)
    assert model.request is not None and model.device is not None and model.dosage is not None
    assert model.request.reference == "MedicationRequest/12345"
    assert model.device[0].reference == "Device/A0001"
    assert model.dosage.rateQuantity is not None
    assert Decimal(str(model.dosage.rateQuantity.value)) == Decimal("31.9")


def test_observation_of_a_reading() -> None:
    resource = observation(
        observation_id="o1",
        identity=PUMP,
        patient_id="98765",
        refid="MDC_VOL_FLUID_DELIV_TOTAL",
        value=Decimal("12.5"),
        unit=codes.ML,
        observed_at=NOW,
        metric_id="A0001-A-volume-infused",
    )
    assert resource["device"] == {"reference": "DeviceMetric/A0001-A-volume-infused"}
    assert resource["code"]["coding"][0]["code"] == "157993"  # type: ignore[index,call-overload]


def _request(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "identifier": [{"system": "urn:smartpump:order-id", "value": "12345"}],
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
                "valueQuantity": {
                    "value": 85,
                    "unit": "kg",
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                },
            },
        ],
        "medicationReference": {"reference": "#med"},
        "subject": {"reference": "Patient/98765"},
        "performer": {"reference": "Device/A0001"},
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
    resource.update(changes)
    return resource


def test_medication_request_auto_programs_like_pcd03() -> None:
    order = medication_request_to_order(_request())
    assert (order.order_id, order.patient_id, order.pump_id, order.weight_kg) == (
        "12345",
        "98765",
        "A0001",
        Decimal(85),
    )
    decision = evaluate_order(order, demo_library(), "icu", now=ORDER_NOW)
    assert decision.accepted
    assert decision.verdicts[0].rate_ml_per_h_exact == Decimal("31.875")
    assert decision.verdicts[0].rate_ml_per_h == Decimal("31.9")


def test_medication_request_without_rate_is_9003() -> None:
    with pytest.raises(OrderRejected) as caught:
        medication_request_to_order(_request(dosageInstruction=[{"text": "as directed"}]))
    assert caught.value.error_code == 9003


def test_invalid_resource_is_refused() -> None:
    resource = _request()
    del resource["subject"]
    with pytest.raises(FhirMappingError):
        medication_request_to_order(resource)


@pytest.mark.parametrize(
    ("order_status", "status"),
    [
        ("offered", "active"),
        ("started", "active"),
        ("delivering", "active"),
        ("applied", "completed"),
        ("completed", "completed"),
        ("stopped", "stopped"),
        ("declined", "cancelled"),
        ("refused", "cancelled"),
        ("expired", "cancelled"),
        ("rejected", "cancelled"),
    ],
)
def test_every_order_status_is_a_valid_medication_request_status(order_status: str, status: str) -> None:
    resource = medication_request(
        order_id="ORD 7",
        order_status=order_status,
        patient_id="98765",
        drug_name="DOPamine",
        pump_serial="A0001",
        outcome_code="wrong_patient",
        reason="declined by the nurse",
    )
    MedicationRequest.model_validate(resource)
    assert (resource["id"], resource["status"]) == ("ORD-7", status)
    assert ("statusReason" in resource) is (status == "cancelled")


def test_the_requester_is_the_orders_prescriber() -> None:
    order = medication_request_to_order(
        _request(requester={"reference": "Practitioner/P-9", "display": "Dr Lee Wong"})
    )
    assert (order.prescriber_id, order.prescriber_name, order.prescriber) == (
        "P-9",
        "Dr Lee Wong",
        "Dr Lee Wong (P-9)",
    )
    assert medication_request_to_order(_request()).prescriber == ""
