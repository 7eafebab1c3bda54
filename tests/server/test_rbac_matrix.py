"""RBAC matrix: every role x every route, expected allow/deny taken from the one access table.

A denied call is a 403 with code ``access.role`` from the route guard; an allowed call may still fail
for other reasons (404 for the placeholder ids, 422 for the empty body) but never with that code.
"""

from __future__ import annotations

from typing import Any

import pytest

from smartpump.server.auth import Role
from tests.server.access_table import ACCESS
from tests.server.conftest import World, error_code
from tests.server.test_route_inventory import api_routes

PLACEHOLDERS = {
    "{serial}": "NO-SUCH-PUMP",
    "{entry_id}": "no-such-entry",
    "{user_id}": "999999",
    "{grant_id}": "999999",
    "{fault_id}": "999999",
    "{test_id}": "999999",
    "{recall_id}": "999999",
    "{library_id}": "999999",
    "{request_id}": "999999",
    "{configuration_id}": "999999",
    "{facility_id}": "999999",
}


def _url(path: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        path = path.replace(placeholder, value)
    return path


def _denied_by_guard(response: Any) -> bool:
    if response.status_code != 403:
        return False
    body = response.json()
    return error_code(body) == "access.role"


@pytest.mark.parametrize("role", list(Role))
def test_role_reaches_exactly_its_routes(world: World, role: Role) -> None:
    assert set(api_routes(world.app)) == set(ACCESS)
    facility = world.facility("north")
    username = f"matrix-{role.value}"
    world.user((role, facility), username=username)
    headers = world.login(username)
    wrong = []
    for (method, path), roles in sorted(ACCESS.items()):
        if not roles:
            continue
        response = world.client.request(method, _url(path), headers=headers, json={})
        if _denied_by_guard(response) == (role in roles):
            wrong.append(
                f"{method} {path} -> {response.status_code} (expected {'allow' if role in roles else 'deny'})"
            )
        if response.status_code >= 500:
            wrong.append(f"{method} {path} -> {response.status_code} (server error)")
        if path == "/api/v1/auth/logout" and response.status_code == 204:
            headers = world.login(username)
    assert wrong == []


def test_role_denials_are_audited(world: World) -> None:
    facility = world.facility("north")
    viewer = world.as_role(Role.VIEWER, facility, username="viewer1")
    assert world.client.post("/api/v1/users", headers=viewer, json={}).status_code == 403
    auditor = world.as_role(Role.AUDITOR, None, username="aud1")
    records = world.client.get("/api/v1/audit", headers=auditor, params={"action": "access.denied"}).json()
    assert [r["actor"] for r in records] == ["viewer1"]
    assert records[0]["object_id"] == "POST /api/v1/users"
