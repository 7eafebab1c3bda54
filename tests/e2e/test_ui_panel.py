"""The front panel in real headless Chromium on a 1366x768 laptop: a running channel offers a titration
of its own drug only, and the verdict (hard in red, with the limit, value and rule) sits next to its
buttons above the fold."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e
LAPTOP = {"width": 1366, "height": 768}
RED = "rgb(198, 40, 40)"


def _above_the_fold(page: Any, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    assert box["y"] >= 0 and box["y"] + box["height"] <= LAPTOP["height"], (
        f"{selector} is below the fold: {box}"
    )


def test_a_running_channel_titrates_only_its_own_drug(new_page: Any, live_server: LiveServer) -> None:
    serial = live_server.serials[0]
    page = new_page(LAPTOP)
    login(page, "nina")
    page.goto(f"/ui/panel/{serial}?channel=A")
    page.select_option("select[name=care_area]", "ADULT_ICU")
    page.click("button[data-action=care_area]")
    expect(page.locator("#panel-message")).to_contain_text("Adult ICU")
    drugs = page.locator("#program-form select[name=entry_id] option")
    assert drugs.count() > 10
    page.select_option("select[data-entries]", "ADULT_ICU.dopamine")
    expect(page.locator("#program-form input[name=concentration]")).to_have_value("400 mg/250 mL")
    page.fill("input[name=weight_kg]", "80")
    page.fill("input[name=dose]", "5")
    page.fill("input[name=vtbi_ml]", "250")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("Verdict: OK")
    _above_the_fold(page, "#verdict button[data-action=start]")
    page.click("button[data-action=start]")
    expect(page.locator("#channel-state")).to_have_text("running")

    form = page.locator("#program-form")
    expect(form.locator("select, input[name=concentration], input[name=weight_kg]")).to_have_count(0)
    expect(page.locator("#titration-fixed [data-fixed=drug]")).to_have_text("DOPamine")
    expect(page.locator("#titration-fixed [data-fixed=concentration]")).to_have_text("400 mg/250 mL")
    expect(page.locator("#titration-fixed [data-fixed=weight]")).to_have_text("80 kg")
    expect(form.locator("input[name=dose]")).to_have_value("5")
    expect(page.locator("#bolus-offer, #loading-offer, #secondary-offer")).to_have_count(0)

    form.locator("input[name=dose]").fill("45")
    page.click("button[data-action=titrate]")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_class("step verdict verdict-hard")
    expect(verdict.locator("h2")).to_have_text("Verdict: HARD (titration)")
    expect(verdict.locator("h2")).to_have_css("color", RED)
    expect(page.locator("#panel-message")).to_have_class("msg-hard")
    alert = verdict.locator("li.alert-hard")
    expect(alert).to_contain_text("dose 45 mcg/kg/min is above the hard max 30 mcg/kg/min (× 1.5)")
    expect(alert).to_contain_text("rule ders.dose.hard_max")
    expect(verdict.locator("button[data-action=start]")).to_have_count(0)
    _above_the_fold(page, "#verdict")
    _above_the_fold(page, "#verdict button[data-action=cancel]")
    expect(page.locator("#titration-fixed [data-fixed=drug]")).to_have_text("DOPamine")
    shot(page, "panel-titrate-hard-1366x768", full_page=False)

    form.locator("input[name=dose]").fill("10")
    page.click("button[data-action=titrate]")
    expect(verdict).to_contain_text("Verdict: OK (titration)")
    page.click("#verdict button[data-action=start]")
    expect(page.locator("#panel-message")).to_have_text("Confirmed")
    expect(page.locator("#running")).to_contain_text("DOPamine at 30.0 mL/h")
    page.click("button[data-action=stop]")
    expect(page.locator("#channel-state")).to_have_text("idle")
