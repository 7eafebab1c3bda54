"""Pump configurations through the API and the in-process fleet (commercial req. 55, SEC-CFG-01..05):
draft, release by a second biomed, staged deployment to simulated pumps, activation at idle, currency,
restore defaults, and the refusals (separation of duties, roles, bad settings, rollback)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from starlette.exceptions import StarletteDeprecationWarning

from smartpump.clock import WallClock
from smartpump.demo.fleet import SimFleet
from smartpump.ders.program import InfusionProgram, PatientParameters
from smartpump.library.keys import KeyPurpose
from smartpump.pump import Pump
from smartpump.pump.configuration import factory_settings
from smartpump.server.auth import Role
from smartpump.server.db.models import AuditRecord
from smartpump.server.db.models_fleet_ops import ConfigurationVersion
from smartpump.server.settings import Settings
from smartpump.units import Concentration
from tests.server.conftest import World
from tests.server.connected_helpers import Harness, linked_fleet

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

HOSPITAL = "north"
MODEL = "lvp-4"
CONFIGS = "/api/v1/configurations"


class Site:
    """A connected facility: simulated pumps, the API, two biomeds, a pharmacy approver and a nurse."""

    def __init__(self, harness: Harness, fleet: SimFleet) -> None:
        self.harness = harness
        self.fleet = fleet
        self.client = TestClient(harness.app, raise_server_exceptions=False)
        self.world = World(harness.app, self.client, WallClock())  # type: ignore[arg-type]
        self.facility = harness.facility_id
        for username, role in (("bea", Role.BIOMED), ("bob", Role.BIOMED), ("apa", Role.PHARMACY_APPROVER)):
            self.world.user((role, self.facility), username=username)
        self.world.user((Role.NURSE, self.facility), username="nina")
        self.world.user((Role.PHARMACIST, self.facility), username="phil")
        self.world.user((Role.AUDITOR, None), username="aud")
        self._headers: dict[str, dict[str, str]] = {}

    def h(self, username: str) -> dict[str, str]:
        """Bearer headers of a user (logged in once)."""
        if username not in self._headers:
            self._headers[username] = self.world.login(username)
        return self._headers[username]

    def draft(self, author: str = "bea", **settings: Any) -> dict[str, Any]:
        """A configuration draft for the LVP model, created through the API."""
        response = self.world.post_json(
            CONFIGS,
            json.dumps(
                {"facility_id": self.facility, "model": MODEL, "name": "ICU LVP", "settings": settings}
            ),
            self.h(author),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def release(self, configuration_id: int, releaser: str = "bob") -> Any:
        """POST release as a user."""
        return self.client.post(f"{CONFIGS}/{configuration_id}/release", headers=self.h(releaser))

    def released(self, **settings: Any) -> dict[str, Any]:
        """A draft by bea released by bob."""
        response = self.release(self.draft(**settings)["id"])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def deploy(
        self,
        configuration_id: int,
        *,
        user: str = "bob",
        waves: list[int] | None = None,
        target: tuple[str, str] = ("model", MODEL),
    ) -> Any:
        """POST a configuration deployment (default: to every LVP pump of the facility)."""
        return self.client.post(
            "/api/v1/deployments",
            headers=self.h(user),
            json={
                "facility_id": self.facility,
                "kind": "configuration",
                "configuration_id": configuration_id,
                "target_kind": target[0],
                "target_value": target[1],
                "waves": waves or [100],
                "pause_s": 0,
            },
        )

    def run(self) -> None:
        """Move commands, events and results until nothing is left."""
        fleet, worker = self.fleet, self.harness.worker

        def step() -> None:
            fleet.advance()
            worker.poke()

        self.harness.pump_messages(step=step)

    def deployment(self, deployment_id: int) -> dict[str, Any]:
        """A deployment as the API shows it."""
        body: dict[str, Any] = self.client.get(
            f"/api/v1/deployments/{deployment_id}", headers=self.h("bob")
        ).json()
        return body

    def currency(self) -> list[dict[str, Any]]:
        """Configuration currency as a viewer of every facility sees it."""
        body: list[dict[str, Any]] = self.client.get(
            "/api/v1/fleet/configuration-currency", headers=self.h("aud")
        ).json()
        return body

    def audit_actions(self) -> list[tuple[str, str, str | None]]:
        """(action, outcome, object id) of every configuration audit record, in order."""
        with self.harness.session() as session:
            rows = session.scalars(
                select(AuditRecord)
                .where(AuditRecord.action.like("configuration.%"))
                .order_by(AuditRecord.seq)
            ).all()
            return [(r.action, r.outcome, r.object_id) for r in rows]

    def pump(self, serial: str) -> Pump:
        """A simulated pump."""
        return self.fleet.pump(serial)


@pytest.fixture
def site(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Site]:
    """Three simulated LVP pumps of facility ``north`` linked to an app on a wall clock."""
    with linked_fleet(settings, engine, tmp_path, hospital=HOSPITAL) as (harness, fleet):
        yield Site(harness, fleet)


def test_a_configuration_is_drafted_released_by_a_second_biomed_and_reaches_every_pump_in_waves(
    site: Site,
) -> None:
    draft = site.draft(max_rate_ml_per_h="500", require_verification=True, near_end_alert_min=10)
    assert (draft["version"], draft["status"], draft["released_by"]) == (1, "draft", None)
    assert draft["settings"] == {
        "max_rate_ml_per_h": "500",
        "require_verification": True,
        "near_end_alert_min": 10,
        "kvo_rate_ml_per_h": "1",
        "set_change_interval_h": 96,
    }
    released = site.release(draft["id"]).json()
    configuration_key = site.harness.state.keys.signer(KeyPurpose.CONFIGURATION)
    assert released["status"] == "released" and released["key_id"] == configuration_key.key_id
    assert released["content_sha256"] == draft["content_sha256"]
    site.harness.register("SYR-1", care_area="icu", model="syringe-1")
    before = site.currency()
    assert [(c["model"], c["released_version"], c["pumps_by_version"], c["current"]) for c in before] == [
        (MODEL, 1, {"0": 3}, 0),
        ("syringe-1", None, {"0": 1}, 1),
    ]
    response = site.deploy(draft["id"], waves=[34, 100], target=("care_area", "icu"))
    assert response.status_code == 201, response.text
    assert response.json()["configuration_version"] == 1
    site.run()
    final = site.deployment(response.json()["id"])
    assert final["status"] == "completed"
    assert final["counts"] == {"pending": 0, "offered": 0, "accepted": 0, "activated": 3, "refused": 0}
    assert sorted(t["wave"] for t in final["targets"]) == [1, 1, 2]
    assert [t["pump"] for t in final["targets"]] == site.fleet.serials()
    for serial in site.fleet.serials():
        pump = site.pump(serial)
        assert pump.configuration_version == 1 and pump.settings.max_rate_ml_per_h == Decimal(500)
        assert pump.require_verification is True
        assert (
            site.client.get(f"/api/v1/pumps/{serial}", headers=site.h("nina")).json()["configuration_version"]
            == 1
        )
    assert site.currency()[0] == {
        "facility_id": site.facility,
        "model": MODEL,
        "released_version": 1,
        "pumps_by_version": {"1": 3},
        "current": 3,
        "outdated_serials": [],
    }
    actions = site.audit_actions()
    assert actions[:2] == [
        ("configuration.draft_created", "success", str(draft["id"])),
        ("configuration.released", "success", str(draft["id"])),
    ]
    assert sorted(a[2] or "" for a in actions if a[0] == "configuration.activated") == site.fleet.serials()
    activated = [e for e in site.harness.stored().values() if e["type"] == "configuration.activated"]
    assert {e["data"]["sha256"] for e in activated} == {draft["content_sha256"]}


def test_the_author_cannot_release_and_a_released_version_never_changes(site: Site) -> None:
    draft = site.draft()
    refused = site.release(draft["id"], releaser="bea")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "configuration.separation_of_duties"
    assert ("configuration.released", "denied", str(draft["id"])) in site.audit_actions()
    assert site.release(draft["id"]).status_code == 200
    again = site.release(draft["id"], releaser="bea")
    assert again.status_code == 409 and again.json()["error"]["code"] == "configuration.state"


def test_a_draft_edited_in_the_database_is_not_released(site: Site, engine: Engine) -> None:
    draft = site.draft(max_rate_ml_per_h="500")
    with engine.begin() as connection:
        connection.execute(
            update(ConfigurationVersion)
            .where(ConfigurationVersion.id == draft["id"])
            .values(settings='{"max_rate_ml_per_h": "999"}')
        )
    refused = site.release(draft["id"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "configuration.integrity"


def test_an_older_draft_cannot_be_released_after_a_newer_one(site: Site) -> None:
    older = site.draft()
    newer = site.draft(near_end_alert_min=8)
    assert (older["version"], newer["version"]) == (1, 2)
    assert site.release(newer["id"]).status_code == 200
    refused = site.release(older["id"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "configuration.superseded"


def test_only_biomedical_engineering_authors_and_deploys_configurations(site: Site) -> None:
    released = site.released()
    by_approver = site.deploy(released["id"], user="apa")
    assert by_approver.status_code == 403
    assert by_approver.json()["error"]["code"] == "deployment.configuration_role"
    with site.harness.session() as session:
        denied = session.scalars(
            select(AuditRecord).where(
                AuditRecord.action == "deployment.created", AuditRecord.outcome == "denied"
            )
        ).all()
    assert [r.actor for r in denied] == ["apa"]
    by_pharmacist = site.client.post(
        CONFIGS,
        headers=site.h("phil"),
        json={"facility_id": site.facility, "model": MODEL, "name": "x", "settings": {}},
    )
    assert by_pharmacist.status_code == 403 and by_pharmacist.json()["error"]["code"] == "access.role"
    serial = site.fleet.serials()[0]
    with site.harness.session() as session:
        signed = session.get(ConfigurationVersion, released["id"]).signed_document  # type: ignore[union-attr]
    by_nurse = site.client.post(
        f"/api/v1/pumps/{serial}/commands",
        headers=site.h("nina"),
        json={"command": "configuration.install", "args": {"signed_configuration": signed}},
    )
    assert by_nurse.status_code == 403 and by_nurse.json()["error"]["code"] == "command.configuration_role"
    assert site.pump(serial).configuration_version == 0
    with site.harness.session() as session:
        refused = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "command.issued", AuditRecord.outcome == "denied")
        ).all()
    assert [(r.actor, r.object_id) for r in refused] == [("nina", serial)]


def test_bad_settings_are_a_422_that_names_each_field_and_use_no_version(site: Site) -> None:
    response = site.world.post_json(
        CONFIGS,
        json.dumps(
            {
                "facility_id": site.facility,
                "model": MODEL,
                "name": "ICU LVP",
                "settings": {"max_rate_ml_per_h": "1200", "audio_pause_s": 60, "require_verification": "yes"},
            }
        ),
        site.h("bea"),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "configuration.invalid"
    assert [d["field"] for d in error["details"]] == [
        "settings.audio_pause_s",
        "settings.max_rate_ml_per_h",
        "settings.require_verification",
    ]
    assert "above the lvp-4 maximum of 999 mL/h" in error["details"][1]["message"]
    unknown_model = site.client.post(
        CONFIGS,
        headers=site.h("bea"),
        json={"facility_id": site.facility, "model": "lvp-9", "name": "x", "settings": {}},
    )
    assert unknown_model.status_code == 422
    assert [d["field"] for d in unknown_model.json()["error"]["details"]] == ["model"]
    exact = site.world.post_json(
        CONFIGS,
        f'{{"facility_id": {site.facility}, "model": "{MODEL}", "name": "n", '
        '"settings": {"max_rate_ml_per_h": 99.9, "kvo_rate_ml_per_h": 2}}',
        site.h("bea"),
    )
    assert exact.status_code == 201, exact.text
    body = exact.json()
    assert body["version"] == 1
    assert (body["settings"]["max_rate_ml_per_h"], body["settings"]["kvo_rate_ml_per_h"]) == ("99.9", "2")


def _dopamine() -> InfusionProgram:
    return InfusionProgram(
        entry_id="icu-dopamine",
        dose=Decimal(5),
        concentration=Concentration.parse("400 mg/250 mL"),
        patient=PatientParameters(weight_kg=Decimal(70)),
        vtbi_ml=Decimal(250),
    )


def _start(pump: Pump) -> None:
    pump.program("A", _dopamine())
    pump.confirm("A")
    pump.start("A")


def test_a_pump_running_an_infusion_keeps_its_configuration_until_it_is_idle(site: Site) -> None:
    busy, *idle = site.fleet.serials()
    site.fleet.act(busy, _start)
    released = site.released(max_rate_ml_per_h="300")
    deployment_id = site.deploy(released["id"]).json()["id"]
    site.run()
    progress = {t["pump"]: t["state"] for t in site.deployment(deployment_id)["targets"]}
    assert progress == {busy: "accepted", **dict.fromkeys(idle, "activated")}
    assert site.deployment(deployment_id)["status"] == "active"
    assert site.pump(busy).configuration_version == 0
    assert site.pump(busy).status().configuration_pending == 1
    assert site.pump(busy).channel("A").flow_ml_per_h > 0
    [row] = [c for c in site.currency() if c["model"] == MODEL]
    assert row["outdated_serials"] == [busy]
    site.fleet.act(busy, lambda p: p.stop("A"))
    site.run()
    assert site.pump(busy).configuration_version == 1
    assert site.deployment(deployment_id)["status"] == "completed"
    assert next(c for c in site.currency() if c["model"] == MODEL)["outdated_serials"] == []


def test_restore_defaults_is_a_newer_version_with_the_factory_settings(site: Site) -> None:
    capped = site.released(max_rate_ml_per_h="300", set_change_interval_h=48)
    site.deploy(capped["id"])
    site.run()
    assert {site.pump(s).settings.max_rate_ml_per_h for s in site.fleet.serials()} == {Decimal(300)}
    refused = site.client.post(
        f"{CONFIGS}/restore-defaults",
        headers=site.h("nina"),
        json={"facility_id": site.facility, "model": MODEL},
    )
    assert refused.status_code == 403
    response = site.client.post(
        f"{CONFIGS}/restore-defaults",
        headers=site.h("bea"),
        json={"facility_id": site.facility, "model": MODEL},
    )
    assert response.status_code == 201, response.text
    defaults = response.json()
    assert (defaults["version"], defaults["status"], defaults["name"]) == (2, "draft", "Factory defaults")
    assert defaults["settings"] == factory_settings(MODEL).to_dict()
    assert site.release(defaults["id"]).status_code == 200
    deployment_id = site.deploy(defaults["id"]).json()["id"]
    site.run()
    assert site.deployment(deployment_id)["status"] == "completed"
    for serial in site.fleet.serials():
        assert site.pump(serial).configuration_version == 2
        assert site.pump(serial).settings == factory_settings(MODEL)
    with site.harness.session() as session:
        record = session.scalars(
            select(AuditRecord).where(
                AuditRecord.action == "configuration.draft_created",
                AuditRecord.object_id == str(defaults["id"]),
            )
        ).one()
    assert '"restore_defaults":true' in record.details


def test_a_configuration_offered_again_is_refused_by_the_pumps_as_a_rollback(site: Site) -> None:
    released = site.released()
    site.deploy(released["id"])
    site.run()
    again = site.deploy(released["id"], waves=[34, 100]).json()["id"]
    site.run()
    outcome = site.deployment(again)
    assert outcome["status"] == "halted"
    assert {t["code"] for t in outcome["targets"] if t["state"] == "refused"} == {"signature.rollback"}
    assert outcome["counts"]["pending"] == 1
    rejected = [e for e in site.harness.stored().values() if e["type"] == "configuration.rejected"]
    assert [e["data"]["code"] for e in rejected] == ["signature.rollback"] * 2
    assert {site.pump(s).configuration_version for s in site.fleet.serials()} == {1}


def test_configurations_are_listed_and_read_only_within_the_callers_facilities(site: Site) -> None:
    draft = site.draft()
    listed = site.client.get(CONFIGS, headers=site.h("nina"), params={"model": MODEL})
    assert [c["id"] for c in listed.json()] == [draft["id"]] and listed.headers["X-Total-Count"] == "1"
    assert site.client.get(CONFIGS, headers=site.h("nina"), params={"status": "released"}).json() == []
    other = site.world.facility("south")
    stranger = site.world.as_role(Role.BIOMED, other, username="sam")
    assert site.client.get(f"{CONFIGS}/{draft['id']}", headers=stranger).status_code == 404
    assert site.client.get(CONFIGS, headers=stranger).json() == []
    foreign = site.client.post(
        CONFIGS, headers=stranger, json={"facility_id": site.facility, "model": MODEL, "name": "x"}
    )
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "configuration.forbidden"
