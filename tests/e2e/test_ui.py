"""The web UI in real headless Chromium: login, live alarms, the front panel, the library workflow."""

from __future__ import annotations

import re
from typing import Any, Final

import pytest
from playwright.sync_api import Route, expect

from smartpump.pump.alarms import AlarmId
from tests.e2e.conftest import LiveServer, login, shot
from tests.e2e.live_views import ALARMING_COUNTED, painted_pump, publish_view

pytestmark = pytest.mark.e2e
PAINTED: Final = "PAINT-01"


def test_login_shows_the_fleet_with_role_aware_navigation(new_page: Any, live_server: LiveServer) -> None:
    page = new_page()
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/$"))
    shot(page, "login")
    login(page, "nina")
    expect(page.locator("nav[aria-label=main] a")).to_have_text(
        ["Fleet", "Front panel", "Drug library", "Configurations", "CQI"]
    )
    for serial in live_server.serials:
        expect(page.locator(f'[data-pump="{serial}"]')).to_be_visible()
    shot(page, "dashboard")


def test_a_pump_alarm_appears_live_on_the_dashboard(new_page: Any, live_server: LiveServer) -> None:
    serial = painted_pump(live_server, PAINTED)
    page = new_page()
    login(page, "nina")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    raised = (AlarmId.OCCLUSION_DOWNSTREAM.value, "A", "high", live_server.state.clock.now())
    publish_view(live_server, serial, [raised], battery_percent=81)
    tile = page.locator(f'[data-pump="{serial}"]')
    alarm = tile.locator('li.alarm.prio-high[data-alarm="occlusion.downstream"]')
    # The page never polls or reloads: the alarm can only arrive over the live stream.
    expect(alarm).to_be_visible()
    expect(tile).to_have_class(re.compile("alarming"))
    expect(tile.locator("[data-field=battery]")).to_have_text("battery 81 %")
    page.wait_for_function(ALARMING_COUNTED)
    shot(page, "dashboard-live-alarm")
    publish_view(live_server, serial, [])
    expect(alarm).to_have_count(0)
    expect(tile).not_to_have_class(re.compile("alarming"))
    page.wait_for_function(ALARMING_COUNTED)


def _program(page: Any, channel: str, dose: str) -> None:
    page.select_option("select[data-entries]", "ADULT_ICU.dopamine")
    expect(page.locator("input[name=concentration]")).to_have_value("400 mg/250 mL")
    page.fill("input[name=weight_kg]", "80")
    page.fill("input[name=dose]", dose)
    page.fill("input[name=vtbi_ml]", "250")
    page.click("button[data-action=program]")


def test_front_panel_soft_alert_override_and_hard_stop(new_page: Any, live_server: LiveServer) -> None:
    page = new_page({"width": 1024, "height": 1366})
    login(page, "nina")
    serial = live_server.serials[0]
    page.goto("/ui/panel")
    shot(page, "panel-index")
    page.click(f'a[href="/ui/panel/{serial}"]')
    page.click("a[href$='channel=C']")
    page.select_option("select[name=care_area]", "ADULT_ICU")
    page.click("button[data-action=care_area]")
    expect(page.locator("#panel-message")).to_contain_text("Adult ICU")
    _program(page, "C", "25")
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("Verdict: SOFT")
    expect(page.locator("#computed-rate")).to_have_text("75.0 mL/h")
    expect(verdict.locator("li.alert-soft")).to_contain_text("soft max 20 mcg/kg/min")
    expect(verdict.locator("li.alert-soft")).to_contain_text("× 1.25")
    shot(page, "panel-soft-alert")
    page.click("button[data-action=override]")
    expect(verdict).to_contain_text("Verdict: SOFT")
    assert page.eval_on_selector("select[name=reason]", "el => el.validity.valueMissing")
    page.select_option("select[name=reason]", "prescriber_order")
    page.click("button[data-action=override]")
    expect(page.locator("#panel-message")).to_have_text("Soft alert overridden")
    page.click("button[data-action=start]")
    expect(page.locator("#panel-message")).to_have_text("Infusing")
    expect(page.locator("#channel-state")).to_have_text("running")
    shot(page, "panel-running")
    page.click("a[href$='channel=B']")
    _program(page, "B", "45")
    expect(verdict).to_contain_text("Verdict: HARD")
    expect(page.locator("li.alert-hard")).to_contain_text("hard max 30 mcg/kg/min")
    expect(page.locator("button[data-action=start]")).to_have_count(0)
    expect(page.locator("button[data-action=override]")).to_have_count(0)
    shot(page, "panel-hard-stop")
    _program(page, "B", "10")
    expect(verdict).to_contain_text("Verdict: OK")
    page.click("button[data-action=cancel]")
    page.click("a[href$='channel=C']")
    page.click("button[data-action=stop]")
    expect(page.locator("#channel-state")).to_have_text("idle")


def test_library_draft_needs_a_different_approver(new_page: Any, live_server: LiveServer) -> None:
    author = new_page()
    login(author, "phil")
    author.goto("/ui/libraries")
    author.click("button[data-action=new-draft]")
    expect(author.locator("#library-status")).to_have_text("draft")
    draft_url = author.url
    author.click('tr[data-entry="ADULT_ICU.dopamine"] a[data-open-entry]')
    form = author.locator("#entry-form")
    form.locator("input[name='dose.soft_max']").fill("40")
    expect(form.locator("[data-entry-error]")).to_contain_text("soft max must not exceed hard max")
    form.locator("input[name='dose.soft_max']").fill("18")
    expect(form.locator("[data-entry-error]")).to_be_hidden()
    form.locator("button[data-action=save-entry]").click()
    expect(author.locator('#entry-limits tr[data-param="dose"] td[data-bound="soft_max"]')).to_have_text("18")
    author.goto(draft_url)
    expect(author.locator('tr[data-entry="ADULT_ICU.dopamine"] td').nth(5)).to_have_text("18")
    expect(author.locator("table.grid tr.flagged, table.grid td", has_text="soft_max").first).to_be_visible()
    shot(author, "library-draft")
    author.click("button[data-action=submit]")
    expect(author.locator("#library-status")).to_have_text("in_review")
    author.click("button[data-action=approve]")
    expect(author.locator("p.error")).to_contain_text("library.separation_of_duties")
    shot(author, "library-author-refused")
    approver = new_page()
    login(approver, "april")
    approver.goto(draft_url)
    approver.click("button[data-action=approve]")
    expect(approver.locator("#library-status")).to_have_text("approved")
    expect(approver.locator("#policy-missing")).to_contain_text("1 more approver(s) in total")
    second = new_page()
    login(second, "arlo")
    second.goto(draft_url)
    second.click("button[data-action=approve]")
    expect(second.locator("#policy-met")).to_be_visible()
    approver.reload()
    approver.click("button[data-action=release]")
    expect(approver.locator("#library-status")).to_have_text("released")
    shot(approver, "library-released")
    approver.goto("/ui/libraries")
    expect(approver.locator("#versions")).to_contain_text("retired")
    shot(approver, "libraries")


def test_every_other_page_renders(new_page: Any, live_server: LiveServer) -> None:
    serial = live_server.serials[0]
    pages = {
        "bea": [
            ("/ui/maintenance", "maintenance", "Preventive maintenance due"),
            (f"/ui/pumps/{serial}", "pump", "Event timeline"),
        ],
        "audrey": [("/ui/audit", "audit", "library.released")],
        "nina": [("/ui/cqi", "cqi", "Library compliance")],
    }
    for username, visits in pages.items():
        page = new_page()
        login(page, username)
        for path, name, text in visits:
            response = page.goto(path)
            assert response is not None and response.status == 200
            expect(page.locator("main")).to_contain_text(text)
            shot(page, name)
    nurse = new_page()
    login(nurse, "nina")
    refused = nurse.goto("/ui/audit")
    assert refused is not None and refused.status == 403
    expect(nurse.locator("main")).to_contain_text("Not allowed")
    shot(nurse, "audit-refused-for-nurse")


def test_a_stream_the_server_ends_is_opened_again_from_the_current_views(
    new_page: Any, live_server: LiveServer
) -> None:
    alarming = painted_pump(live_server, PAINTED)
    page = new_page()
    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if "/ui/stream" in request.url else None)
    login(page, "nina")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    now = live_server.state.clock.now()
    # Stored with its message lost (as while the live bus was reconnecting), then the streams are ended.
    publish_view(live_server, alarming, [(AlarmId.AIR_IN_LINE.value, "A", "high", now)], publish=False)
    assert live_server.state.live.end_streams() >= 1
    expect(page.locator(f'[data-pump="{alarming}"] li.alarm.prio-high')).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    assert len(streams) >= 2, "the page opened a new stream by itself"
    publish_view(live_server, alarming, [])
    expect(page.locator(f'[data-pump="{alarming}"] li.alarm')).to_have_count(0)


def test_a_live_stream_refused_as_busy_is_opened_again(new_page: Any, live_server: LiveServer) -> None:
    page = new_page()
    refused: list[str] = []

    def busy_once(route: Route) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json", body="{}")

    page.route("**/ui/stream", busy_once)
    login(page, "nina")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    assert len(refused) == 1  # the first opening was refused 503; the page opened a new stream by itself
