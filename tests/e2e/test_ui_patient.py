"""Patient association at the bedside in real headless Chromium on a 1366x768 laptop: the nurse scans the
wristband on the front panel, the panel and the dashboard tile show the patient."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import UI_TIMEOUT_MS, LiveServer, login, shot

pytestmark = pytest.mark.e2e
LAPTOP = {"width": 1366, "height": 768}


def test_a_nurse_scans_a_wristband_and_every_screen_names_the_patient(
    new_page: Any, live_server: LiveServer
) -> None:
    serial = live_server.serials[-1]
    page = new_page(LAPTOP)
    login(page, "nina")
    page.goto(f"/ui/panel/{serial}?channel=A")
    expect(page.locator("#panel-patient")).to_contain_text("(SYNTHETIC)")
    expect(page.locator("#panel-patient .badge")).to_have_text("synthetic")
    page.locator("#patient-step summary").click()
    form = page.locator("#patient-form")
    form.locator("input[name=scan]").fill("E2E-4711^^^HOSP^MR")
    form.locator("input[name=family_name]").fill("Doe")
    form.locator("input[name=given_name]").fill("Jane")
    page.click("button[data-action=patient]")
    expect(page.locator("#panel-message")).to_have_text("Patient E2E-4711 associated (scan)")
    expect(page.locator("#panel-patient")).to_have_text("Patient DOE, Jane · MR E2E-4711 (HOSP)")
    shot(page, "panel-patient-1366x768", full_page=False)

    tile = page.locator(f"article.tile[data-pump='{serial}'] [data-field=patient]")
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while True:  # the tile is drawn by the server: reload until the pump's event has been ingested
        page.goto("/ui/")
        if "DOE, Jane" in (tile.text_content() or "") or time.monotonic() > deadline:
            break
        page.wait_for_timeout(250)
    expect(tile).to_contain_text("DOE, Jane MR E2E-4711 (HOSP)")
    shot(page, "dashboard-patient-1366x768", full_page=False)
