"""The FHIR R4 CapabilityStatement of the server's FHIR endpoint (``GET /metadata``): what it serves."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from smartpump.interop.fhir.mappers import CHANNEL_EXTENSION, JsonValue, Resource, validated

FHIR_VERSION: Final = "4.0.1"
_SEARCHES: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    "Device": (("identifier", "token", "serial, or urn:ieee:eui-64|<EUI-64>"),),
    "MedicationAdministration": (
        ("patient", "reference", "Patient/<id> of the order"),
        ("request", "reference", "MedicationRequest/<order id>"),
        ("date", "date", "when the infusion started (ge, gt, le, lt, eq)"),
    ),
    "Observation": (
        ("device", "reference", "Device/<serial>"),
        ("date", "date", "when the reading was taken"),
    ),
}


def _search(resource: str) -> list[JsonValue]:
    return [
        {"name": name, "type": kind, "documentation": words}
        for name, kind, words in _SEARCHES.get(resource, ())
    ]


def capability_statement(*, base_url: str, software_version: str, published: datetime) -> Resource:
    """The CapabilityStatement (kind ``instance``) for the FHIR base at ``base_url``."""
    resources: list[JsonValue] = [
        {
            "type": "Device",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": _search("Device"),
            "documentation": "Pumps; a search includes each channel's DeviceMetrics.",
        },
        {
            "type": "MedicationAdministration",
            "interaction": [{"code": "search-type"}],
            "searchParam": _search("MedicationAdministration"),
        },
        {
            "type": "Observation",
            "interaction": [{"code": "search-type"}],
            "searchParam": _search("Observation"),
        },
        {
            "type": "MedicationRequest",
            "interaction": [{"code": "create"}, {"code": "read"}],
            "documentation": (
                "Auto-programs the pump named by performer (Device/<serial>) on the channel named by the "
                f"extension {CHANNEL_EXTENSION} (A-D, A when absent) through the PCD-03 checks; a refusal "
                "is an OperationOutcome carrying the IHE PIV error code. Read by order id: status follows "
                "the order's outcome (active, completed, stopped, cancelled with statusReason)."
            ),
        },
    ]
    return validated(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": published.isoformat(),
            "kind": "instance",
            "software": {"name": "smartpump", "version": software_version},
            "implementation": {"description": "smartpump server FHIR R4 endpoint", "url": base_url},
            "fhirVersion": FHIR_VERSION,
            "format": ["application/fhir+json", "json"],
            "rest": [
                {
                    "mode": "server",
                    "documentation": "Errors are OperationOutcomes; searches answer searchset Bundles.",
                    "security": {
                        "description": "Bearer token from /api/v1/auth/token; roles and facilities apply."
                    },
                    "resource": resources,
                }
            ],
        }
    )
