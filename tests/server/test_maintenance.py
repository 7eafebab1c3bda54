"""Maintenance: schedules and due lists, battery and alarm flags, fault reports, recalls."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartpump.server.auth import Role
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services.events import IncomingEvent, store_events
from tests.server.conftest import World

DAY_S = 86400


@pytest.fixture
def north(world: World) -> int:
    facility = world.facility("north")
    biomed = world.as_role(Role.BIOMED, facility, username="tech")
    world.pump(biomed, facility, "P-1")
    world.pump(biomed, facility, "P-2")
    return facility


def _record(world: World, body: dict[str, object]) -> dict[str, object]:
    response = world.client.post("/api/v1/maintenance", headers=world.login("tech"), json=body)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def test_schedule_makes_work_due_one_interval_after_registration(world: World, north: int) -> None:
    tech = world.login("tech")
    world.client.put(
        "/api/v1/maintenance/schedules",
        headers=tech,
        json={"facility_id": north, "model": "LVP-1", "kind": "cleaning", "interval_days": 30},
    )
    assert world.client.get("/api/v1/maintenance/due", headers=tech).json() == []
    world.clock.advance(20 * DAY_S)
    tech = world.login("tech")
    due = world.client.get("/api/v1/maintenance/due", headers=tech).json()
    assert [(d["serial"], d["kind"], d["is_overdue"]) for d in due] == [
        ("P-1", "cleaning", False),
        ("P-2", "cleaning", False),
    ]
    world.clock.advance(11 * DAY_S)
    tech = world.login("tech")
    assert all(d["is_overdue"] for d in world.client.get("/api/v1/maintenance/due", headers=tech).json())


def test_recorded_work_restarts_the_interval(world: World, north: int) -> None:
    tech = world.login("tech")
    world.client.put(
        "/api/v1/maintenance/schedules",
        headers=tech,
        json={"facility_id": north, "model": "LVP-1", "kind": "cleaning", "interval_days": 30},
    )
    world.clock.advance(31 * DAY_S)
    _record(world, {"serial": "P-1", "kind": "cleaning"})
    overdue = world.client.get("/api/v1/maintenance/due", headers=world.login("tech")).json()
    assert [d["serial"] for d in overdue] == ["P-2"]


def test_unschedulable_kind_is_refused(world: World, north: int) -> None:
    response = world.client.put(
        "/api/v1/maintenance/schedules",
        headers=world.login("tech"),
        json={"facility_id": north, "model": "LVP-1", "kind": "library_update", "interval_days": 30},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "maintenance.not_schedulable"


def test_low_battery_health_flags_the_pump(world: World, north: int) -> None:
    _record(world, {"serial": "P-1", "kind": "battery_check", "battery_health_percent": 72})
    pump = world.client.get("/api/v1/pumps/P-1", headers=world.login("tech")).json()
    assert pump["status"] == "needs_inspection"
    assert "72%" in pump["inspection_reason"]


def test_falling_battery_health_flags_the_pump(world: World, north: int) -> None:
    _record(world, {"serial": "P-1", "kind": "battery_check", "battery_health_percent": 97})
    world.clock.advance(DAY_S)
    _record(world, {"serial": "P-1", "kind": "battery_check", "battery_health_percent": 85})
    faults = world.client.get("/api/v1/maintenance/faults", headers=world.login("tech")).json()
    assert [(f["serial"], f["category"]) for f in faults] == [("P-1", "poor_battery")]


def test_healthy_battery_does_not_flag(world: World, north: int) -> None:
    _record(world, {"serial": "P-1", "kind": "battery_check", "battery_health_percent": 95})
    assert world.client.get("/api/v1/pumps/P-1", headers=world.login("tech")).json()["status"] == "in_service"


def test_repeated_alarms_flag_the_pump_once(world: World, north: int) -> None:
    events = [IncomingEvent(pump="P-2", seq=i, ts=world.clock.now(), type="alarm.raised") for i in range(5)]
    with unit_of_work(world.state.sessions) as session:
        store_events(session, world.clock, events)
    tech = world.login("tech")
    assert world.client.post("/api/v1/maintenance/flags/evaluate", headers=tech).json() == {
        "flagged_serials": ["P-2"]
    }
    assert world.client.post("/api/v1/maintenance/flags/evaluate", headers=tech).json() == {
        "flagged_serials": []
    }
    assert world.client.get("/api/v1/pumps/P-2", headers=tech).json()["status"] == "needs_inspection"


def test_alarms_below_the_threshold_do_not_flag(world: World, north: int) -> None:
    events = [IncomingEvent(pump="P-2", seq=i, ts=world.clock.now(), type="alarm.raised") for i in range(4)]
    with unit_of_work(world.state.sessions) as session:
        store_events(session, world.clock, events)
    response = world.client.post("/api/v1/maintenance/flags/evaluate", headers=world.login("tech"))
    assert response.json() == {"flagged_serials": []}


def test_nurse_reports_a_cracked_screen_and_biomed_resolves_it(world: World, north: int) -> None:
    nurse = world.as_role(Role.NURSE, north)
    fault = world.client.post(
        "/api/v1/maintenance/faults",
        headers=nurse,
        json={"serial": "P-1", "category": "cracked_screen", "description": "dropped"},
    ).json()
    tech = world.login("tech")
    resolved = world.client.post(
        f"/api/v1/maintenance/faults/{fault['id']}/resolve",
        headers=tech,
        json={"resolution": "screen replaced"},
    )
    assert resolved.json()["status"] == "resolved"
    again = world.client.post(
        f"/api/v1/maintenance/faults/{fault['id']}/resolve", headers=tech, json={"resolution": "twice"}
    )
    assert again.status_code == 409


def test_recall_tracks_affected_and_completed_pumps(world: World, north: int) -> None:
    tech = world.login("tech")
    recall = world.client.post(
        "/api/v1/maintenance/recalls",
        headers=tech,
        json={"reference": "FA-2026-01", "title": "Door latch", "model": "LVP-1", "firmware": "1.0.0"},
    ).json()
    assert recall["affected_serials"] == ["P-1", "P-2"]
    done = world.client.post(
        f"/api/v1/maintenance/recalls/{recall['id']}/pumps/P-1",
        headers=tech,
        json={"notes": "latch replaced"},
    ).json()
    assert done["completed_serials"] == ["P-1"]


def test_maintenance_in_the_future_is_refused(world: World, north: int) -> None:
    response = world.client.post(
        "/api/v1/maintenance",
        headers=world.login("tech"),
        json={
            "serial": "P-1",
            "kind": "cleaning",
            "performed_at": (world.clock.now() + timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "maintenance.future"
