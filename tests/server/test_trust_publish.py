"""Key rotation reaches the pumps: the server signs the keyring's trust list with the trust-root key and
sends it to every pump of the facility (``trust.install``); after that a library signed by the rotated-in
key installs on pumps that started with only the old key. A forged or rolled-back list is refused and
logged, and the pumps keep what they trusted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from smartpump.cli import keyring as keyring_cli  # noqa: F401  (registers the keys commands)
from smartpump.cli.library import register
from smartpump.clock import WallClock
from smartpump.demo.fleet import SimFleet
from smartpump.library import signing
from smartpump.library.keys import KeyPurpose
from smartpump.library.trust_list import sign_trust_list
from smartpump.server import keys
from smartpump.server.auth import Role
from smartpump.server.db.models import AuditRecord
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services import commands
from smartpump.server.settings import Settings
from smartpump.transport.commands import (
    INSTALL_LIBRARY,
    INSTALL_TRUST,
    install_library_args,
    install_trust_args,
)
from tests.factories import make_library
from tests.server.conftest import World, error_code
from tests.server.connected_helpers import Harness, linked_fleet

HOSPITAL = "north"


class Rig:
    """The linked fleet, an admin of its facility and the keyring directory."""

    def __init__(self, harness: Harness, fleet: SimFleet, directory: Path) -> None:
        self.harness = harness
        self.fleet = fleet
        self.directory = directory
        self.client = TestClient(harness.app, raise_server_exceptions=False)
        self.world = World(harness.app, self.client, WallClock())  # type: ignore[arg-type]
        self.world.user((Role.ADMIN, harness.facility_id), username="ada")
        self.admin = self.world.login("ada")

    def publish(self) -> Any:
        response = self.client.post(
            "/api/v1/keys/publish", headers=self.admin, json={"facility_id": self.harness.facility_id}
        )
        assert response.status_code == 201, response.text
        self.harness.pump_messages(step=self.fleet.advance)
        return response.json()

    def standing(self) -> list[tuple[str, int | None, str | None, str | None]]:
        response = self.client.get(
            "/api/v1/keys/trust-list", headers=self.admin, params={"facility_id": self.harness.facility_id}
        )
        assert response.status_code == 200, response.text
        return [(p["serial"], p["version"], p["status"], p["result_code"]) for p in response.json()]

    def send(self, serial: str, command: str, args: dict[str, object]) -> None:
        with unit_of_work(self.harness.state.sessions) as session:
            commands.issue_command(
                session, self.harness.state, pump_serial=serial, command=command, args=args, actor="test"
            )
        self.harness.pump_messages(step=self.fleet.advance)

    def events(self, serial: str, kind: str) -> list[dict[str, Any]]:
        return [
            e["data"]
            for (pump, _), e in sorted(self.harness.stored().items())
            if pump == serial and e["type"] == kind
        ]

    def keyring(self) -> keys.Keyring:
        return keys.load(self.directory, create_missing=False, now=datetime.now(UTC))


@pytest.fixture
def rig(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Rig]:
    with linked_fleet(settings, engine, tmp_path, hospital=HOSPITAL) as (harness, fleet):
        yield Rig(harness, fleet, settings.signing_keys_dir)


def _library_install(signer: keys.SigningKey, version: int) -> dict[str, object]:
    library = make_library(hospital_id=HOSPITAL, version=version)
    return install_library_args(signing.sign(library, signer.private_pem, signer.key_id))


def test_a_rotated_library_key_signs_for_the_fleet_only_after_its_trust_list_is_published(rig: Rig) -> None:
    first = rig.fleet.serials()[0]
    old = rig.keyring().signer(KeyPurpose.LIBRARY)
    new = keys.add_key(rig.directory, KeyPurpose.LIBRARY, datetime.now(UTC))
    keys.activate(rig.directory, new.key_id)
    rig.send(first, INSTALL_LIBRARY, _library_install(rig.keyring().signer(KeyPurpose.LIBRARY), 2))
    assert [e["code"] for e in rig.events(first, "library.rejected")] == ["signature.unknown_key"]
    assert rig.standing() == [(s, None, None, None) for s in rig.fleet.serials()]

    published = rig.publish()

    assert published["version"] == 1
    assert f"library:{new.key_id}" in published["key_ids"] and f"library:{old.key_id}" in published["key_ids"]
    assert rig.standing() == [(s, 1, "accepted", None) for s in rig.fleet.serials()]
    for serial in rig.fleet.serials():
        [installed] = rig.events(serial, "trust.installed")
        assert installed["version"] == 1 and installed["previous_version"] == 0
        assert rig.fleet.pump(serial).trust_version == 1
    rig.send(first, INSTALL_LIBRARY, _library_install(rig.keyring().signer(KeyPurpose.LIBRARY), 2))
    [installed_library] = rig.events(first, "library.installed")
    assert (installed_library["version"], installed_library["key_id"]) == (2, new.key_id)

    keys.retire(rig.directory, old.key_id)
    assert rig.publish()["version"] == 2
    assert rig.standing() == [(s, 2, "accepted", None) for s in rig.fleet.serials()]
    assert old.key_id not in {k.key_id for k in rig.fleet.pump(first).trust.keys}
    assert rig.events(first, "trust.installed")[-1]["revoked"] == [old.key_id]
    with rig.harness.session() as session:
        audited = session.scalars(
            select(AuditRecord.object_id).where(AuditRecord.action == "trust_list.published")
        ).all()
    assert audited == ["1", "2"]


def test_a_forged_or_rolled_back_trust_list_is_refused_logged_and_changes_nothing(rig: Rig) -> None:
    first = rig.fleet.serials()[0]
    rig.publish()
    held = rig.fleet.pump(first).trust.keys
    root = rig.keyring().signer(KeyPurpose.TRUST)
    forged = sign_trust_list(rig.keyring().trust_list(9), signing.generate_keypair()[0], root.key_id)
    rig.send(first, INSTALL_TRUST, install_trust_args(forged))
    replayed = sign_trust_list(rig.keyring().trust_list(1), root.private_pem, root.key_id)
    rig.send(first, INSTALL_TRUST, install_trust_args(replayed))
    command_key = rig.keyring().signer(KeyPurpose.COMMAND)
    wrong_root = sign_trust_list(rig.keyring().trust_list(10), command_key.private_pem, command_key.key_id)
    rig.send(first, INSTALL_TRUST, install_trust_args(wrong_root))

    assert [e["code"] for e in rig.events(first, "trust.rejected")] == [
        "signature.invalid",
        "trust.rollback",
        "signature.wrong_purpose",
    ]
    assert rig.fleet.pump(first).trust.keys == held and rig.fleet.pump(first).trust_version == 1
    assert rig.standing()[0] == (first, 10, "refused", "signature.wrong_purpose")
    assert rig.events(first, "command.refused") == []


def test_only_the_facilitys_admin_publishes(rig: Rig) -> None:
    biomed = rig.world.as_role(Role.BIOMED, rig.harness.facility_id)
    other = rig.world.facility("south")
    foreign_admin = rig.world.as_role(Role.ADMIN, other)
    for headers in (biomed, foreign_admin):
        response = rig.client.post(
            "/api/v1/keys/publish", headers=headers, json={"facility_id": rig.harness.facility_id}
        )
        assert response.status_code == 403, response.text
    assert error_code(response.json()) == "key.publish_role"
    everywhere = rig.world.as_role(Role.ADMIN, None)
    nowhere = rig.client.post("/api/v1/keys/publish", headers=everywhere, json={"facility_id": 999})
    assert (nowhere.status_code, error_code(nowhere.json())) == (404, "facility.not_found")
    assert rig.standing() == [(s, None, None, None) for s in rig.fleet.serials()]


def test_a_trust_list_is_never_relayed_through_the_generic_command_route(rig: Rig) -> None:
    """Even a list the root signed reaches pumps only through its facility admin's publication."""
    root = rig.keyring().signer(KeyPurpose.TRUST)
    signed = sign_trust_list(rig.keyring().trust_list(5), root.private_pem, root.key_id)
    first = rig.fleet.serials()[0]
    for role in (Role.NURSE, Role.BIOMED):
        response = rig.client.post(
            f"/api/v1/pumps/{first}/commands",
            headers=rig.world.as_role(role, rig.harness.facility_id),
            json={"command": INSTALL_TRUST, "args": install_trust_args(signed)},
        )
        assert (response.status_code, error_code(response.json())) == (403, "command.trust_via_publish")
    assert rig.standing() == [(s, None, None, None) for s in rig.fleet.serials()]


def test_rotate_and_trust_status_at_the_console(rig: Rig, settings: Settings, monkeypatch: Any) -> None:
    """The console queues the commands in the database; the server's worker finds them at its next look at
    the queue (``queue_poll_s``, zero here) and sends them."""
    monkeypatch.setenv("SMARTPUMP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMARTPUMP_SIGNING_KEYS_DIR", str(settings.signing_keys_dir))
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    rotated = runner.invoke(app, ["keys", "rotate", "--purpose", "command", "--facility", HOSPITAL, "--json"])
    assert rotated.exit_code == 0, rotated.output
    body = json.loads(rotated.output)
    rig.harness.worker.queue_poll_s = 0.0
    successor = next(
        k
        for k in rig.keyring().keys
        if k.purpose is KeyPurpose.COMMAND and k.status is keys.KeyStatus.PUBLISHED
    )
    assert body["version"] == 1 and f"command:{successor.key_id}" in body["key_ids"]
    assert [(p["serial"], p["status"]) for p in body["pumps"]] == [(s, "queued") for s in rig.fleet.serials()]
    rig.harness.pump_messages(step=rig.fleet.advance)
    status = runner.invoke(app, ["keys", "trust-status", "--facility", HOSPITAL])
    assert status.exit_code == 0, status.output
    assert status.output.splitlines() == [f"{s}  v1  accepted" for s in rig.fleet.serials()]
    unknown = runner.invoke(app, ["keys", "publish", "--facility", "nowhere"])
    assert unknown.exit_code == 2 and "facility.not_found" in unknown.output
