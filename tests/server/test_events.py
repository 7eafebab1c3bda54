"""Event store: exactly-once per (pump, seq), queries, and PHI access control."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartpump.server.auth import Role
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.errors import NotFoundError
from smartpump.server.services.events import IncomingEvent, index_key, store_events
from tests.server.conftest import World


def _event(
    world: World,
    seq: int,
    *,
    pump: str = "P-1",
    kind: str = "infusion.started",
    patient: str | None = "MRN-42",
    minutes: int = 0,
) -> IncomingEvent:
    data = {"rate_ml_per_h": "5"} | ({"patient_id": patient, "order_id": f"ORD-{seq}"} if patient else {})
    return IncomingEvent(
        pump=pump,
        seq=seq,
        ts=world.clock.now() + timedelta(minutes=minutes),
        type=kind,
        channel="A",
        data=data,
    )


def _store(world: World, events: list[IncomingEvent]) -> tuple[int, int]:
    with unit_of_work(world.state.sessions) as session:
        result = store_events(session, world.clock, events)
    return result.stored, result.duplicates


@pytest.fixture
def north(world: World) -> int:
    facility = world.facility("north")
    world.pump(world.as_role(Role.BIOMED, facility, username="tech"), facility, "P-1")
    return facility


def test_same_event_twice_is_stored_once(world: World, north: int) -> None:
    assert _store(world, [_event(world, 1), _event(world, 2)]) == (2, 0)
    assert _store(world, [_event(world, 2), _event(world, 3)]) == (1, 1)
    nurse = world.as_role(Role.NURSE, north)
    assert [e["seq"] for e in world.client.get("/api/v1/events", headers=nurse).json()] == [1, 2, 3]


def test_unknown_pump_is_refused(world: World, north: int) -> None:
    with pytest.raises(NotFoundError):
        _store(world, [_event(world, 1, pump="GHOST")])


def test_events_filter_by_type_patient_order_and_time(world: World, north: int) -> None:
    _store(
        world,
        [
            _event(world, 1, minutes=0),
            _event(world, 2, kind="alarm.raised", minutes=5),
            _event(world, 3, patient="MRN-7", minutes=10),
        ],
    )
    nurse = world.as_role(Role.NURSE, north)

    def seqs(**params: str) -> list[int]:
        return [e["seq"] for e in world.client.get("/api/v1/events", headers=nurse, params=params).json()]

    assert seqs(type="alarm.raised") == [2]
    assert seqs(patient_id="MRN-7") == [3]
    assert seqs(order_id="ORD-1") == [1]
    assert seqs(since=(world.clock.now() + timedelta(minutes=5)).isoformat()) == [2, 3]
    assert seqs(pump="P-1", limit="1") == [1]


def test_biomed_sees_events_with_patient_data_redacted(world: World, north: int) -> None:
    _store(world, [_event(world, 1)])
    biomed = world.login("tech")
    (event,) = world.client.get("/api/v1/events", headers=biomed).json()
    assert event["patient_id"] == "[redacted]"
    assert event["data"]["patient_id"] == "[redacted]"
    assert event["data"]["rate_ml_per_h"] == "5"


def test_biomed_cannot_search_by_patient(world: World, north: int) -> None:
    response = world.client.get(
        "/api/v1/events", headers=world.login("tech"), params={"patient_id": "MRN-42"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "events.phi_forbidden"


def test_patient_searches_are_audited(world: World, north: int) -> None:
    _store(world, [_event(world, 1)])
    world.client.get(
        "/api/v1/events",
        headers=world.as_role(Role.NURSE, north, username="nina"),
        params={"patient_id": "MRN-42"},
    )
    auditor = world.as_role(Role.AUDITOR, None)
    (record,) = world.client.get(
        "/api/v1/audit", headers=auditor, params={"action": "phi.events_read"}
    ).json()
    assert record["actor"] == "nina"
    assert record["details"]["patients_returned"] == ["MRN-42"]


def test_events_of_another_facility_are_invisible(world: World, north: int) -> None:
    _store(world, [_event(world, 1)])
    south = world.facility("south")
    nurse = world.as_role(Role.NURSE, south)
    assert world.client.get("/api/v1/events", headers=nurse).json() == []
    assert world.client.get("/api/v1/events", headers=nurse, params={"pump": "P-1"}).status_code == 404


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("MRN-1", "MRN-1"),
        (12345, "12345"),
        ("x" * 64, "x" * 64),
        ("x" * 65, None),
        ("tab\there", None),
        ("nul\u0000", None),
        (True, None),
        ({"id": 1}, None),
        (None, None),
    ],
)
def test_index_key_is_the_identifier_or_nothing(value: object, key: str | None) -> None:
    assert index_key(value) == key
