"""What-if replay of a draft over the stored programs, and limit suggestions that become a normal draft."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from smartpump.library.formats import json_format
from tests.factories import dose_limits, make_drug, make_entry
from tests.server.conftest import START, World, library_payload
from tests.server.cqi_history import LIBS, CqiTeam, north_history, south_history

WINDOW = {"since": (START - timedelta(days=1)).isoformat(), "until": (START + timedelta(days=1)).isoformat()}


@pytest.fixture
def team(world: World) -> CqiTeam:
    team = CqiTeam(world)
    team.released_north_v2()
    team.store(north_history())
    team.store(south_history())
    return team


def _draft_with_soft_max(team: CqiTeam, soft_max: int) -> int:
    """A draft based on north's release with the dopamine dose soft max changed."""
    client = team.world.client
    created = client.post(
        LIBS, json={"facility_id": team.north, "based_on_id": team.released_id}, headers=team.h("n-pharm")
    )
    assert created.status_code == 201, created.text
    draft_id: int = created.json()["id"]
    entry = make_entry(
        dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_min=2, soft_max=soft_max, hard_max=30)
    )
    put = client.put(
        f"{LIBS}/{draft_id}/entries/{entry.id}",
        content=json_format.encode_json(json_format.encode_value(entry)),
        headers={**team.h("n-pharm"), "Content-Type": "application/json"},
    )
    assert put.status_code == 200, put.text
    return draft_id


def _replay(team: CqiTeam, username: str, draft_id: int) -> Any:
    return team.world.client.post(
        "/api/v1/cqi/replay", headers=team.h(username), json={"draft_id": draft_id} | WINDOW
    )


def test_replay_reports_alerts_before_and_after_per_entry(team: CqiTeam) -> None:
    draft_id = _draft_with_soft_max(team, 26)
    response = _replay(team, "n-appr", draft_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["released_version"], body["candidate_id"], body["programs"]) == (2, draft_id, 7)
    rows = {r["entry_id"]: r for r in body["entries"]["rows"]}
    dopamine = rows["icu-dopamine"]
    # doses 5, 25, 35, 10, 24, 28: soft 25/24/28 under 20; under 26 only 28 stays soft; 35 stays hard
    assert (dopamine["programs"], dopamine["soft_alerts_before"], dopamine["soft_alerts_after"]) == (6, 3, 1)
    assert (dopamine["hard_alerts_before"], dopamine["hard_alerts_after"]) == (1, 1)
    assert dopamine["verdict_changes"] == 2
    changed = {
        (c["pump"], c["seq"]): (c["verdict_before"], c["verdict_after"]) for c in body["changes"]["rows"]
    }
    assert changed == {("P-1", 4): ("soft", "ok"), ("P-2", 2): ("soft", "ok")}
    assert body["changes_total"] == 2


def test_replay_refuses_other_facilities_and_released_versions(team: CqiTeam) -> None:
    draft_id = _draft_with_soft_max(team, 26)
    elsewhere = _replay(team, "s-pharm", draft_id)
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "library.not_found")
    released = _replay(team, "n-pharm", team.released_id)
    assert (released.status_code, released.json()["error"]["code"]) == (409, "cqi.not_a_candidate")


def _suggest(team: CqiTeam, username: str, library_id: int, **extra: Any) -> Any:
    return team.world.client.post(
        "/api/v1/cqi/suggestions",
        headers=team.h(username),
        json={"released_id": library_id} | WINDOW | extra,
    )


def test_suggestion_becomes_a_draft_with_its_evidence(team: CqiTeam) -> None:
    response = _suggest(team, "n-dual", team.released_id, min_overrides=2)
    assert response.status_code == 201, response.text
    body = response.json()
    (suggestion,) = body["suggestions"]
    # overridden doses 24 and 25: the 0.9 quantile is 25; the lowest good catch above 20 is 28, so 25 holds
    assert (suggestion["entry_id"], suggestion["current"], suggestion["proposed"]) == (
        "icu-dopamine",
        "20",
        "25",
    )
    assert (suggestion["lowest_good_catch"], suggestion["hard_max"]) == ("28", "30")
    assert (suggestion["soft_alerts_before"], suggestion["soft_alerts_after"]) == (3, 1)
    assert (suggestion["good_catches"], suggestion["good_catches_kept"]) == (2, 2)
    assert "icu-dopamine: dose soft_max 20 -> 25" in body["note"]
    draft = team.world.client.get(f"{LIBS}/{body['draft_id']}", headers=team.h("n-aud")).json()
    assert (draft["status"], draft["version"], draft["based_on_id"]) == ("draft", 3, team.released_id)
    document = team.world.client.get(f"{LIBS}/{body['draft_id']}/document", headers=team.h("n-aud")).json()
    (entry,) = document["entries"]
    limits = entry["dose"]["limits"]
    assert (limits["soft_min"], limits["soft_max"], limits["hard_max"]) == (2, 25, 30)
    requests = team.world.client.get("/api/v1/change-requests", headers=team.h("n-aud")).json()
    (request,) = [r for r in requests if r["id"] == body["change_request_id"]]
    assert request["library_version_id"] == body["draft_id"]
    assert "good catches still alerting 2/2" in request["reason"]


def test_suggestion_draft_goes_through_lint_diff_and_review_but_not_self_approval(team: CqiTeam) -> None:
    client = team.world.client
    draft_id = _suggest(team, "n-dual", team.released_id, min_overrides=2).json()["draft_id"]
    lint = client.get(f"{LIBS}/{draft_id}/lint", headers=team.h("n-appr"))
    assert lint.status_code == 200
    assert [f for f in lint.json() if f["severity"] == "error"] == []
    diff = client.get(f"{LIBS}/{draft_id}/diff", headers=team.h("n-appr")).json()
    changes = [(c["parameter"], c["old"], c["new"]) for c in diff["changes"]]
    assert changes == [("version", "2", "3"), ("dose.soft_max", "20", "25")]
    assert client.post(f"{LIBS}/{draft_id}/submit", headers=team.h("n-dual"), json={}).status_code == 200
    own = client.post(f"{LIBS}/{draft_id}/approve", headers=team.h("n-dual"), json={})
    assert own.status_code == 403
    assert own.json()["error"]["code"] == "library.separation_of_duties"
    other = client.post(f"{LIBS}/{draft_id}/approve", headers=team.h("n-appr"), json={})
    assert other.status_code == 200
    assert other.json()["status"] == "approved"


def test_no_suggestion_creates_no_draft(team: CqiTeam) -> None:
    before = team.world.client.get(LIBS, headers=team.h("n-aud")).json()
    response = _suggest(team, "n-pharm", team.released_id)  # default: 3 overrides needed, 2 recorded
    assert response.status_code == 200
    assert (response.json()["draft_id"], response.json()["suggestions"]) == (None, [])
    assert team.world.client.get(LIBS, headers=team.h("n-aud")).json() == before


def test_bad_suggestion_requests_are_refused(team: CqiTeam) -> None:
    draft_id = _draft_with_soft_max(team, 26)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"released_id": draft_id}, 409, "cqi.not_released"),
        ({"quantile": 0}, 422, "request.invalid"),
        ({"min_overrides": 0}, 422, "request.invalid"),
        ({"since": "2026-03-01T00:00:00", "until": None}, 422, "cqi.naive_time"),
        ({"since": "2026-03-05T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, 422, "cqi.window"),
    ]
    for body, status, code in cases:
        response = _suggest(team, "n-pharm", team.released_id, **body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    elsewhere = _suggest(team, "s-pharm", team.released_id, min_overrides=2)
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "library.not_found")


def _released_without_hard_max(team: CqiTeam) -> int:
    """Version 3 of north: dopamine cleared of its high-alert flag by the pharmacist and entered without a
    dose hard max (lint allows that for a drug that is not high-alert), reviewed and released."""
    entry = make_entry(dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_min=2, soft_max=20))
    payload = library_payload(
        team.north, version=3, drugs=(make_drug(is_high_alert=False),), entries=(entry,)
    )
    created = team.world.post_json(LIBS, payload, team.h("n-pharm"))
    assert created.status_code == 201, created.text
    library_id: int = created.json()["id"]
    for action, user in (
        ("submit", "n-pharm"),
        ("approve", "n-appr"),
        ("approve", "n-appr2"),
        ("release", "n-appr"),
    ):
        response = team.world.client.post(f"{LIBS}/{library_id}/{action}", headers=team.h(user), json={})
        assert response.status_code == 200, response.text
    return library_id


def test_suggestion_on_an_entry_without_hard_max_warns_in_the_api_note_and_cqi_page(team: CqiTeam) -> None:
    released = _released_without_hard_max(team)
    response = _suggest(team, "n-dual", released, min_overrides=2)
    assert response.status_code == 201, response.text
    body = response.json()
    (suggestion,) = body["suggestions"]
    # overrides 24 and 25 -> soft max 25; the good catch at 28 -> a hard max of 27 blocks it, no override
    assert (suggestion["proposed"], suggestion["hard_max"], suggestion["proposed_hard_max"]) == (
        "25",
        None,
        "27",
    )
    (warning,) = suggestion["warnings"]
    assert "raising the soft max to 25 mcg/kg/min leaves no hard stop above it" in warning
    assert f"WARNING: {warning}" in body["note"]
    document = team.world.client.get(f"{LIBS}/{body['draft_id']}/document", headers=team.h("n-aud")).json()
    assert "hard_max" not in document["entries"][0]["dose"]["limits"]
    team.world.clock.advance(timedelta(days=1).total_seconds())
    fresh = team.world.login("n-aud")
    page = team.world.client.get("/ui/cqi", params={"days": 2, "min_overrides": 2}, headers=fresh)
    assert page.status_code == 200, page.text
    assert "Limit suggestions" in page.text and "released v3" in page.text
    assert "(propose 27)" in page.text and "Warning, icu-dopamine: entry has no dose hard max" in page.text
