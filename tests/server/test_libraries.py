"""Library lifecycle and separation of duties (SEC-RBAC-01..08).

draft -> in review -> approved -> released -> retired; approvals are bound to the content hash; the
author/editors never approve or release; a release needs what the facility's release policy asks for (by
default two distinct approvers, one a pharmacy approver); emergency release needs two approvers and a reason.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, update

from smartpump.errors import SignatureError
from smartpump.library import signing
from smartpump.library.formats import json_format
from smartpump.library.keys import KeyPurpose, TrustStore
from smartpump.library.model import LibraryStatus
from smartpump.server.auth import Role
from smartpump.server.db.models import LibraryVersion
from tests.factories import dose_limits, make_entry
from tests.server.conftest import World, library_payload

LIBS = "/api/v1/libraries"


class Team:
    """A facility with an author, three pharmacy approvers, a dual-role pharmacist and an auditor."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.facility = world.facility("north")
        world.user((Role.PHARMACIST, self.facility), username="pam")
        world.user((Role.PHARMACY_APPROVER, self.facility), username="apa")
        world.user((Role.PHARMACY_APPROVER, self.facility), username="abe")
        world.user((Role.PHARMACY_APPROVER, self.facility), username="ace")
        world.user((Role.PHARMACIST, self.facility), (Role.PHARMACY_APPROVER, self.facility), username="dual")
        world.user((Role.AUDITOR, None), username="aud")

    def h(self, username: str) -> dict[str, str]:
        """Fresh headers for a team member."""
        return self.world.login(username)

    def draft(self, author: str = "pam", **overrides: Any) -> dict[str, Any]:
        """A new draft created through the API."""
        response = self.world.post_json(LIBS, library_payload(self.facility, **overrides), self.h(author))
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def post(self, library_id: int, action: str, username: str, body: dict[str, Any] | None = None) -> Any:
        """POST an action on a library version."""
        return self.world.client.post(
            f"{LIBS}/{library_id}/{action}", headers=self.h(username), json=body or {}
        )

    def approved(self, author: str = "pam", approvers: tuple[str, ...] = ("apa", "ace")) -> dict[str, Any]:
        """A draft taken through submission and the approvals the default policy needs (two)."""
        draft = self.draft(author)
        assert self.post(draft["id"], "submit", author).status_code == 200
        body: dict[str, Any] = draft
        for approver in approvers:
            response = self.post(draft["id"], "approve", approver)
            assert response.status_code == 200, response.text
            body = response.json()
        return body

    def edit_hard_max(self, library_id: int, hard_max: int, username: str = "pam") -> Any:
        """Replace the dopamine entry with a different dose hard max."""
        entry = make_entry(
            dose=dose_limits("mcg/kg/min", default=5, hard_min=1, soft_min=2, soft_max=20, hard_max=hard_max)
        )
        document = json_format.encode_json(json_format.encode_value(entry))
        return self.world.client.put(
            f"{LIBS}/{library_id}/entries/{entry.id}",
            content=document,
            headers={**self.h(username), "Content-Type": "application/json"},
        )

    def audit(self, action: str) -> list[dict[str, Any]]:
        """Audit records of one action."""
        records: list[dict[str, Any]] = self.world.client.get(
            "/api/v1/audit", headers=self.h("aud"), params={"action": action}
        ).json()
        return records


@pytest.fixture
def team(world: World) -> Team:
    return Team(world)


def test_draft_gets_version_one_and_the_hash_of_its_canonical_bytes(team: Team) -> None:
    draft = team.draft()
    document = team.world.client.get(f"{LIBS}/{draft['id']}/document", headers=team.h("pam"))
    library = json_format.loads(document.text)
    assert (draft["version"], draft["status"]) == (1, "draft")
    assert draft["content_hash"] == hashlib.sha256(json_format.canonical_bytes(library)).hexdigest()


def test_next_draft_gets_the_next_version(team: Team) -> None:
    team.draft()
    assert team.draft()["version"] == 2


def test_library_for_another_hospital_is_refused(team: Team) -> None:
    response = team.world.post_json(LIBS, library_payload(team.facility, hospital_id="south"), team.h("pam"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "library.hospital_mismatch"


def test_malformed_document_is_refused_with_every_problem(team: Team) -> None:
    body = json_format.encode_json({"facility_id": team.facility, "document": {"name": "x"}})
    response = team.world.post_json(LIBS, body, team.h("pam"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "library.schema"
    assert response.json()["error"]["details"]


def test_limits_keep_their_exact_decimals(team: Team) -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", hard_min="0.05", soft_max="20.125", hard_max=30))
    draft = team.draft(entries=(entry,))
    text = team.world.client.get(f"{LIBS}/{draft['id']}/document", headers=team.h("pam")).text
    stored = json_format.loads(text).entries[0].dose.limits
    assert (stored.hard_min, stored.soft_max) == (Decimal("0.05"), Decimal("20.125"))


def test_lint_errors_block_submission(team: Team) -> None:
    draft = team.draft(entries=(make_entry(dose=dose_limits("mcg/kg/min", soft_max=20)),))
    response = team.post(draft["id"], "submit", "pam")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "library.lint_errors"
    assert {d["rule"] for d in response.json()["error"]["details"]} == {"lint.high_alert.no_hard_max"}


def test_submit_then_approve_moves_to_approved(team: Team) -> None:
    assert team.approved()["status"] == "approved"


def test_sec_rbac_01_author_cannot_approve_own_version_even_with_the_approver_role(team: Team) -> None:
    draft = team.draft(author="dual")
    team.post(draft["id"], "submit", "dual")
    response = team.post(draft["id"], "approve", "dual")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "library.separation_of_duties"
    assert [r["outcome"] for r in team.audit("library.approved")] == ["denied"]


def test_sec_rbac_01_an_editor_cannot_approve_either(team: Team) -> None:
    draft = team.draft(author="pam")
    assert team.edit_hard_max(draft["id"], 28, username="dual").status_code == 200
    team.post(draft["id"], "submit", "pam")
    assert team.post(draft["id"], "approve", "dual").status_code == 403


def test_sec_rbac_02_release_without_an_approval_is_impossible(team: Team, engine: Engine) -> None:
    draft = team.draft()
    team.post(draft["id"], "submit", "pam")
    with engine.begin() as connection:  # force the state without an approval row
        connection.execute(
            update(LibraryVersion).where(LibraryVersion.id == draft["id"]).values(status="approved")
        )
    response = team.post(draft["id"], "release", "apa")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "library.policy_unmet"
    assert "1 more pharmacy_approver; 1 more approver(s) in total" in response.json()["error"]["message"]


def test_sec_rbac_02_emergency_release_with_one_approval_is_refused(team: Team) -> None:
    draft = team.draft()
    team.post(draft["id"], "approve", "apa", {"emergency": True})
    response = team.post(draft["id"], "emergency-release", "abe", {"reason": "wrong heparin concentration"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "library.two_approvals_required"


def test_sec_rbac_03_author_and_viewer_cannot_manage_users(team: Team) -> None:
    team.world.user((Role.VIEWER, team.facility), username="vic")
    for username in ("pam", "vic"):
        headers = team.h(username)
        assert (
            team.world.client.post(
                "/api/v1/users", headers=headers, json={"username": "x", "password": "y" * 16}
            ).status_code
            == 403
        )
        assert (
            team.world.client.post(
                "/api/v1/users/1/grants", headers=headers, json={"role": "admin"}
            ).status_code
            == 403
        )


def test_sec_rbac_04_edit_after_approval_voids_it(team: Team) -> None:
    approved = team.approved()
    edited = team.edit_hard_max(approved["id"], 25)
    assert edited.json()["status"] == "draft"
    assert edited.json()["content_hash"] != approved["content_hash"]
    approvals = team.world.client.get(f"{LIBS}/{approved['id']}/approvals", headers=team.h("aud")).json()
    assert [a["is_current"] for a in approvals] == [False, False]
    team.post(approved["id"], "submit", "pam")
    assert team.post(approved["id"], "release", "apa").status_code == 409


def test_sec_rbac_04_content_changed_in_the_database_is_not_released(team: Team, engine: Engine) -> None:
    approved = team.approved()
    tampered = json_format.loads(
        team.world.client.get(f"{LIBS}/{approved['id']}/document", headers=team.h("pam")).text
    )
    tampered = type(tampered)(
        **{
            **{
                f: getattr(tampered, f)
                for f in ("name", "version", "hospital_id", "drugs", "care_areas", "entries", "provenance")
            },
            "name": "Tampered",
        }
    )
    with engine.begin() as connection:
        connection.execute(
            update(LibraryVersion)
            .where(LibraryVersion.id == approved["id"])
            .values(document=json_format.dumps(tampered))
        )
    response = team.post(approved["id"], "release", "abe")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "library.integrity"


def test_release_signs_the_library_with_the_server_key(team: Team) -> None:
    approved = team.approved()
    released = team.post(approved["id"], "release", "abe").json()
    assert released["status"] == "released"
    signed_text = team.world.client.get(f"{LIBS}/{approved['id']}/signed", headers=team.h("pam")).text
    key = team.world.client.get("/api/v1/keys/library-signing", headers=team.h("pam")).json()
    library = signing.verify(
        signing.SignedLibrary.from_json(signed_text), key["public_key_pem"].encode(), hospital_id="north"
    )
    assert (library.version, library.status) == (1, LibraryStatus.RELEASED)
    assert released["key_id"] == key["key_id"]


def test_the_published_keys_name_their_purpose_and_a_pump_trusting_them_refuses_the_command_key(
    team: Team,
) -> None:
    approved = team.approved()
    released = team.post(approved["id"], "release", "abe").json()
    published = team.world.client.get("/api/v1/keys", headers=team.h("pam")).json()
    by_purpose = {key["purpose"]: key for key in published["keys"]}
    assert sorted(by_purpose) == sorted(p.value for p in KeyPurpose)
    assert len({key["key_id"] for key in published["keys"]}) == len(KeyPurpose)
    assert {key["status"] for key in published["keys"]} == {"active"}
    assert released["key_id"] == by_purpose["library"]["key_id"] != by_purpose["command"]["key_id"]
    trust = TrustStore.from_document(published)
    signed_text = team.world.client.get(f"{LIBS}/{approved['id']}/signed", headers=team.h("pam")).text
    signed = signing.SignedLibrary.from_json(signed_text)
    signing.verify(signed, trust.key_for(signed.key_id, KeyPurpose.LIBRARY), hospital_id="north")
    command_key = team.world.state.keys.signer(KeyPurpose.COMMAND)
    library = signing.verify(signed, by_purpose["library"]["public_key_pem"].encode())
    resigned = signing.sign(library, command_key.private_pem, command_key.key_id)
    with pytest.raises(SignatureError) as refused:
        trust.key_for(resigned.key_id, KeyPurpose.LIBRARY)
    assert refused.value.code == "signature.wrong_purpose"


def test_author_cannot_release(team: Team) -> None:
    approved = team.approved(author="dual")
    response = team.post(approved["id"], "release", "dual")
    assert response.status_code == 403


def test_new_release_retires_the_previous_one(team: Team) -> None:
    first = team.approved()
    team.post(first["id"], "release", "apa")
    second = team.approved()
    team.post(second["id"], "release", "apa")
    statuses = {
        lib["version"]: lib["status"] for lib in team.world.client.get(LIBS, headers=team.h("pam")).json()
    }
    assert statuses == {1: "retired", 2: "released"}


def test_released_version_is_frozen(team: Team) -> None:
    approved = team.approved()
    team.post(approved["id"], "release", "apa")
    response = team.edit_hard_max(approved["id"], 25)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "library.frozen"


def test_diff_against_the_release_flags_a_big_limit_change(team: Team) -> None:
    first = team.approved()
    team.post(first["id"], "release", "apa")
    draft = team.world.post_json(
        LIBS, json_format.encode_json({"facility_id": team.facility}), team.h("pam")
    ).json()
    team.edit_hard_max(draft["id"], 300)
    changes = team.world.client.get(f"{LIBS}/{draft['id']}/diff", headers=team.h("apa")).json()["changes"]
    flagged = [c for c in changes if c["flagged"]]
    assert [(c["parameter"], Decimal(str(c["factor"]))) for c in flagged] == [("dose.hard_max", Decimal(10))]


def test_sec_rbac_06_emergency_release_needs_two_approvers_and_a_reason(team: Team) -> None:
    draft = team.draft()
    team.post(draft["id"], "approve", "apa", {"emergency": True})
    team.post(draft["id"], "approve", "abe", {"emergency": True})
    assert team.post(draft["id"], "emergency-release", "abe", {"reason": ""}).status_code == 422
    released = team.post(draft["id"], "emergency-release", "abe", {"reason": "wrong heparin concentration"})
    assert released.status_code == 200
    assert (released.json()["status"], released.json()["is_emergency"]) == ("released", True)
    assert [r["outcome"] for r in team.audit("library.emergency_released")] == ["alert"]
    requests = team.world.client.get("/api/v1/change-requests", headers=team.h("pam")).json()
    assert [r["title"] for r in requests] == ["Post-hoc review of emergency release v1"]


def test_sec_rbac_08_library_of_another_facility_is_not_found(team: Team) -> None:
    draft = team.draft()
    south = team.world.facility("south")
    team.world.user((Role.PHARMACY_APPROVER, south), username="sam")
    response = team.post(draft["id"], "approve", "sam")
    assert response.status_code == 404
    assert team.world.client.get(f"{LIBS}/{draft['id']}", headers=team.h("sam")).status_code == 404


def test_overdue_reviews_list_entries_never_or_long_ago_reviewed(team: Team) -> None:
    approved = team.approved()
    team.post(approved["id"], "release", "apa")
    overdue = team.world.client.get(f"{LIBS}/reviews/overdue", headers=team.h("pam")).json()
    assert [(o["entry_id"], o["last_reviewed"]) for o in overdue] == [("icu-dopamine", None)]


def test_marking_an_entry_reviewed_records_today(team: Team) -> None:
    draft = team.draft()
    team.post(draft["id"], "entries/icu-dopamine/reviewed", "pam")
    text = team.world.client.get(f"{LIBS}/{draft['id']}/document", headers=team.h("pam")).text
    assert json_format.loads(text).entries[0].last_reviewed == team.world.clock.now().date().isoformat()


def test_change_request_is_created_and_decided(team: Team) -> None:
    team.world.user((Role.NURSE, team.facility), username="nina")
    created = team.world.client.post(
        "/api/v1/change-requests",
        headers=team.h("nina"),
        json={"facility_id": team.facility, "title": "Raise heparin bolus", "reason": "new protocol"},
    ).json()
    decided = team.world.client.post(
        f"/api/v1/change-requests/{created['id']}/decision",
        headers=team.h("pam"),
        json={"status": "accepted", "note": "in v2"},
    ).json()
    assert (created["status"], decided["status"]) == ("open", "accepted")
