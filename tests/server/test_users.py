"""Users and grants: SEC-RBAC-05 dual control for privileged grants, facility-scoped administration."""

from __future__ import annotations

from typing import Any

import pytest

from smartpump.server.auth import PRIVILEGED_ROLES, Role
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


def _confirm(world: World, admin: str, user_id: int, grant_id: int) -> Any:
    return world.client.post(f"/api/v1/users/{user_id}/grants/{grant_id}/confirm", headers=world.login(admin))


@pytest.mark.parametrize("role", sorted(r.value for r in PRIVILEGED_ROLES))
def test_every_privileged_role_waits_for_a_second_admin(world: World, role: str) -> None:
    world.user((Role.ADMIN, None), username="ann")
    world.user((Role.ADMIN, None), username="bob")
    facility = world.facility("north")
    target = world.user(username="tom")
    assert _grant(world, world.login("ann"), target, role, facility).json()["status"] == "pending"


@pytest.mark.parametrize("role", sorted(r.value for r in Role if r not in PRIVILEGED_ROLES))
def test_a_role_that_reaches_no_pump_is_active_at_once(world: World, role: str) -> None:
    world.user((Role.ADMIN, None), username="ann")
    world.user((Role.ADMIN, None), username="bob")
    facility = world.facility("north")
    target = world.user(username="tom")
    assert _grant(world, world.login("ann"), target, role, facility).json()["status"] == "active"


def test_an_admin_cannot_grant_itself_approver_and_pharmacist_and_release_alone(world: World) -> None:
    """Issue 15: an admin granted itself approver and pharmacist and approved a library."""
    ann = world.user((Role.ADMIN, None), username="ann")
    world.user((Role.ADMIN, None), username="bob")
    facility = world.facility("north")
    grants = [
        _grant(world, world.login("ann"), ann, role, facility).json()
        for role in ("pharmacist", "pharmacy_approver")
    ]
    assert [g["status"] for g in grants] == ["pending", "pending"]
    for grant in grants:
        refused = _confirm(world, "ann", ann, grant["id"])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "grant.dual_control"
    created = world.post_json("/api/v1/libraries", "{}", world.login("ann"))
    assert created.status_code == 403 and created.json()["error"]["code"] == "access.role"
    assert _confirm(world, "bob", ann, grants[0]["id"]).json()["status"] == "active"


def test_nobody_confirms_a_grant_to_themselves_nor_their_own_grant(world: World) -> None:
    world.user((Role.ADMIN, None), username="ann")
    tom = world.user((Role.ADMIN, None), username="tom")
    world.user((Role.ADMIN, None), username="cid")
    facility = world.facility("north")
    grant = _grant(world, world.login("ann"), tom, "biomed", facility).json()
    for who in ("tom", "ann"):
        refused = _confirm(world, who, tom, grant["id"])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "grant.dual_control"
    assert _confirm(world, "cid", tom, grant["id"]).json()["status"] == "active"
    auditor = world.as_role(Role.AUDITOR, None)
    records = world.client.get("/api/v1/audit", headers=auditor, params={"action": "grant.confirmed"}).json()
    assert sorted(r["actor"] for r in records if r["outcome"] == "denied") == ["ann", "tom"]


def test_the_only_admin_may_make_a_second_admin_once_and_nothing_else_alone(world: World) -> None:
    ann = world.user((Role.ADMIN, None), username="ann")
    tom = world.user(username="tom")
    cid = world.user(username="cid")
    facility = world.facility("north")
    assert _grant(world, world.login("ann"), ann, "pharmacist", facility).json()["status"] == "pending"
    assert _grant(world, world.login("ann"), tom, "admin", facility).json()["status"] == "pending"
    second = _grant(world, world.login("ann"), tom, "admin", None).json()
    assert second["status"] == "active"
    assert _grant(world, world.login("ann"), cid, "admin", None).json()["status"] == "pending"
    auditor = world.as_role(Role.AUDITOR, None)
    bootstraps = world.client.get(
        "/api/v1/audit", headers=auditor, params={"action": "grant.bootstrap"}
    ).json()
    assert [(r["actor"], r["details"]["user"]) for r in bootstraps] == [("ann", "tom")]
