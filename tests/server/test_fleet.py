"""Fleet registry: pumps per facility, status reports, channels, library currency, facility isolation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from smartpump.server.auth import Role
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services import fleet
from tests.server.conftest import World


def test_registered_pump_is_listed_with_its_serial(world: World) -> None:
    north = world.facility("north")
    biomed = world.as_role(Role.BIOMED, north)
    world.pump(biomed, north, "P-001")
    pumps = world.client.get("/api/v1/pumps", headers=biomed)
    assert [p["serial"] for p in pumps.json()] == ["P-001"]
    assert pumps.headers["X-Total-Count"] == "1"


def test_duplicate_serial_is_a_conflict(world: World) -> None:
    north = world.facility("north")
    biomed = world.as_role(Role.BIOMED, north)
    world.pump(biomed, north, "P-001")
    again = world.client.post(
        "/api/v1/pumps",
        headers=biomed,
        json={"facility_id": north, "serial": "P-001", "model": "LVP-1", "firmware": "1"},
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "pump.exists"


def test_pumps_of_another_facility_are_invisible(world: World) -> None:
    north, south = world.facility("north"), world.facility("south")
    world.pump(world.as_role(Role.BIOMED, south), south, "S-1")
    nurse = world.as_role(Role.NURSE, north)
    assert world.client.get("/api/v1/pumps", headers=nurse).json() == []
    assert world.client.get("/api/v1/pumps/S-1", headers=nurse).status_code == 404


def test_biomed_cannot_register_pumps_in_another_facility(world: World) -> None:
    north, south = world.facility("north"), world.facility("south")
    biomed = world.as_role(Role.BIOMED, north)
    response = world.client.post(
        "/api/v1/pumps",
        headers=biomed,
        json={"facility_id": south, "serial": "S-2", "model": "LVP-1", "firmware": "1"},
    )
    assert response.status_code == 403


def test_pagination_pages_through_pumps(world: World) -> None:
    north = world.facility("north")
    biomed = world.as_role(Role.BIOMED, north)
    for index in range(5):
        world.pump(biomed, north, f"P-{index}")
    page = world.client.get("/api/v1/pumps", headers=biomed, params={"limit": 2, "offset": 2})
    assert [p["serial"] for p in page.json()] == ["P-2", "P-3"]
    assert page.headers["X-Total-Count"] == "5"
    assert "offset=4" in page.headers["Link"]
    last = world.client.get("/api/v1/pumps", headers=biomed, params={"limit": 2, "offset": 4})
    assert [p["serial"] for p in last.json()] == ["P-4"]
    assert last.headers["X-Total-Count"] == "5" and "Link" not in last.headers
    beyond = world.client.get("/api/v1/pumps", headers=biomed, params={"limit": 2, "offset": 9})
    assert beyond.json() == [] and beyond.headers["X-Total-Count"] == "5"
    filtered = world.client.get("/api/v1/pumps", headers=biomed, params={"model": "no-such-model"})
    assert filtered.json() == [] and filtered.headers["X-Total-Count"] == "0"


def test_bad_pagination_is_a_422_with_a_code(world: World) -> None:
    north = world.facility("north")
    response = world.client.get(
        "/api/v1/pumps", headers=world.as_role(Role.VIEWER, north), params={"limit": 0}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "request.invalid"


def test_status_report_updates_channels_battery_and_update_history(world: World) -> None:
    north = world.facility("north")
    biomed = world.as_role(Role.BIOMED, north)
    world.pump(biomed, north, "P-1")
    with unit_of_work(world.state.sessions) as session:
        fleet.record_status(
            session,
            world.clock,
            "P-1",
            seen_at=world.clock.now(),
            battery_percent=64,
            firmware="1.1.0",
            installed_library_version=3,
            channels=[
                fleet.ChannelReport(
                    channel="A", state="running", drug="heparin", rate_ml_per_h=Decimal("12.5")
                )
            ],
        )
    pump = world.client.get("/api/v1/pumps/P-1", headers=biomed).json()
    assert (pump["battery_percent"], pump["firmware"], pump["installed_library_version"]) == (64, "1.1.0", 3)
    channels = world.client.get("/api/v1/pumps/P-1/channels", headers=biomed).json()
    assert channels[0]["state"] == "running"
    assert Decimal(str(channels[0]["rate_ml_per_h"])) == Decimal("12.5")
    history = world.client.get("/api/v1/maintenance", headers=biomed, params={"serial": "P-1"}).json()
    assert {(h["kind"], h["from_version"], h["to_version"]) for h in history} == {
        ("software_update", "1.0.0", "1.1.0"),
        ("library_update", None, "3"),
    }


def test_returning_a_flagged_pump_to_service_clears_its_flag(world: World) -> None:
    north = world.facility("north")
    biomed = world.as_role(Role.BIOMED, north)
    world.pump(biomed, north, "P-1")
    world.client.post(
        "/api/v1/maintenance/faults",
        headers=biomed,
        json={"serial": "P-1", "category": "cracked_screen", "description": "corner cracked"},
    )
    assert world.client.get("/api/v1/pumps/P-1", headers=biomed).json()["status"] == "needs_inspection"
    back = world.client.patch("/api/v1/pumps/P-1", headers=biomed, json={"status": "in_service"}).json()
    assert (back["status"], back["inspection_reason"]) == ("in_service", None)


def test_library_currency_lists_pumps_not_on_the_released_version(world: World) -> None:
    north = world.facility("north")
    biomed = world.as_role(Role.BIOMED, north)
    world.pump(biomed, north, "P-1")
    world.pump(biomed, north, "P-2")
    with unit_of_work(world.state.sessions) as session:
        fleet.record_status(
            session,
            world.clock,
            "P-1",
            seen_at=world.clock.now() - timedelta(minutes=1),
            installed_library_version=1,
        )
    currency = world.client.get("/api/v1/fleet/library-currency", headers=biomed).json()
    assert currency == [
        {
            "facility_id": north,
            "released_version": None,
            "released_sha256": None,
            "pumps_by_version": {"1": 1, "none": 1},
            "current": 0,
            "outdated_serials": ["P-1", "P-2"],
            "same_version_other_content": [],
        }
    ]
