"""The UI's forms in real headless Chromium: the entry editor, a vendor import, maintenance records and
fault reports, and the front panel's bolus, PCA demand button and alarm silencing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import REPO, LiveServer, login, shot

pytestmark = pytest.mark.e2e
VENDOR_FILE = REPO.parent / "shared" / "data" / "vendor-libraries" / "alaris-guardrails-dataset-v66.xlsx"


def test_entry_editor_edits_bolus_and_vtbi_limits(new_page: Any, live_server: LiveServer) -> None:
    page = new_page()
    login(page, "phil")
    page.goto("/ui/libraries")
    page.click("button[data-action=new-draft]")
    expect(page.locator("#library-status")).to_have_text("draft")
    page.click('tr[data-entry="ADULT_ICU.heparin"] a[data-open-entry]')
    form = page.locator("#entry-form")
    form.locator("input[name='bolus.soft_max']").fill("100")
    form.locator("input[name='bolus.hard_max']").fill("90")
    expect(form.locator("[data-errors-for='bolus'] [data-client-error]")).to_have_text(
        "soft max must not exceed hard max"
    )
    form.locator("input[name='bolus.unit']").fill("furlongs")
    form.locator("input[name='bolus.hard_max']").fill("120")
    expect(form.locator("[data-errors-for='bolus'] [data-client-error]")).to_contain_text("unknown unit")
    shot(page, "entry-editor-inline-validation")
    form.locator("input[name='bolus.unit']").fill("units/kg")
    form.locator("input[name='vtbi_ml.soft_max']").fill("250")
    form.locator("input[name='vtbi_ml.hard_max']").fill("500")
    expect(page.locator("[data-entry-error]")).to_be_hidden()
    form.locator("button[data-action=save-entry]").click()
    bolus = page.locator('#entry-limits tr[data-param="bolus"]')
    expect(bolus.locator('td[data-bound="soft_max"]')).to_have_text("100")
    expect(bolus.locator('td[data-bound="hard_max"]')).to_have_text("120")
    vtbi = page.locator('#entry-limits tr[data-param="vtbi_ml"]')
    expect(vtbi.locator('td[data-bound="hard_max"]')).to_have_text("500")
    shot(page, "entry-saved")


def test_vendor_file_import_shows_the_summary_and_the_draft(new_page: Any, live_server: LiveServer) -> None:
    if not VENDOR_FILE.is_file():
        pytest.fail(f"shared vendor file {VENDOR_FILE} is missing")
    page = new_page()
    login(page, "phil")
    page.goto("/ui/libraries")
    page.set_input_files("input[name=upload]", str(VENDOR_FILE))
    page.click("button[data-action=import]")
    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("rows read")
    assert int(page.locator('[data-count="entries"]').inner_text()) > 0
    expect(page.locator("#import-sheets tbody tr").first).to_be_visible()
    shot(page, "library-import-summary")
    page.click("#imported-draft")
    expect(page.locator("#library-status")).to_have_text("draft")
    expect(page.locator("table.entries tbody tr[data-entry]").first).to_be_visible()
    shot(page, "library-imported-draft", full_page=False)


def test_maintenance_cleaning_and_fault_report(new_page: Any, live_server: LiveServer) -> None:
    serial = live_server.serials[0]
    page = new_page()
    login(page, "bea")
    page.goto("/ui/maintenance")
    record = page.locator("#record-form")
    expect(record.locator("input[name=battery_health_percent]")).to_be_hidden()
    record.locator("select[name=serial]").select_option(serial)
    record.locator("select[name=kind]").select_option("cleaning")
    record.locator("input[name=notes]").fill("terminal clean after discharge")
    record.locator("button[data-action=record-work]").click()
    expect(page.locator("#cleaning")).to_contain_text("terminal clean after discharge")
    faults = page.locator("#fault-form")
    faults.locator("select[name=serial]").select_option(serial)
    faults.locator("select[name=category]").select_option("cracked_screen")
    faults.locator("input[name=description]").fill("screen cracked in the lower corner")
    faults.locator("button[data-action=report-fault]").click()
    expect(page.locator("#faults")).to_contain_text("screen cracked in the lower corner")
    expect(page.locator("#batteries")).to_contain_text("needs_inspection")
    shot(page, "maintenance-recorded")
    record = page.locator("#record-form")
    record.locator("select[name=kind]").select_option("battery_check")
    expect(record.locator("input[name=battery_health_percent]")).to_be_visible()
    shot(page, "maintenance-battery-form")


def _choose_area(page: Any, serial: str, channel: str, area: str) -> None:
    page.goto(f"/ui/panel/{serial}?channel={channel}")
    page.select_option("select[name=care_area]", area)
    page.click("button[data-action=care_area]")
    expect(page.locator("#panel-message")).to_contain_text("selected")


def test_front_panel_bolus_and_silencing_an_alarm(new_page: Any, live_server: LiveServer) -> None:
    serial = live_server.serials[0]
    page = new_page({"width": 1024, "height": 1366})
    login(page, "nina")
    _choose_area(page, serial, "A", "ADULT_ICU")
    page.select_option("select[data-entries]", "ADULT_ICU.heparin")
    page.fill("input[name=weight_kg]", "80")
    page.fill("input[name=dose]", "18")
    page.fill("input[name=vtbi_ml]", "250")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("Verdict: OK")
    page.click("button[data-action=start]")
    expect(page.locator("#channel-state")).to_have_text("running")
    page.fill("input[name=bolus_dose]", "10")
    page.fill("input[name=bolus_min]", "5")
    page.click("button[data-action=bolus]")
    expect(page.locator("#panel-message")).to_contain_text("Bolus running at")
    shot(page, "panel-bolus")
    fleet = live_server.fleet
    fleet.act(serial, lambda pump: pump.air_bubble("A", Decimal(5000)))
    page.goto(f"/ui/panel/{serial}?channel=A")
    expect(page.locator(".screen li.alarm")).not_to_have_count(0)
    shot(page, "panel-alarm")
    page.click("button[data-action=silence]")
    expect(page.locator("#panel-message")).to_have_text("Alarms silenced for 2 minutes")
    shot(page, "panel-silenced")


def test_front_panel_pca_demand_button(new_page: Any, live_server: LiveServer) -> None:
    serial = live_server.serials[1]
    page = new_page({"width": 1024, "height": 1366})
    login(page, "nina")
    _choose_area(page, serial, "A", "PCA")
    page.select_option("select[data-entries]", "PCA.morphine")
    expect(page.locator("[data-pca-fields]")).to_be_visible()
    page.fill("input[name=dose]", "1")
    page.fill("input[name=lockout_min]", "10")
    page.fill("input[name=vtbi_ml]", "30")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("Verdict: OK")
    page.click("button[data-action=start]")
    expect(page.locator("#channel-state")).to_have_text("running")
    page.click("button[data-action=pca_demand]")
    expect(page.locator("#panel-message")).to_have_text("Demand dose granted")
    page.click("button[data-action=pca_demand]")
    expect(page.locator("#panel-message")).to_have_text("Demand dose denied (lockout or limit)")
    shot(page, "panel-pca-demand")
