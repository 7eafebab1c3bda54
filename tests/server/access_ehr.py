"""Declared access of the FHIR routes and of a pump's EHR orders (merged into the one access table by
``access_table``)."""

from __future__ import annotations

from typing import Final

from smartpump.server.auth import ALL_ROLES, Role

PHI_READERS: Final = frozenset({Role.NURSE, Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.AUDITOR})

ACCESS: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/api/v1/fhir/metadata"): frozenset(),
    ("GET", "/api/v1/fhir/Device/{serial}"): ALL_ROLES,
    ("GET", "/api/v1/fhir/Device"): ALL_ROLES,
    ("GET", "/api/v1/fhir/MedicationAdministration"): PHI_READERS,
    ("GET", "/api/v1/fhir/Observation"): PHI_READERS,
    ("POST", "/api/v1/fhir/MedicationRequest"): frozenset({Role.NURSE, Role.PHARMACIST}),
    ("GET", "/api/v1/fhir/MedicationRequest/{order_id}"): PHI_READERS,
    ("GET", "/api/v1/pumps/{serial}/orders"): PHI_READERS,
}
