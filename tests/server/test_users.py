"""Users and grants: SEC-RBAC-05 dual control for privileged grants, facility-scoped administration."""

from __future__ import annotations

from typing import Any

from smartpump.server.auth import Role
from tests.server.conftest import World


def _grant(world: World, admin: dict[str, str], user_id: int, role: str, facility_id: int | None) -> Any:
    return world.client.post(
        f"/api/v1/users/{user_id}/grants", headers=admin, json={"role": role, "facility_id": facility_id}
    )


def test_sec_rbac_05_admin_grant_waits_for_a_second_admin(world: World) -> None:
    world.user((Role.ADMIN, None), username="ann")
    world.user((Role.ADMIN, None), username="bob")
    target = world.user(username="tom")
    grant = _grant(world, world.login("ann"), target, "admin", None).json()
    assert grant["status"] == "pending"
    tom = world.login("tom")
    assert world.client.get("/api/v1/users", headers=tom).status_code == 403
    same = world.client.post(
        f"/api/v1/users/{target}/grants/{grant['id']}/confirm", headers=world.login("ann")
    )
    assert same.status_code == 403
    assert same.json()["error"]["code"] == "grant.dual_control"
    confirmed = world.client.post(
        f"/api/v1/users/{target}/grants/{grant['id']}/confirm", headers=world.login("bob")
    )
    assert confirmed.json()["status"] == "active"
    assert world.client.get("/api/v1/users", headers=tom).status_code == 200


def test_ordinary_grant_is_active_at_once_and_audited(world: World) -> None:
    world.user((Role.ADMIN, None), username="ann")
    facility = world.facility("north")
    target = world.user(username="nina")
    assert _grant(world, world.login("ann"), target, "nurse", facility).json()["status"] == "active"
    auditor = world.as_role(Role.AUDITOR, None)
    records = world.client.get("/api/v1/audit", headers=auditor, params={"action": "grant.created"}).json()
    assert [(r["actor"], r["details"]["role"]) for r in records] == [("ann", "nurse")]


def test_revoked_grant_stops_working_and_is_audited(world: World) -> None:
    world.user((Role.ADMIN, None), username="ann")
    facility = world.facility("north")
    target = world.user(username="nina")
    grant = _grant(world, world.login("ann"), target, "nurse", facility).json()
    nina = world.login("nina")
    assert world.client.get("/api/v1/events", headers=nina).status_code == 200
    revoked = world.client.delete(f"/api/v1/users/{target}/grants/{grant['id']}", headers=world.login("ann"))
    assert revoked.status_code == 204
    assert world.client.get("/api/v1/events", headers=nina).status_code == 403
    auditor = world.as_role(Role.AUDITOR, None)
    assert world.client.get("/api/v1/audit", headers=auditor, params={"action": "grant.revoked"}).json()


def test_facility_admin_cannot_grant_in_another_facility(world: World) -> None:
    north, south = world.facility("north"), world.facility("south")
    world.user((Role.ADMIN, north), username="nadmin")
    target = world.user(username="sam")
    response = _grant(world, world.login("nadmin"), target, "nurse", south)
    assert response.status_code == 403


def test_facility_admin_cannot_create_facilities(world: World) -> None:
    north = world.facility("north")
    world.user((Role.ADMIN, north), username="nadmin")
    response = world.client.post(
        "/api/v1/facilities", headers=world.login("nadmin"), json={"code": "east", "name": "East"}
    )
    assert response.status_code == 403


def test_facilities_list_only_granted_ones(world: World) -> None:
    north = world.facility("north")
    world.facility("south")
    nurse = world.as_role(Role.NURSE, north)
    assert [f["code"] for f in world.client.get("/api/v1/facilities", headers=nurse).json()] == ["north"]


def test_user_listing_never_shows_password_hashes(world: World) -> None:
    world.user((Role.ADMIN, None), username="ann")
    listing = world.client.get("/api/v1/users", headers=world.login("ann"))
    assert "password" not in listing.text
    assert "$argon2" not in listing.text
