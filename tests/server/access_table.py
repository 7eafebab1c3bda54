"""THE declared access table the RBAC tests check the app against (independent of the route code).

Core routes are declared here; each later area declares its own rows in ``access_<area>.py``.

Each API route maps to the roles that may call it; ``PUBLIC`` routes need no token. A route added to
the app but not to this table, or a route whose guard changes, fails the tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
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
LIBRARY_APPROVERS: Final = frozenset({AP, MD, N})

CORE_ACCESS: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): ALL_ROLES,
    ("GET", "/api/v1/auth/me"): ALL_ROLES,
    ("POST", "/api/v1/auth/password"): ALL_ROLES,
    ("GET", "/api/v1/users"): frozenset({A, AU}),
    ("POST", "/api/v1/users"): frozenset({A}),
    ("GET", "/api/v1/users/{user_id}"): frozenset({A, AU}),
    ("POST", "/api/v1/users/{user_id}/grants"): frozenset({A}),
    ("POST", "/api/v1/users/{user_id}/grants/{grant_id}/confirm"): frozenset({A}),
    ("DELETE", "/api/v1/users/{user_id}/grants/{grant_id}"): frozenset({A}),
    ("POST", "/api/v1/users/{user_id}/disable"): frozenset({A}),
    ("GET", "/api/v1/facilities"): ALL_ROLES,
    ("POST", "/api/v1/facilities"): frozenset({A}),
    ("GET", "/api/v1/pumps"): ALL_ROLES,
    ("POST", "/api/v1/pumps"): frozenset({B}),
    ("GET", "/api/v1/pumps/{serial}"): ALL_ROLES,
    ("PATCH", "/api/v1/pumps/{serial}"): frozenset({B}),
    ("GET", "/api/v1/pumps/{serial}/channels"): ALL_ROLES,
    ("GET", "/api/v1/fleet/library-currency"): ALL_ROLES,
    ("GET", "/api/v1/fleet/alarms"): ALL_ROLES,
    ("GET", "/api/v1/events"): frozenset({N, PH, AP, B, AU}),
    ("GET", "/api/v1/bench/pumps/{serial}"): frozenset({B, AU, V}),
    ("POST", "/api/v1/bench/pumps/{serial}/twin"): frozenset({B}),
    ("POST", "/api/v1/bench/pumps/{serial}/import"): frozenset({B}),
    ("GET", "/api/v1/bench/tests/{test_id}"): frozenset({B, AU, V}),
    ("GET", "/api/v1/bench/worst"): frozenset({B, AU, V}),
    ("GET", "/api/v1/maintenance"): frozenset({B, AU}),
    ("POST", "/api/v1/maintenance"): frozenset({B}),
    ("GET", "/api/v1/maintenance/schedules"): frozenset({B, AU}),
    ("PUT", "/api/v1/maintenance/schedules"): frozenset({B}),
    ("GET", "/api/v1/maintenance/due"): frozenset({B, AU}),
    ("GET", "/api/v1/maintenance/faults"): frozenset({B, N, AU}),
    ("POST", "/api/v1/maintenance/faults"): frozenset({B, N}),
    ("POST", "/api/v1/maintenance/faults/{fault_id}/resolve"): frozenset({B}),
    ("GET", "/api/v1/maintenance/recalls"): frozenset({B, AU}),
    ("POST", "/api/v1/maintenance/recalls"): frozenset({B}),
    ("POST", "/api/v1/maintenance/recalls/{recall_id}/pumps/{serial}"): frozenset({B}),
    ("POST", "/api/v1/maintenance/flags/evaluate"): frozenset({B}),
    ("GET", "/api/v1/libraries"): LIBRARY_READERS,
    ("POST", "/api/v1/libraries"): frozenset({PH}),
    ("GET", "/api/v1/libraries/reviews/overdue"): LIBRARY_REVIEWERS,
    ("GET", "/api/v1/libraries/{library_id}"): LIBRARY_READERS,
    ("GET", "/api/v1/libraries/{library_id}/document"): LIBRARY_READERS,
    ("PUT", "/api/v1/libraries/{library_id}/entries/{entry_id}"): frozenset({PH}),
    ("DELETE", "/api/v1/libraries/{library_id}/entries/{entry_id}"): frozenset({PH}),
    ("POST", "/api/v1/libraries/{library_id}/entries/{entry_id}/reviewed"): frozenset({PH}),
    ("GET", "/api/v1/libraries/{library_id}/lint"): LIBRARY_REVIEWERS,
    ("GET", "/api/v1/libraries/{library_id}/diff"): LIBRARY_REVIEWERS,
    ("GET", "/api/v1/libraries/{library_id}/coverage"): LIBRARY_REVIEWERS,
    ("GET", "/api/v1/libraries/{library_id}/search"): LIBRARY_READERS,
    ("POST", "/api/v1/libraries/{library_id}/submit"): frozenset({PH}),
    ("POST", "/api/v1/libraries/{library_id}/approve"): LIBRARY_APPROVERS,
    ("GET", "/api/v1/libraries/{library_id}/policy-standing"): LIBRARY_REVIEWERS,
    ("GET", "/api/v1/libraries/release-policies/{facility_id}"): LIBRARY_READERS,
    ("PUT", "/api/v1/libraries/release-policies/{facility_id}"): frozenset({A}),
    ("GET", "/api/v1/libraries/{library_id}/approvals"): LIBRARY_REVIEWERS,
    ("POST", "/api/v1/libraries/{library_id}/release"): frozenset({AP}),
    ("POST", "/api/v1/libraries/{library_id}/emergency-release"): frozenset({AP}),
    ("POST", "/api/v1/libraries/{library_id}/retire"): frozenset({AP}),
    ("GET", "/api/v1/libraries/{library_id}/signed"): LIBRARY_READERS,
    ("GET", "/api/v1/change-requests"): frozenset({PH, AP, N, AU}),
    ("POST", "/api/v1/change-requests"): frozenset({PH, AP, N}),
    ("POST", "/api/v1/change-requests/{request_id}/decision"): frozenset({PH, AP}),
    ("POST", "/api/v1/change-requests/{request_id}/draft"): frozenset({PH}),
    ("GET", "/api/v1/audit"): frozenset({AU}),
    ("GET", "/api/v1/audit/verify"): frozenset({AU, A}),
    ("GET", "/api/v1/keys"): ALL_ROLES,
    ("GET", "/api/v1/keys/library-signing"): ALL_ROLES,
    ("POST", "/api/v1/keys/publish"): frozenset({A}),
    ("GET", "/api/v1/keys/trust-list"): frozenset({A, B, AU}),
}


def _area_tables() -> dict[tuple[str, str], frozenset[Role]]:
    """Rows declared by each area in its own ``tests/server/access_<area>.py`` (``ACCESS`` dict)."""
    rows: dict[tuple[str, str], frozenset[Role]] = {}
    for module_info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if not module_info.name.startswith("access_") or module_info.name == "access_table":
            continue
        module = importlib.import_module(f"tests.server.{module_info.name}")
        area: dict[tuple[str, str], frozenset[Role]] = module.ACCESS
        clash = rows.keys() & area.keys() | CORE_ACCESS.keys() & area.keys()
        assert not clash, f"{module_info.name} redeclares {sorted(clash)}"
        rows |= area
    return rows


ACCESS: Final = {**CORE_ACCESS, **_area_tables()}

FRAMEWORK_ROUTES: Final = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})
"""Non-API routes FastAPI adds itself (the OpenAPI document and, in development, its viewer)."""
