"""Declared access of the connected-fleet routes (deployments, software packages, configurations, commands,
links, gaps)."""

from __future__ import annotations

from typing import Final

from smartpump.server.auth import ALL_ROLES, Role

ACCESS: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("POST", "/api/v1/deployments"): frozenset({Role.BIOMED, Role.PHARMACY_APPROVER}),
    ("GET", "/api/v1/deployments"): ALL_ROLES,
    ("GET", "/api/v1/deployments/{deployment_id}"): ALL_ROLES,
    ("POST", "/api/v1/software-packages"): frozenset({Role.BIOMED}),
    ("POST", "/api/v1/software-packages/{package_id}/approve"): frozenset({Role.BIOMED, Role.ADMIN}),
    ("GET", "/api/v1/software-packages"): ALL_ROLES,
    ("GET", "/api/v1/fleet/software-currency"): ALL_ROLES,
    ("POST", "/api/v1/pumps/{serial}/commands"): frozenset({Role.BIOMED, Role.NURSE}),
    ("GET", "/api/v1/pumps/{serial}/commands"): ALL_ROLES,
    ("GET", "/api/v1/fleet/links"): ALL_ROLES,
    ("GET", "/api/v1/fleet/gaps"): ALL_ROLES,
    ("GET", "/api/v1/configurations"): ALL_ROLES,
    ("POST", "/api/v1/configurations"): frozenset({Role.BIOMED}),
    ("POST", "/api/v1/configurations/restore-defaults"): frozenset({Role.BIOMED}),
    ("GET", "/api/v1/configurations/{configuration_id}"): ALL_ROLES,
    ("POST", "/api/v1/configurations/{configuration_id}/release"): frozenset({Role.BIOMED}),
    ("GET", "/api/v1/fleet/configuration-currency"): ALL_ROLES,
}
