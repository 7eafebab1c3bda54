"""Access rows of the browser UI's routes (outside /api/v1; same guards as the API)."""

from __future__ import annotations

from typing import Final

from smartpump.server.auth import ALL_ROLES, Role

A, PH, AP, N, B, AU, V, MD = (
    Role.ADMIN,
    Role.PHARMACIST,
    Role.PHARMACY_APPROVER,
    Role.NURSE,
    Role.BIOMED,
    Role.AUDITOR,
    Role.VIEWER,
    Role.PHYSICIAN,
)
PUBLIC: Final = frozenset[Role]()
LIBRARY_READERS: Final = frozenset({PH, AP, MD, N, B, AU, V})
LIBRARY_REVIEWERS: Final = frozenset({PH, AP, MD, AU})

ACCESS: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/ui/static/{name}"): PUBLIC,
    ("GET", "/ui/login"): PUBLIC,
    ("POST", "/ui/login"): PUBLIC,
    ("POST", "/ui/logout"): PUBLIC,
    ("GET", "/ui/password"): ALL_ROLES,
    ("POST", "/ui/password"): ALL_ROLES,
    ("GET", "/ui/"): ALL_ROLES,
    ("GET", "/ui/pumps/{serial}"): ALL_ROLES,
    ("GET", "/ui/stream"): ALL_ROLES,
    ("GET", "/ui/maintenance"): frozenset({B, AU}),
    ("GET", "/ui/bench"): frozenset({B, AU, V}),
    ("GET", "/ui/pumps/{serial}/bench"): frozenset({B, AU, V}),
    ("POST", "/ui/pumps/{serial}/bench/twin"): frozenset({B}),
    ("POST", "/ui/pumps/{serial}/bench/import"): frozenset({B}),
    ("POST", "/ui/maintenance/records"): frozenset({B}),
    ("POST", "/ui/maintenance/faults"): frozenset({B, N}),
    ("GET", "/ui/quarantine"): frozenset({B, AU}),
    ("POST", "/ui/quarantine/{serial}/admit"): frozenset({B}),
    ("POST", "/ui/quarantine/{serial}/reject"): frozenset({B}),
    ("GET", "/ui/audit"): frozenset({AU}),
    ("GET", "/ui/cqi"): frozenset({PH, AP, N, B, AU}),
    ("GET", "/ui/panel"): frozenset({N, B}),
    ("GET", "/ui/panel/{serial}"): frozenset({N, B}),
    ("POST", "/ui/panel/{serial}"): frozenset({N, B}),
    ("GET", "/ui/libraries"): LIBRARY_READERS,
    ("POST", "/ui/libraries"): frozenset({PH}),
    ("POST", "/ui/libraries/import"): frozenset({PH}),
    ("GET", "/ui/libraries/{library_id}"): LIBRARY_READERS,
    ("GET", "/ui/libraries/{library_id}/entries/{entry_id}"): LIBRARY_READERS,
    ("GET", "/ui/libraries/{library_id}/coverage"): LIBRARY_REVIEWERS,
    ("GET", "/ui/libraries/{library_id}/compare"): LIBRARY_REVIEWERS,
    ("POST", "/ui/libraries/{library_id}/deploy"): frozenset({AP, B}),
    ("POST", "/ui/libraries/{library_id}/entries"): frozenset({PH}),
    ("POST", "/ui/libraries/{library_id}/entries/{entry_id}/delete"): frozenset({PH}),
    ("POST", "/ui/libraries/{library_id}/submit"): frozenset({PH}),
    ("POST", "/ui/libraries/{library_id}/approve"): frozenset({AP, MD, N}),
    ("POST", "/ui/libraries/{library_id}/release"): frozenset({AP}),
    ("POST", "/ui/libraries/{library_id}/change-requests/{request_id}/link"): frozenset({PH}),
    ("GET", "/ui/configurations"): ALL_ROLES,
    ("POST", "/ui/configurations"): frozenset({B}),
    ("POST", "/ui/configurations/restore-defaults"): frozenset({B}),
    ("GET", "/ui/configurations/{configuration_id}"): ALL_ROLES,
    ("POST", "/ui/configurations/{configuration_id}/release"): frozenset({B}),
    ("POST", "/ui/configurations/{configuration_id}/deploy"): frozenset({B}),
}
