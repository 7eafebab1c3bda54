"""Software packages under two-person control (issue 15: one biomed registered a package with an arbitrary
SHA-256, which the server signed and deployed): the server hashes the uploaded artefact itself, the package
is signed only when a second person (another biomed or an admin) approves it, never its uploader, and an
unapproved package cannot be deployed."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from smartpump.library.keys import KeyPurpose, TrustStore
from smartpump.pump.software import verify_package
from smartpump.server.auth import Role
from smartpump.server.db.models_fleet_ops import SoftwarePackage
from tests.server.conftest import World

PACKAGES = "/api/v1/software-packages"
ARTEFACT = b"\x7fELF synthetic pump image (test data) " + bytes(range(256)) * 64


def _upload(world: World, headers: dict[str, str], version: str = "1.1.0", data: bytes = ARTEFACT) -> Any:
    return world.client.post(
        PACKAGES,
        headers=headers,
        data={"model": "lvp-4", "version": version},
        files={"artefact": ("image.bin", data, "application/octet-stream")},
    )


def _approve(world: World, headers: dict[str, str], package_id: int) -> Any:
    return world.client.post(f"{PACKAGES}/{package_id}/approve", headers=headers)


@pytest.fixture
def site(world: World) -> tuple[World, int]:
    """Two biomedical engineers (bea uploads, ben approves) and an admin in one facility."""
    facility = world.facility("north")
    world.user((Role.BIOMED, facility), username="bea")
    world.user((Role.BIOMED, facility), username="ben")
    world.user((Role.ADMIN, None), username="ann")
    return world, facility


def test_the_server_records_the_hash_and_size_of_the_uploaded_artefact(site: tuple[World, int]) -> None:
    world, _ = site
    uploaded = _upload(world, world.login("bea"))
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["sha256"] == hashlib.sha256(ARTEFACT).hexdigest()
    assert body["size_bytes"] == len(ARTEFACT)
    assert (body["status"], body["created_by"], body["approved_by"]) == ("pending", "bea", None)


def test_a_typed_hash_is_no_way_to_register_a_package(site: tuple[World, int]) -> None:
    world, _ = site
    typed = world.client.post(
        PACKAGES, headers=world.login("bea"), json={"model": "lvp-4", "version": "1.1.0", "sha256": "0" * 64}
    )
    assert typed.status_code == 422
    assert world.client.get(PACKAGES, headers=world.login("bea")).json() == []


@pytest.mark.parametrize(
    ("version", "data", "code"),
    [("1.1.0", b"", "software.empty"), ("one", ARTEFACT, "software.invalid")],
)
def test_an_empty_artefact_or_a_bad_version_is_refused(
    site: tuple[World, int], version: str, data: bytes, code: str
) -> None:
    world, _ = site
    refused = _upload(world, world.login("bea"), version, data)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == code


def test_the_uploader_cannot_approve_and_the_refusal_is_audited(site: tuple[World, int]) -> None:
    world, _ = site
    package = _upload(world, world.login("bea")).json()
    refused = _approve(world, world.login("bea"), package["id"])
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "software.separation_of_duties"
    auditor = world.as_role(Role.AUDITOR, None)
    records = world.client.get(
        "/api/v1/audit", headers=auditor, params={"action": "software.approved"}
    ).json()
    assert [(r["actor"], r["outcome"]) for r in records] == [("bea", "denied")]
    assert world.client.get(PACKAGES, headers=world.login("bea")).json()[0]["status"] == "pending"


def test_an_unapproved_package_cannot_be_deployed(site: tuple[World, int]) -> None:
    world, facility = site
    package = _upload(world, world.login("bea")).json()
    deployed = world.client.post(
        "/api/v1/deployments",
        headers=world.login("bea"),
        json={
            "facility_id": facility,
            "kind": "software",
            "package_id": package["id"],
            "target_kind": "all",
            "waves": [100],
            "pause_s": 0,
        },
    )
    assert deployed.status_code == 409 and deployed.json()["error"]["code"] == "software.not_approved"


@pytest.mark.parametrize("approver", ["ben", "ann"])
def test_a_second_biomed_or_an_admin_approves_and_the_signature_covers_the_computed_hash(
    site: tuple[World, int], approver: str
) -> None:
    world, _ = site
    package = _upload(world, world.login("bea")).json()
    approved = _approve(world, world.login(approver), package["id"])
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("approved", approver)
    again = _approve(world, world.login("ben" if approver == "ann" else "ann"), package["id"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "software.not_pending"
    with world.state.sessions() as session:
        row = session.get(SoftwarePackage, package["id"])
        assert row is not None and row.signed is not None
        document = json.loads(row.signed)
    assert document["sha256"] == hashlib.sha256(ARTEFACT).hexdigest()
    trust = TrustStore.from_document(world.client.get("/api/v1/keys", headers=world.login("bea")).json())
    key = trust.key_for(document["key_id"], KeyPurpose.SOFTWARE)
    assert verify_package(document, key, model="lvp-4", installed="1.0.0") == "1.1.0"
    assert len(base64.b64decode(document["signature"])) == 64


@pytest.mark.parametrize("role", [Role.PHARMACIST, Role.NURSE, Role.PHARMACY_APPROVER])
def test_only_biomeds_and_admins_approve(site: tuple[World, int], role: Role) -> None:
    world, facility = site
    package = _upload(world, world.login("bea")).json()
    refused = _approve(world, world.as_role(role, facility), package["id"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "access.role"
