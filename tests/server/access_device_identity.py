"""Declared access of the device-identity routes (quarantine, admission, seq conflicts)."""

from __future__ import annotations

from typing import Final

from smartpump.server.auth import Role

ACCESS: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/api/v1/fleet/quarantine"): frozenset({Role.BIOMED, Role.AUDITOR}),
    ("POST", "/api/v1/fleet/quarantine/{serial}/admit"): frozenset({Role.BIOMED}),
    ("POST", "/api/v1/fleet/quarantine/{serial}/reject"): frozenset({Role.BIOMED}),
    ("GET", "/api/v1/fleet/seq-conflicts"): frozenset({Role.BIOMED, Role.AUDITOR}),
}
