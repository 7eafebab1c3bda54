"""Front-panel journeys in real headless Chromium at both screen sizes (1366x768 laptop, 1920x1080 wall
screen), each asserting what the nurse sees: a loading dose refused at its hard max with the typed values
kept, then given; a piggyback with callback whose callback alarm reaches the pump and the central station,
then is reset; a PCA started with its settings whose second press falls in the lockout; a weight-based
continuous infusion titrated. Screenshots under artifacts/screenshots (gitignored)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any, Final

import pytest
from playwright.sync_api import expect

from smartpump.library.formats import json_format
from smartpump.library.limits import LimitSet
from smartpump.library.model import Bounds, DeliveryMode, DoseLimits, Entry
from smartpump.units import Concentration, DoseUnit
from tests.e2e.conftest import REPO, LiveServer, login, serve, shot

pytestmark = pytest.mark.e2e
SIZES: Final = {"1366x768": {"width": 1366, "height": 768}, "1920x1080": {"width": 1920, "height": 1080}}
AMIODARONE: Final = "ADULT_ICU.amiodarone-loading-e2e"
PIGGYBACK: Final = "ADULT_ICU.potassium-chloride-piggyback-e2e"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo library with two ICU entries more (it has none with a loading dose or that may run as a
    piggyback): amiodarone with loading limits, potassium chloride allowed as a secondary."""
    library = json_format.read(REPO / "examples" / "demo-library.json")
    amiodarone = Entry(
        id=AMIODARONE,
        care_area_id="ADULT_ICU",
        drug_id="amiodarone",
        therapy="loading e2e",
        dose=DoseLimits(
            unit=DoseUnit.parse("mg/min"), limits=LimitSet(soft_max=Decimal(1), hard_max=Decimal(2))
        ),
        concentrations=(Concentration.parse("450 mg/250 mL"),),
        loading=DoseLimits(
            unit=DoseUnit.parse("mg"), limits=LimitSet(soft_max=Decimal(150), hard_max=Decimal(300))
        ),
        loading_duration_min=Bounds(limits=LimitSet(hard_min=Decimal(10))),
    )
    piggyback = Entry(
        id=PIGGYBACK,
        care_area_id="ADULT_ICU",
        drug_id="potassium-chloride",
        therapy="piggyback e2e",
        mode=DeliveryMode.INTERMITTENT,
        dose=DoseLimits(
            unit=DoseUnit.parse("mEq"), limits=LimitSet(soft_max=Decimal(20), hard_max=Decimal(40))
        ),
        concentrations=(Concentration.parse("20 mEq/100 mL"),),
        allows_secondary=True,
    )
    yield from serve(tmp_path_factory, replace(library, entries=(*library.entries, amiodarone, piggyback)))


def _panel(
    new_page: Any, live_server: LiveServer, size: str, area: str, *, pump: int = 0, channel: str = "A"
) -> Any:
    page = new_page(SIZES[size])
    login(page, "nina")
    page.goto(f"/ui/panel/{live_server.serials[pump]}?channel={channel}")
    page.select_option("select[name=care_area]", area)
    page.click("button[data-action=care_area]")
    expect(page.locator("#panel-message")).to_contain_text("selected")
    return page


def _program_and_start(page: Any, entry: str, **fields: str) -> None:
    page.select_option("#program-form select[name=entry_id]", entry)
    for name, value in fields.items():
        page.fill(f"#program-form input[name={name}]", value)
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("Verdict: OK")
    page.click("#verdict button[data-action=start]")
    expect(page.locator("#channel-state")).to_have_text("running")


def _in_view(page: Any, selector: str, size: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    assert box["y"] >= 0 and box["y"] + box["height"] <= SIZES[size]["height"], f"{selector} below the fold"


def _stop(page: Any) -> None:
    page.click("#running button[data-action=stop]")
    expect(page.locator("#channel-state")).to_have_text("idle")


@pytest.mark.parametrize("size", SIZES)
def test_a_loading_dose_refused_at_its_hard_max_keeps_what_was_typed_then_runs(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    page = _panel(new_page, live_server, size, "ADULT_ICU")
    _program_and_start(page, AMIODARONE, dose="0.5", vtbi_ml="250")
    expect(page.locator("[data-limits=loading]")).to_have_text(
        "Loading dose limits (mg): soft max 150 · hard max 300 · duration (min): hard min 10"
    )
    page.fill("#loading-form input[name=loading_dose]", "400")
    page.fill("#loading-form input[name=loading_min]", "10")
    page.click("button[data-action=loading]")
    error = page.locator("#panel-error")
    expect(error).to_contain_text("HARD")
    expect(error).to_contain_text("is above the hard max 300 mg")
    expect(error).to_contain_text("(pump.hard_stop)")
    expect(page.locator("#loading-form input[name=loading_dose]")).to_have_value("400")
    expect(page.locator("#loading-form input[name=loading_min]")).to_have_value("10")
    expect(page.locator("#loading-form button[data-action=loading]")).to_be_focused()
    near = page.locator("#loading-offer [data-refusal-for=loading]")
    expect(near).to_contain_text("is above the hard max 300 mg")
    _in_view(page, "#loading-offer [data-refusal-for=loading]", size)  # beside the focused button
    shot(page, f"panel-loading-refused-{size}", full_page=False)
    page.fill("#loading-form input[name=loading_dose]", "150")
    page.click("button[data-action=loading]")
    expect(page.locator("#panel-message")).to_have_text("Loading dose running at 500 mL/h")
    expect(page.locator("#overlay")).to_contain_text("Loading running")
    expect(page.locator("#overlay")).to_contain_text("(150 mg)")
    shot(page, f"panel-loading-running-{size}", full_page=False)
    _stop(page)


@pytest.mark.parametrize("size", SIZES)
def test_a_piggyback_with_callback_alarms_on_the_pump_and_the_station_and_is_reset(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    serial = live_server.serials[0]
    page = _panel(new_page, live_server, size, "ADULT_ICU", channel="B")
    _program_and_start(page, "ADULT_ICU.heparin", weight_kg="80", dose="18", vtbi_ml="250")
    page.select_option("#secondary-form select[name=secondary_entry_id]", PIGGYBACK)
    expect(page.locator("#secondary-form input[name=secondary_concentration]")).to_have_value("20 mEq/100 mL")
    page.fill("#secondary-form input[name=secondary_dose]", "0.1")  # 0.5 mL over 6 s: 300 mL/h
    page.fill("#secondary-form input[name=secondary_min]", "0.1")
    page.fill("#secondary-form input[name=secondary_vtbi_ml]", "0.5")
    page.check("#secondary-form input[name=secondary_callback]")
    page.click("button[data-action=secondary]")
    expect(page.locator("#panel-message")).to_have_text(
        "Piggyback running at 300 mL/h; the pump calls you back when it ends"
    )
    expect(page.locator("#overlay")).to_contain_text("callback when it ends")
    shot(page, f"panel-piggyback-callback-{size}", full_page=False)

    station = new_page(SIZES[size])
    login(station, "nina")
    called = station.locator(f'[data-pump="{serial}"] li.alarm[data-alarm="secondary.callback"]')
    expect(called).to_have_text("!! MEDIUM · secondary.callback B")
    expect(station.locator(f'[data-pump="{serial}"]')).to_have_class(re.compile(r"\bprio-tile-medium\b"))
    expect(station.locator(f'[data-pump="{serial}"] tr[data-channel="B"] [data-field=state]')).to_have_text(
        "running"
    )
    shot(station, f"station-piggyback-callback-{size}", full_page=False)

    page.reload()
    alarm = page.locator('.screen li.alarm[data-alarm="secondary.callback"]')
    expect(alarm).to_contain_text("medium · secondary.callback (B)")
    expect(page.locator("#overlay")).to_have_count(0)
    alarm.locator("button[data-action=clear_alarm]").click()
    expect(page.locator("#panel-message")).to_have_text("Alarm secondary.callback reset")
    expect(page.locator('.screen li.alarm[data-alarm="secondary.callback"]')).to_have_count(0)
    expect(called).to_have_count(0)
    _stop(page)


@pytest.mark.parametrize("size", SIZES)
def test_a_pca_starts_with_its_settings_and_a_second_press_falls_in_the_lockout(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    page = _panel(new_page, live_server, size, "PCA", channel="C")
    page.select_option("#program-form select[name=entry_id]", "PCA.morphine")
    expect(page.locator("#program-form [data-pca-fields]")).to_be_visible()
    expect(page.locator("#program-form input[name=concentration]")).to_have_value("30 mg/30 mL")
    page.fill("#program-form input[name=dose]", "1")
    page.fill("#program-form input[name=lockout_min]", "10")
    page.fill("#program-form input[name=max_dose]", "7.5")
    page.fill("#program-form input[name=vtbi_ml]", "30")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("Verdict: OK")
    _in_view(page, "#verdict button[data-action=start]", size)
    page.click("#verdict button[data-action=start]")
    expect(page.locator("#channel-state")).to_have_text("running")
    demand = page.locator("#running button[data-action=pca_demand]")
    demand.click()
    expect(page.locator("#panel-message")).to_have_text("Demand dose granted")
    expect(page.locator("#running [data-action=pca_demand]")).to_be_focused()
    page.locator("#running button[data-action=pca_demand]").click()
    expect(page.locator("#panel-message")).to_have_text("Demand dose denied (lockout or limit)")
    expect(page.locator("#panel-message")).to_have_class("msg-soft")
    shot(page, f"panel-pca-lockout-{size}", full_page=False)
    _stop(page)


@pytest.mark.parametrize("size", SIZES)
def test_a_weight_based_continuous_infusion_is_titrated_and_reads_rounded(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    page = _panel(new_page, live_server, size, "ADULT_ICU", pump=1)
    _program_and_start(page, "ADULT_ICU.dopamine", weight_kg="80", dose="5", vtbi_ml="250")
    expect(page.locator("#titration-fixed [data-fixed=weight]")).to_have_text("80 kg")
    page.fill("#program-form input[name=dose]", "7.5")
    page.click("button[data-action=titrate]")
    expect(page.locator("#verdict")).to_contain_text("Verdict: OK")
    expect(page.locator("#computed-rate")).to_have_text("22.5 mL/h")  # 7.5 x 80 x 60 / 1600 mcg/mL
    shot(page, f"panel-titration-{size}", full_page=False)
    page.click("#verdict button[data-action=start]")
    expect(page.locator(".channels-nav a.active")).to_contain_text("22.5 mL/h")
    _stop(page)
