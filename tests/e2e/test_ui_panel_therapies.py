"""The front panel as a nurse uses it on a 1366x768 laptop and a 1920x1080 wall screen, in real headless
Chromium: a hard verdict in red beside its buttons above the fold, a soft alert overridden with a coded
reason, an intermittent given over its duration, a drug dosed per m2 of body surface with its advisory, a
basic infusion chosen explicitly, a multistep by rate, and a reload after a bolus that does not give it
again. Screenshots under
artifacts/screenshots."""

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
from smartpump.pump import EventType, PumpEvent
from smartpump.units import Concentration, DoseUnit
from tests.e2e.conftest import REPO, LiveServer, login, serve, shot

pytestmark = pytest.mark.e2e
SIZES: Final = {"1366x768": {"width": 1366, "height": 768}, "1920x1080": {"width": 1920, "height": 1080}}
"""The nurse's laptop and the wall screen: every journey runs at both."""
RED = "rgb(198, 40, 40)"
KCL = "ADULT_MEDSURG.potassium-chloride-e2e"
ADVISORY = "Never by IV push: give over at least one hour."


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo library with one intermittent entry more (potassium chloride over a duration, with an
    advisory): the demo library has none."""
    library = json_format.read(REPO / "examples" / "demo-library.json")
    kcl = Entry(
        id=KCL,
        care_area_id="ADULT_MEDSURG",
        drug_id="potassium-chloride",
        mode=DeliveryMode.INTERMITTENT,
        dose=DoseLimits(
            unit=DoseUnit.parse("mEq"), limits=LimitSet(soft_max=Decimal(20), hard_max=Decimal(40))
        ),
        concentrations=(Concentration.parse("20 mEq/100 mL"),),
        duration_min=Bounds(limits=LimitSet(hard_min=Decimal(60))),
        advisory=ADVISORY,
    )
    yield from serve(tmp_path_factory, replace(library, entries=(*library.entries, kcl)))


def _inside_viewport(page: Any, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    screen = page.viewport_size
    assert box is not None, f"{selector} is not displayed"
    assert box["y"] >= 0 and box["y"] + box["height"] <= screen["height"], (
        f"{selector} is below the fold: {box}"
    )
    assert box["x"] >= 0 and box["x"] + box["width"] <= screen["width"], f"{selector} is off screen: {box}"


def _panel(
    new_page: Any, live_server: LiveServer, area: str, size: str, *, pump: int = 0, channel: str = "A"
) -> Any:
    """A nurse's panel on an idle channel (the first pump has channels A-C, the second only A), in
    ``area``; each test leaves its channel idle again."""
    page = new_page(SIZES[size])
    login(page, "nina")
    page.goto(f"/ui/panel/{live_server.serials[pump]}?channel={channel}")
    page.select_option("select[name=care_area]", area)
    page.click("button[data-action=care_area]")
    expect(page.locator("#panel-message")).to_contain_text("selected")
    return page


def _stop(page: Any) -> None:
    page.click("#running button[data-action=stop]")
    expect(page.locator("#channel-state")).to_have_text("idle")


@pytest.mark.parametrize("size", SIZES)
def test_a_hard_verdict_is_red_beside_its_buttons_and_a_soft_one_is_overridden_with_a_code(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    page = _panel(new_page, live_server, "ADULT_ICU", size)
    page.select_option("#program-form select[name=entry_id]", "ADULT_ICU.dopamine")
    page.fill("#program-form input[name=weight_kg]", "80")
    page.fill("#program-form input[name=dose]", "45")
    page.fill("#program-form input[name=vtbi_ml]", "250")
    page.click("button[data-action=program]")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_class("step verdict verdict-hard")
    expect(verdict.locator("h2")).to_have_css("color", RED)
    expect(verdict.locator("li.alert-hard")).to_contain_text("is above the hard max")
    expect(verdict.locator("li.alert-hard")).to_contain_text("rule ders.dose.hard_max")
    expect(page.locator("#panel-message")).to_have_class("msg-hard")
    _inside_viewport(page, "#verdict")
    _inside_viewport(page, "#verdict button[data-action=cancel]")
    expect(page.locator("#verdict button[data-action=cancel]")).to_be_focused()
    expect(page.locator("#program-form input[name=dose]")).to_have_value("45")
    shot(page, f"panel-hard-verdict-{size}", full_page=False)

    page.fill("#program-form input[name=dose]", "23")
    page.click("button[data-action=program]")
    expect(verdict).to_have_class("step verdict verdict-soft")
    expect(verdict.locator("li.alert-soft")).to_contain_text("(× 1.15)")
    reason = verdict.locator("select[name=reason]")
    expect(reason).to_be_focused()
    _inside_viewport(page, "#verdict")
    reason.select_option("patient_condition")
    shot(page, f"panel-soft-verdict-{size}", full_page=False)
    page.click("#verdict button[data-action=override]")
    expect(page.locator("#panel-message")).to_have_text("Soft alert overridden")
    start = page.locator("#verdict button[data-action=start]")
    expect(start).to_be_focused()
    _inside_viewport(page, "#verdict button[data-action=start]")
    start.click()
    expect(page.locator("#channel-state")).to_have_text("running")
    _stop(page)


@pytest.mark.parametrize("size", SIZES)
def test_an_intermittent_is_given_over_its_duration_with_its_advisory(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    page = _panel(new_page, live_server, "ADULT_MEDSURG", size, channel="B")
    expect(page.locator("#program-form [data-intermittent-fields]")).to_be_hidden()
    page.select_option("#program-form select[name=entry_id]", KCL)
    expect(page.locator("#advisory")).to_have_text(f"Advisory: {ADVISORY}")
    duration = page.locator("#program-form input[name=duration_min]")
    expect(duration).to_be_visible()
    expect(page.locator("#program-form input[name=concentration]")).to_have_value("20 mEq/100 mL")
    page.fill("#program-form input[name=dose]", "20")
    duration.fill("60")
    page.fill("#program-form input[name=vtbi_ml]", "100")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("Verdict: OK")
    expect(page.locator("#computed-rate")).to_have_text(re.compile(r"^100(\.0)? mL/h$"))
    expect(page.locator("#verdict-duration")).to_have_text("60 min")
    shot(page, f"panel-intermittent-{size}", full_page=False)
    page.click("#verdict button[data-action=start]")
    expect(page.locator("#channel-state")).to_have_text("running")
    _stop(page)


@pytest.mark.parametrize("size", SIZES)
def test_a_bsa_drug_asks_for_a_bsa_and_the_concentration_follows_the_drug(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    page = _panel(new_page, live_server, "ONCOLOGY", size, channel="C")
    conc = page.locator("#program-form input[name=concentration]")
    page.select_option("#program-form select[name=entry_id]", "ONCOLOGY.cytarabine")
    expect(conc).to_have_value("200 mg/500 mL")
    page.select_option("#program-form select[name=entry_id]", "ONCOLOGY.fluorouracil")
    expect(conc).to_have_value("5000 mg/100 mL")
    expect(page.locator("#program-form [data-bsa-hint]")).to_be_visible()
    page.fill("#program-form input[name=dose]", "1000")
    page.click("button[data-action=program]")
    expect(page.locator("#panel-error")).to_contain_text("BSA")
    expect(page.locator("#program-form input[name=dose]")).to_have_value("1000")
    expect(conc).to_have_value("5000 mg/100 mL")
    page.fill("#program-form input[name=bsa_m2]", "1.8")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("Verdict:")
    expect(page.locator("#verdict")).to_contain_text("mg/m2/day")
    shot(page, f"panel-bsa-{size}", full_page=False)
    page.click("#verdict button[data-action=cancel]")
    expect(page.locator("#verdict")).to_have_count(0)


@pytest.mark.parametrize("size", SIZES)
def test_a_basic_infusion_is_chosen_explicitly_and_a_reload_after_a_bolus_gives_none(
    new_page: Any, live_server: LiveServer, size: str
) -> None:
    page = _panel(new_page, live_server, "ADULT_ICU", size, pump=1)
    page.select_option("#program-form select[name=entry_id]", "basic")
    expect(page.locator("#program-form input[name=concentration]")).to_be_hidden()
    page.fill("#program-form input[name=rate_ml_per_h]", "125")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text(re.compile(r"Computed rate 125(\.0)? mL/h"))
    page.click("#verdict button[data-action=cancel]")

    page.select_option("#program-form select[name=entry_id]", "ADULT_ICU.heparin")
    page.fill("#program-form input[name=weight_kg]", "80")
    page.click("#multistep summary")
    page.fill("#program-form input[name=step_rate_1]", "10")
    page.fill("#program-form input[name=step_volume_1]", "20")
    page.fill("#program-form input[name=step_rate_2]", "5")
    page.fill("#program-form input[name=step_volume_2]", "30")
    page.click("button[data-action=program]")
    expect(page.locator("#verdict")).to_contain_text("VTBI 50 mL")
    expect(page.locator("#program-form input[name=step_rate_2]")).to_have_value("5")
    shot(page, f"panel-multistep-{size}", full_page=False)
    page.click("#verdict button[data-action=cancel]")
    expect(page.locator("#program-form input[name=step_rate_1]")).to_have_value("")
    page.select_option("#program-form select[name=entry_id]", "ADULT_ICU.heparin")
    page.fill("#program-form input[name=weight_kg]", "80")
    page.fill("#program-form input[name=dose]", "18")
    page.fill("#program-form input[name=vtbi_ml]", "250")
    page.click("button[data-action=program]")
    page.click("#verdict button[data-action=start]")
    expect(page.locator("#channel-state")).to_have_text("running")
    fleet = live_server.fleet
    boluses: list[PumpEvent] = []
    fleet.fleet.subscribe(
        lambda _pump, event: boluses.append(event) if event.type is EventType.BOLUS_STARTED else None
    )
    page.fill("#bolus-form input[name=bolus_dose]", "80")
    page.fill("#bolus-form input[name=bolus_min]", "5")
    page.click("button[data-action=bolus]")
    expect(page.locator("#panel-message")).to_contain_text("Bolus running at")
    expect(page.locator("#overlay")).to_contain_text("Bolus running")
    expect(page.locator("#running [data-action=pause]")).to_be_focused()
    assert len(boluses) == 1
    for _reload in range(2):
        page.reload()
        expect(page.locator("#panel-message")).to_contain_text("Bolus running at")
    assert len(boluses) == 1
    with fleet.lock:
        therapy = fleet.pump(live_server.serials[1]).channel("A").therapy
        assert therapy is not None and therapy.overlay is not None
        assert therapy.overlay.dose == Decimal(80)
    shot(page, f"panel-bolus-reloaded-{size}", full_page=False)
    _stop(page)
