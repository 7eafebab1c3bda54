"""The bench API: a biomed files twin runs and analyzer files as audited performance checks; a viewer
and an auditor read; trend, due date and the fleet's worst performers follow the filed records."""

from __future__ import annotations

from typing import Any

import pytest

from smartpump.server.auth import Role
from tests.server.conftest import World

DAY_S = 86400
RATE = 25.0


def analyzer_csv(*, over_percent: float = 0.0, minutes: float = 120, step_s: float = 30) -> str:
    grams_per_s = 0.998 * RATE * (1 + over_percent / 100) / 3600
    rows = int(minutes * 60 / step_s) + 1
    return "time_s,mass_g\n" + "".join(
        f"{i * step_s:g},{i * step_s * grams_per_s:.6f}\n" for i in range(rows)
    )


@pytest.fixture
def bench(world: World) -> int:
    facility = world.facility("north")
    biomed = world.as_role(Role.BIOMED, facility, username="tech")
    world.as_role(Role.VIEWER, facility, username="watcher")
    world.as_role(Role.AUDITOR, facility, username="auditor")
    world.as_role(Role.NURSE, facility, username="nurse")
    world.pump(biomed, facility, "LVP-A", model="lvp-4")
    world.pump(biomed, facility, "LVP-B", model="lvp-4")
    world.pump(biomed, facility, "SYR-A", model="syringe-1")
    world.pump(biomed, facility, "OLD-1", model="LVP-1")
    return facility


def _import(world: World, serial: str, **body: Any) -> Any:
    payload = {"csv": analyzer_csv(), "rate_ml_per_h": RATE} | body
    return world.client.post(
        f"/api/v1/bench/pumps/{serial}/import", headers=world.login("tech"), json=payload
    )


def test_an_analyzer_file_is_analysed_and_filed_as_an_audited_performance_check(
    world: World, bench: int
) -> None:
    response = _import(world, "LVP-A", csv=analyzer_csv(over_percent=3), notes="annual PM")
    assert response.status_code == 201, response.text
    test = response.json()
    assert test["mean_error_percent"] == pytest.approx(3.0, abs=0.01)
    assert test["passed"] is True and test["tolerance_percent"] == 5.0
    report = test["report"]
    assert len(report["startup"]) == 240
    assert [p["window_min"] for p in report["trumpet"]] == [2, 5, 11, 19, 31]
    assert all(p["ep_max_percent"] == pytest.approx(3.0, abs=0.01) for p in report["trumpet"])
    assert report["findings"][0]["rule"] == "bench.mean_error" and report["occlusion"] == []
    tech = world.login("tech")
    records = world.client.get("/api/v1/maintenance?serial=LVP-A", headers=tech).json()
    assert [(r["kind"], r["result"]) for r in records] == [("performance_check", "pass")]
    assert records[0]["id"] == test["record_id"] and "annual PM" in records[0]["notes"]
    audit = world.client.get("/api/v1/audit", headers=world.login("auditor")).json()
    filed = [a for a in audit if a["action"] == "maintenance.recorded" and a["object_id"] == "LVP-A"]
    assert filed and filed[0]["details"]["bench_test"] == test["id"]


def test_a_twin_run_measures_accuracy_and_the_occlusion_pair(world: World, bench: int) -> None:
    response = world.client.post(
        "/api/v1/bench/pumps/SYR-A/twin",
        headers=world.login("tech"),
        json={"rate_ml_per_h": 1, "set_name": "50ml", "back_pressure_mmhg": 50, "seed": 3},
    )
    assert response.status_code == 201, response.text
    test = response.json()
    assert test["source"] == "twin" and test["set_name"] == "50ml" and test["tolerance_percent"] == 2.0
    occlusion = test["report"]["occlusion"]
    assert [o["rate_ml_per_h"] for o in occlusion] == [0.01, 5.0]
    assert all(o["alarm_time_s"] > 0 for o in occlusion)
    rules = [f["rule"] for f in test["report"]["findings"]]
    assert rules.count("bench.occlusion_time") == 2 and rules.count("bench.occlusion_bolus") == 2


def test_history_trend_worst_performers_and_due_date(world: World, bench: int) -> None:
    tech = world.login("tech")
    world.client.put(
        "/api/v1/maintenance/schedules",
        headers=tech,
        json={"facility_id": bench, "model": "lvp-4", "kind": "performance_check", "interval_days": 365},
    )
    assert _import(world, "LVP-A", csv=analyzer_csv(over_percent=1)).status_code == 201
    world.clock.advance(30 * DAY_S)
    assert _import(world, "LVP-A", csv=analyzer_csv(over_percent=-2)).status_code == 201
    assert _import(world, "LVP-B", csv=analyzer_csv(over_percent=-7)).status_code == 201
    watcher = world.login("watcher")
    page = world.client.get("/api/v1/bench/pumps/LVP-A", headers=watcher).json()
    assert [round(h["mean_error_percent"]) for h in page["history"]] == [1, -2]
    assert page["claims"] == [
        {"from_rate_ml_per_h": 0.1, "tolerance_percent": 10.0},
        {"from_rate_ml_per_h": 1.0, "tolerance_percent": 5.0},
    ]
    assert page["due"]["is_overdue"] is False
    assert page["due"]["last_done"] == page["history"][-1]["performed_at"]
    faults = world.client.get("/api/v1/maintenance/faults?serial=LVP-B", headers=world.login("tech")).json()
    assert [(f["category"], f["status"]) for f in faults] == [("flow_accuracy", "open")]
    assert "bench.mean_error" in faults[0]["description"]
    flagged = world.client.get("/api/v1/pumps/LVP-B", headers=world.login("tech")).json()
    assert flagged["status"] == "needs_inspection"
    assert (
        world.client.get("/api/v1/maintenance/faults?serial=LVP-A", headers=world.login("tech")).json() == []
    )
    worst = world.client.get("/api/v1/bench/worst", headers=watcher).json()
    assert [(w["serial"], w["test"]["passed"]) for w in worst] == [("LVP-B", False), ("LVP-A", True)]
    assert worst[1]["tolerance_used"] == pytest.approx(0.4, abs=0.01)
    one = world.client.get(f"/api/v1/bench/tests/{worst[0]['test']['id']}", headers=watcher)
    assert one.status_code == 200 and one.json()["serial"] == "LVP-B"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"csv": "time,weight\n0,0\n"}, "bench.csv_columns"),
        ({"csv": analyzer_csv(minutes=60)}, "bench.too_short"),
        ({"csv": "time_s,mass_g\n0,0\n30,x\n"}, "bench.non_numeric"),
        ({"set_name": "no-such-set"}, "bench.unknown_set"),
    ],
)
def test_malformed_imports_are_refused_with_their_code_and_nothing_is_filed(
    world: World, bench: int, body: dict[str, Any], code: str
) -> None:
    response = _import(world, "LVP-A", **body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert world.client.get("/api/v1/bench/pumps/LVP-A", headers=world.login("tech")).json()["history"] == []


def test_a_pump_of_an_unknown_model_has_no_twin(world: World, bench: int) -> None:
    response = world.client.post(
        "/api/v1/bench/pumps/OLD-1/twin", headers=world.login("tech"), json={"rate_ml_per_h": 5}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "bench.unknown_model"


def test_biomed_may_file_readers_may_not_and_nurses_see_nothing(world: World, bench: int) -> None:
    for username in ("watcher", "auditor", "nurse"):
        refused = _import_as(world, username)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "access.role"
    assert world.client.get("/api/v1/bench/worst", headers=world.login("nurse")).status_code == 403
    assert world.client.get("/api/v1/bench/pumps/LVP-A", headers=world.login("auditor")).status_code == 200
    direct = world.client.post(
        "/api/v1/maintenance",
        headers=world.login("tech"),
        json={"serial": "LVP-A", "kind": "performance_check"},
    )
    assert direct.status_code == 422 and direct.json()["error"]["code"] == "maintenance.kind_bench"


def test_another_facility_cannot_see_or_file_on_the_pump(world: World, bench: int) -> None:
    south = world.facility("south")
    world.as_role(Role.BIOMED, south, username="southtech")
    response = world.client.post(
        "/api/v1/bench/pumps/LVP-A/import",
        headers=world.login("southtech"),
        json={"csv": analyzer_csv(), "rate_ml_per_h": RATE},
    )
    assert response.status_code == 404
    assert world.client.get("/api/v1/bench/worst", headers=world.login("southtech")).json() == []


def _import_as(world: World, username: str) -> Any:
    return world.client.post(
        "/api/v1/bench/pumps/LVP-A/import",
        headers=world.login(username),
        json={"csv": analyzer_csv(), "rate_ml_per_h": RATE},
    )
