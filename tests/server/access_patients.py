"""Declared access of the patient-association routes (merged into the one access table)."""

from __future__ import annotations

from typing import Final

from smartpump.server.auth import Role
from tests.server.access_ehr import PHI_READERS

ACCESS: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/api/v1/pumps/{serial}/patient"): PHI_READERS,
    ("PUT", "/api/v1/pumps/{serial}/patient"): frozenset({Role.NURSE}),
}
