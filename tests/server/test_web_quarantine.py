"""The quarantine page's decisions: CSRF-checked, role-checked, refused in place with the reason, and the
held pump's serial (pump-supplied text) escaped."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from smartpump.server.auth import Role
from smartpump.server.db.models import AuditRecord
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services import quarantine
from tests.server.conftest import World
from tests.server.test_web_pages import SCRIPT, browsers, csrf_of, login

__all__ = ["browsers"]


def _hold(world: World, *serials: str) -> None:
    with unit_of_work(world.state.sessions) as session:
        quarantine.hold(session, world.clock, {s: quarantine.Held(quarantine.UNKNOWN, 1, 3) for s in serials})


def _waiting(world: World) -> list[str]:
    with world.state.sessions() as session:
        rows, _ = quarantine.pending(session, limit=10, offset=0)
        return [r.serial for r in rows]


def test_a_decision_without_the_csrf_token_is_refused_and_changes_nothing(
    world: World, browsers: list[Any]
) -> None:
    facility = world.facility()
    world.user((Role.BIOMED, facility), username="bea")
    _hold(world, "stray-1")
    client = login(world.app, browsers, "bea")
    for action, form in (("reject", {}), ("admit", {"facility_id": str(facility), "model": "lvp-4"})):
        for token in ({}, {"csrf": "0" * 64}):
            refused = client.post(f"/ui/quarantine/stray-1/{action}", data={**form, **token})
            assert refused.status_code == 403, refused.text
    assert _waiting(world) == ["stray-1"]


def test_an_admission_outside_the_biomeds_facilities_is_refused_on_the_page(
    world: World, browsers: list[Any]
) -> None:
    mine, other = world.facility("north"), world.facility("south")
    world.user((Role.BIOMED, mine), username="bea")
    _hold(world, "stray-2")
    client = login(world.app, browsers, "bea")
    page = client.get("/ui/quarantine")
    assert f'<option value="{other}">' not in page.text  # only the biomed's facilities are offered
    form = {"csrf": csrf_of(page.text), "facility_id": str(other), "model": "lvp-4"}
    refused = client.post("/ui/quarantine/stray-2/admit", data=form)
    assert refused.status_code == 403
    assert "pump.forbidden" in refused.text and 'id="decision-error"' in refused.text
    assert _waiting(world) == ["stray-2"]
    admitted = client.post("/ui/quarantine/stray-2/admit", data={**form, "facility_id": str(mine)})
    assert admitted.status_code == 303 and admitted.headers["location"] == "/ui/pumps/stray-2"
    assert _waiting(world) == []


def test_only_a_biomed_decides_and_the_serial_is_escaped(world: World, browsers: list[Any]) -> None:
    facility = world.facility()
    world.user((Role.AUDITOR, facility), username="audrey")
    world.user((Role.NURSE, facility), username="nina")
    _hold(world, SCRIPT)
    auditor = login(world.app, browsers, "audrey")
    page = auditor.get("/ui/quarantine")
    assert (
        page.status_code == 200
        and SCRIPT not in page.text
        and '<form method="post" action="/ui/quarantine' not in page.text
    )
    refused = auditor.post("/ui/quarantine/x/reject", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 403
    assert login(world.app, browsers, "nina").get("/ui/quarantine").status_code == 403
    with world.state.sessions() as session:
        assert session.scalars(select(AuditRecord).where(AuditRecord.action == "pump.rejected")).all() == []
