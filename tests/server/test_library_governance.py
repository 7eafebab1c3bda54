"""Library governance: the release policy per facility (number and roles of approvers), lint findings named
in refusals, and change requests with a severity and the draft that resolves them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, update

from smartpump.library.formats import json_format
from smartpump.server.auth import Role
from smartpump.server.db.models import LibraryVersion
from smartpump.server.services.library_lifecycle import content_hash
from tests.factories import dose_limits, make_entry
from tests.server.conftest import World
from tests.server.test_libraries import LIBS, Team

POLICIES = f"{LIBS}/release-policies"


@pytest.fixture
def team(world: World) -> Team:
    made = Team(world)
    world.user((Role.PHYSICIAN, made.facility), username="doc")
    world.user((Role.NURSE, made.facility), username="nel")
    world.user((Role.ADMIN, None), username="root")
    return made


def _in_review(team: Team) -> dict[str, Any]:
    draft = team.draft()
    assert team.post(draft["id"], "submit", "pam").status_code == 200
    return draft


def _set_policy(team: Team, min_approvers: int, roles: list[str]) -> Any:
    return team.world.client.put(
        f"{POLICIES}/{team.facility}",
        headers=team.h("root"),
        json={"min_approvers": min_approvers, "required_roles": roles},
    )


def test_default_policy_is_two_distinct_approvers_one_a_pharmacy_approver(team: Team) -> None:
    policy = team.world.client.get(f"{POLICIES}/{team.facility}", headers=team.h("pam")).json()
    assert (policy["min_approvers"], policy["required_roles"], policy["is_default"]) == (
        2,
        ["pharmacy_approver"],
        True,
    )
    draft = _in_review(team)
    assert team.post(draft["id"], "approve", "apa").status_code == 200
    refused = team.post(draft["id"], "release", "apa")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "library.policy_unmet")
    assert "1 more approver(s) in total" in refused.json()["error"]["message"]
    assert team.post(draft["id"], "approve", "abe").status_code == 200
    assert team.post(draft["id"], "release", "apa").json()["status"] == "released"


def test_under_the_default_policy_a_nurse_approval_does_not_count(team: Team) -> None:
    draft = _in_review(team)
    refused = team.post(draft["id"], "approve", "nel")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "library.approver_role")


def test_configured_policy_needs_pharmacy_physician_and_nurse(team: Team) -> None:
    policy = _set_policy(team, 3, ["pharmacy_approver", "physician", "nurse"])
    assert policy.status_code == 200, policy.text
    assert policy.json()["is_default"] is False
    draft = _in_review(team)
    for approver in ("apa", "abe"):
        assert team.post(draft["id"], "approve", approver).status_code == 200
    standing = team.world.client.get(f"{LIBS}/{draft['id']}/policy-standing", headers=team.h("aud")).json()
    assert standing["satisfied"] is False
    assert standing["missing"] == ["1 more physician", "1 more nurse"]
    refused = team.post(draft["id"], "release", "apa")
    assert refused.json()["error"]["code"] == "library.policy_unmet"
    assert team.post(draft["id"], "approve", "doc").status_code == 200
    assert team.post(draft["id"], "approve", "nel").status_code == 200
    roles = [
        a["role"]
        for a in team.world.client.get(f"{LIBS}/{draft['id']}/approvals", headers=team.h("aud")).json()
    ]
    assert roles == ["pharmacy_approver", "pharmacy_approver", "physician", "nurse"]
    assert team.post(draft["id"], "release", "abe").json()["status"] == "released"
    assert [r["outcome"] for r in team.audit("release_policy.set")] == ["success"]


def test_approval_in_a_role_the_approver_does_not_hold_is_refused(team: Team) -> None:
    _set_policy(team, 2, ["pharmacy_approver", "physician"])
    draft = _in_review(team)
    refused = team.post(draft["id"], "approve", "apa", {"role": "physician"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "library.approver_role")


@pytest.mark.parametrize(
    ("min_approvers", "roles", "code"),
    [
        (2, ["physician", "nurse"], "policy.pharmacy"),
        (2, ["pharmacy_approver", "biomed"], "policy.role"),
        (2, ["pharmacy_approver", "physician", "nurse"], "policy.min_approvers"),
    ],
)
def test_a_policy_that_weakens_the_release_is_refused(
    team: Team, min_approvers: int, roles: list[str], code: str
) -> None:
    response = _set_policy(team, min_approvers, roles)
    assert (response.status_code, response.json()["error"]["code"]) == (422, code)


def test_a_single_approver_policy_is_refused_by_the_schema(team: Team) -> None:
    assert _set_policy(team, 1, ["pharmacy_approver"]).status_code == 422


def test_only_an_admin_sets_the_policy(team: Team) -> None:
    response = team.world.client.put(
        f"{POLICIES}/{team.facility}",
        headers=team.h("apa"),
        json={"min_approvers": 2, "required_roles": ["pharmacy_approver"]},
    )
    assert response.status_code == 403


def test_release_refused_for_lint_errors_names_the_findings(team: Team, engine: Engine) -> None:
    approved = team.approved()
    bad = make_entry(dose=dose_limits("mcg/kg/min", soft_max=20))
    library = json_format.loads(
        team.world.client.get(f"{LIBS}/{approved['id']}/document", headers=team.h("pam")).text
    )
    broken = type(library)(
        **{
            **{
                f: getattr(library, f)
                for f in ("name", "version", "hospital_id", "drugs", "care_areas", "provenance")
            },
            "entries": (bad,),
        }
    )
    with engine.begin() as connection:  # a rule tightened after approval: the stored content now fails lint
        connection.execute(
            update(LibraryVersion)
            .where(LibraryVersion.id == approved["id"])
            .values(document=json_format.dumps(broken), content_hash=content_hash(broken))
        )
    refused = team.post(approved["id"], "release", "abe")
    error = refused.json()["error"]
    assert (refused.status_code, error["code"]) == (422, "library.lint_errors")
    assert "lint.high_alert.no_hard_max at entry:" in error["message"]
    assert [d["rule"] for d in error["details"]] == ["lint.high_alert.no_hard_max"]


def test_emergency_release_needs_a_pharmacy_approver(team: Team) -> None:
    _set_policy(team, 3, ["pharmacy_approver", "physician", "nurse"])
    draft = team.draft()
    for approver in ("doc", "nel"):
        assert team.post(draft["id"], "approve", approver, {"emergency": True}).status_code == 200
    refused = team.post(draft["id"], "emergency-release", "abe", {"reason": "wrong heparin strength"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "library.pharmacy_required")


def test_emergency_release_opens_a_high_severity_review_naming_what_was_waived(team: Team) -> None:
    _set_policy(team, 3, ["pharmacy_approver", "physician", "nurse"])
    draft = team.draft()
    for approver in ("apa", "doc"):
        assert team.post(draft["id"], "approve", approver, {"emergency": True}).status_code == 200
    released = team.post(draft["id"], "emergency-release", "abe", {"reason": "wrong heparin strength"})
    assert released.json()["status"] == "released", released.text
    (review,) = team.world.client.get("/api/v1/change-requests", headers=team.h("pam")).json()
    assert review["severity"] == "high"
    assert "release policy waived: 1 more nurse)" in review["reason"]


def test_change_request_has_a_severity_and_is_closed_by_the_release_of_its_draft(team: Team) -> None:
    released = team.approved()
    team.post(released["id"], "release", "abe")
    asked = team.world.client.post(
        "/api/v1/change-requests",
        headers=team.h("pam"),
        json={
            "facility_id": team.facility,
            "library_id": released["id"],
            "title": "Heparin hard max",
            "reason": "heparin x10 is only a soft alert",
            "severity": "critical",
        },
    ).json()
    assert (asked["severity"], asked["status"], asked["resolved_by_id"]) == ("critical", "open", None)
    draft = team.world.client.post(
        LIBS, json={"facility_id": team.facility, "based_on_id": released["id"]}, headers=team.h("pam")
    ).json()
    linked = team.world.client.post(
        f"/api/v1/change-requests/{asked['id']}/draft",
        headers=team.h("pam"),
        json={"library_id": draft["id"]},
    ).json()
    assert (linked["status"], linked["resolved_by_id"]) == ("accepted", draft["id"])
    team.post(draft["id"], "submit", "pam")
    for approver in ("apa", "ace"):
        team.post(draft["id"], "approve", approver)
    assert team.post(draft["id"], "release", "abe").json()["status"] == "released"
    (closed,) = team.world.client.get("/api/v1/change-requests", headers=team.h("pam")).json()
    assert closed["status"] == "done"
    assert closed["decision_note"] == "resolved by the release of v2"
    assert [r["details"]["severity"] for r in team.audit("change_request.resolved")] == ["critical"]


def test_a_released_version_cannot_resolve_a_change_request(team: Team) -> None:
    released = team.approved()
    team.post(released["id"], "release", "abe")
    asked = team.world.client.post(
        "/api/v1/change-requests",
        headers=team.h("pam"),
        json={"facility_id": team.facility, "title": "x", "reason": "why not", "severity": "low"},
    ).json()
    refused = team.world.client.post(
        f"/api/v1/change-requests/{asked['id']}/draft",
        headers=team.h("pam"),
        json={"library_id": released["id"]},
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "library.state")


def test_unknown_severity_is_refused(team: Team) -> None:
    response = team.world.client.post(
        "/api/v1/change-requests",
        headers=team.h("pam"),
        json={"facility_id": team.facility, "title": "x", "reason": "why not", "severity": "urgent"},
    )
    assert response.status_code == 422
