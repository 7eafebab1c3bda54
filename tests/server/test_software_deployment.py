"""Software deployment to simulated pumps: a version is active on a pump only once the pump reports
``software.activated``, which it does only when every channel is idle; until then the deployment says
what it waits for, and the pump refuses a package not above the version it runs or holds pending."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.exceptions import StarletteDeprecationWarning

from smartpump.clock import WallClock
from smartpump.demo.fleet import SimFleet
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind
from smartpump.pump import Pump
from smartpump.server.auth import Role
from smartpump.server.db.models import ChannelState, MaintenanceRecord
from smartpump.server.db.models import Pump as PumpRow
from smartpump.server.settings import Settings
from smartpump.units import Concentration
from tests.server.conftest import World
from tests.server.connected_helpers import Harness, linked_fleet

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

MODEL = "lvp-4"
ARTEFACT = b"synthetic pump image (test data)"


class Site:
    """Simulated pumps linked to the API, with a biomed who registers and deploys software."""

    def __init__(self, harness: Harness, fleet: SimFleet) -> None:
        self.harness = harness
        self.fleet = fleet
        self.client = TestClient(harness.app, raise_server_exceptions=False)
        world = World(harness.app, self.client, WallClock())  # type: ignore[arg-type]
        world.user((Role.BIOMED, harness.facility_id), username="bea")
        world.user((Role.BIOMED, harness.facility_id), username="ben")
        self.headers = world.login("bea")
        self.approver = world.login("ben")

    def package(self, version: str) -> int:
        """Upload a software artefact for the LVP model (bea) and approve it (ben, the second person)."""
        response = self.client.post(
            "/api/v1/software-packages",
            headers=self.headers,
            data={"model": MODEL, "version": version},
            files={"artefact": ("image.bin", ARTEFACT + version.encode(), "application/octet-stream")},
        )
        assert response.status_code == 201, response.text
        package_id: int = response.json()["id"]
        approved = self.client.post(f"/api/v1/software-packages/{package_id}/approve", headers=self.approver)
        assert approved.status_code == 200, approved.text
        return package_id

    def deploy(self, package_id: int) -> int:
        """Deploy a package to every LVP pump of the facility in one wave."""
        response = self.client.post(
            "/api/v1/deployments",
            headers=self.headers,
            json={
                "facility_id": self.harness.facility_id,
                "kind": "software",
                "package_id": package_id,
                "target_kind": "model",
                "target_value": MODEL,
                "waves": [100],
                "pause_s": 0,
            },
        )
        assert response.status_code == 201, response.text
        deployment_id: int = response.json()["id"]
        return deployment_id

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
            f"/api/v1/deployments/{deployment_id}", headers=self.headers
        ).json()
        return body

    def progress(self, deployment_id: int) -> dict[str, tuple[str, str | None]]:
        """Per pump: (state, reason) in a deployment."""
        return {t["pump"]: (t["state"], t["reason"]) for t in self.deployment(deployment_id)["targets"]}

    def firmware(self, serial: str) -> str:
        """The software version the server records for a pump."""
        body = self.client.get(f"/api/v1/pumps/{serial}", headers=self.headers).json()
        version: str = body["firmware"]
        return version

    def events(self, serial: str, type_: str) -> list[dict[str, Any]]:
        """The data of a pump's stored events of one type, in seq order."""
        stored = self.harness.stored()
        return [e["data"] for (pump, _), e in sorted(stored.items()) if pump == serial and e["type"] == type_]


@pytest.fixture
def site(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Site]:
    """Three simulated LVPs (software 1.0.0, every channel idle) linked to an app on a wall clock."""
    with linked_fleet(settings, engine, tmp_path, hospital="north") as (harness, fleet):
        yield Site(harness, fleet)


def _dopamine(pump: Pump) -> None:
    program = InfusionProgram(
        entry_id="icu-dopamine",
        dose=Decimal(5),
        concentration=Concentration.parse("400 mg/250 mL"),
        patient=PatientParameters(weight_kg=Decimal(70)),
        vtbi_ml=Decimal(250),
    )
    pump.program("A", program)
    pump.confirm("A")
    pump.start("A")


def _basic(pump: Pump) -> None:
    pump.program(
        "B",
        InfusionProgram(
            entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=Decimal(50), vtbi_ml=Decimal(500)
        ),
    )
    pump.confirm("B")
    pump.start("B")


def test_software_is_active_on_an_infusing_pump_only_once_its_channels_are_idle(site: Site) -> None:
    busy, *idle = site.fleet.serials()
    site.fleet.act(busy, _dopamine)
    site.fleet.act(busy, _basic)
    site.run()
    deployment_id = site.deploy(site.package("1.1.0"))
    site.run()

    assert site.progress(deployment_id) == {
        busy: ("accepted", "waiting for 2 infusing channels"),
        **dict.fromkeys(idle, ("activated", None)),
    }
    assert site.deployment(deployment_id)["status"] == "active"
    assert site.firmware(busy) == "1.0.0"
    assert [site.firmware(s) for s in idle] == ["1.1.0", "1.1.0"]
    assert site.events(busy, "software.installed") == [{"version": "1.1.0", "pending": True}]
    assert site.events(busy, "software.activated") == []
    assert site.fleet.software(busy).pending_version == "1.1.0"
    assert site.fleet.pump(busy).channel("A").flow_ml_per_h > 0
    [currency] = site.client.get("/api/v1/fleet/software-currency", headers=site.headers).json()
    assert (currency["pumps_by_version"], currency["outdated_serials"]) == ({"1.0.0": 1, "1.1.0": 2}, [busy])

    site.fleet.act(busy, lambda p: p.stop("A"))
    site.run()
    assert site.progress(deployment_id)[busy] == ("accepted", "waiting for 1 infusing channel")
    assert site.firmware(busy) == "1.0.0"

    site.fleet.act(busy, lambda p: p.stop("B"))
    site.run()
    assert site.progress(deployment_id)[busy] == ("activated", None)
    assert site.deployment(deployment_id)["status"] == "completed"
    assert site.events(busy, "software.activated") == [{"version": "1.1.0", "previous_version": "1.0.0"}]
    assert site.firmware(busy) == "1.1.0"
    with site.harness.session() as session:
        pump_id = session.scalars(select(PumpRow.id).where(PumpRow.serial == busy)).one()
        history = session.scalars(
            select(MaintenanceRecord).where(
                MaintenanceRecord.pump_id == pump_id, MaintenanceRecord.kind == "software_update"
            )
        ).all()
    assert [(r.from_version, r.to_version) for r in history] == [("1.0.0", "1.1.0")]


def test_a_waiting_pump_says_when_it_will_activate_from_its_heartbeats_time_left(site: Site) -> None:
    busy, *_ = site.fleet.serials()
    site.fleet.act(busy, _dopamine)  # 250 mL at 13.1 mL/h: about 19 h 5 min left
    site.run()
    deployment_id = site.deploy(site.package("1.1.0"))
    site.run()
    [target] = [t for t in site.deployment(deployment_id)["targets"] if t["pump"] == busy]
    assert (target["state"], target["reason"]) == ("accepted", "waiting for 1 infusing channel")
    with site.harness.session() as session:
        pump_id = session.scalars(select(PumpRow.id).where(PumpRow.serial == busy)).one()
        channel = session.scalars(
            select(ChannelState).where(ChannelState.pump_id == pump_id, ChannelState.channel == "A")
        ).one()
        assert channel.reported_at is not None and channel.remaining_min is not None
        left_min, reported_at = channel.remaining_min, channel.reported_at
    hours_left = Decimal(250) / Decimal("13.1")  # 250 mL at 13.1 mL/h
    assert abs(left_min - hours_left * 60) <= Decimal("0.2")
    expected = reported_at.replace(tzinfo=UTC) + timedelta(hours=float(hours_left))
    activates_at = datetime.fromisoformat(target["activates_at"]).replace(tzinfo=UTC)
    assert abs(activates_at - expected) <= timedelta(seconds=12)  # the heartbeat rounds to 0.1 min

    site.fleet.act(busy, lambda p: p.pause("A"))
    site.run()
    [paused] = [t for t in site.deployment(deployment_id)["targets"] if t["pump"] == busy]
    assert paused["reason"] == "waiting for 1 infusing channel"
    assert paused["activates_at"] is None  # a paused channel does not end by itself


def test_a_program_waiting_to_start_holds_the_activation_and_the_server_says_so(site: Site) -> None:
    holding, *_ = site.fleet.serials()
    site.fleet.act(
        holding,
        lambda p: p.program(
            "C", InfusionProgram(entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=Decimal(20))
        ),
    )
    deployment_id = site.deploy(site.package("1.1.0"))
    site.run()
    assert site.progress(deployment_id)[holding] == (
        "accepted",
        "waiting for 1 channel programmed, to start or be cleared",
    )
    assert site.firmware(holding) == "1.0.0"
    site.fleet.act(holding, lambda p: p.cancel("C"))
    site.run()
    assert site.progress(deployment_id)[holding] == ("activated", None)
    assert site.firmware(holding) == "1.1.0"


def test_a_package_not_above_the_pending_version_is_refused_and_logged_by_the_pump(site: Site) -> None:
    busy, *idle = site.fleet.serials()
    older, newer = site.package("1.1.0"), site.package("1.2.0")
    site.fleet.act(busy, _dopamine)
    site.deploy(newer)
    site.run()
    assert site.fleet.software(busy).pending_version == "1.2.0"

    again = site.deploy(older)
    site.run()
    outcome = site.deployment(again)
    assert outcome["status"] == "halted"
    assert {t["pump"]: (t["state"], t["code"]) for t in outcome["targets"]} == dict.fromkeys(
        [busy, *idle], ("refused", "software.downgrade")
    )
    assert [e["code"] for e in site.events(busy, "software.rejected")] == ["software.downgrade"]
    assert site.events(busy, "command.refused") == []
    slot = site.fleet.software(busy)
    assert (slot.installed_version, slot.pending_version) == ("1.0.0", "1.2.0")
    assert site.firmware(busy) == "1.0.0"
