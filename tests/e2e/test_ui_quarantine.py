"""The quarantine page in real headless Chromium: a biomed opens Quarantine from the navigation, admits one
held pump into a facility (landing on its pump page) and rejects another; both decisions are audited, the
page passes axe-core, and an auditor reads it without the decision forms."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from smartpump.server.db.models import AuditRecord
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services import quarantine
from tests.e2e.axe import run_axe, summary_table
from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e


def _hold(live_server: LiveServer, *serials: str) -> None:
    state = live_server.state
    with unit_of_work(state.sessions) as session:
        quarantine.hold(session, state.clock, {s: quarantine.Held(quarantine.UNKNOWN, 2, 5) for s in serials})


def test_biomed_admits_one_held_pump_and_rejects_another(new_page: Any, live_server: LiveServer) -> None:
    _hold(live_server, "stray-1", "stray-2")
    page = new_page(bypass_csp=True)
    login(page, "bea")
    page.click("nav[aria-label=main] a[data-nav=quarantine]")
    expect(page.locator("main h1")).to_have_text("Quarantine")
    rows = page.locator("#quarantine tbody tr[data-serial]")
    expect(rows).to_have_count(2)
    blocking = [v for v in run_axe(page, label="/ui/quarantine (biomed, 2 held)") if v.blocking]
    assert blocking == [], summary_table(blocking)
    shot(page, "quarantine")

    admit = page.locator('tr[data-serial="stray-1"] form[data-form=admit]')
    admit.locator("select[name=model]").select_option("lvp-4")
    admit.locator("input[name=care_area]").fill("icu")
    admit.locator("button[data-action=admit]").click()
    page.wait_for_url("**/ui/pumps/stray-1")
    expect(page.locator("main h1")).to_contain_text("stray-1")

    page.click("nav[aria-label=main] a[data-nav=quarantine]")
    expect(rows).to_have_count(1)
    page.locator('tr[data-serial="stray-2"] button[data-action=reject]').click()
    expect(page.locator("#quarantine tbody")).to_contain_text("No pump is waiting.")
    with live_server.state.sessions() as session:
        decided = session.execute(
            select(AuditRecord.action, AuditRecord.actor, AuditRecord.object_id).where(
                AuditRecord.action.in_(("pump.admitted", "pump.rejected"))
            )
        ).all()
    assert sorted(map(tuple, decided)) == [
        ("pump.admitted", "bea", "stray-1"),
        ("pump.rejected", "bea", "stray-2"),
    ]


def test_an_auditor_reads_the_quarantine_without_decision_forms(
    new_page: Any, live_server: LiveServer
) -> None:
    _hold(live_server, "stray-3")
    page = new_page(bypass_csp=True)
    login(page, "audrey")
    page.click("nav[aria-label=main] a[data-nav=quarantine]")
    expect(page.locator('#quarantine tr[data-serial="stray-3"]')).to_be_visible()
    expect(page.locator("#quarantine form")).to_have_count(0)
    blocking = [v for v in run_axe(page, label="/ui/quarantine (auditor)") if v.blocking]
    assert blocking == [], summary_table(blocking)
