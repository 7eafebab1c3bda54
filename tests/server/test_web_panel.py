"""The front panel offers only what is legal on a channel and explains every verdict and refusal.

A real simulated pump (a SimFleet on a synthetic library, never advanced: only the panel acts on it)
driven through the panel's own form posts, as a browser would.
"""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from smartpump.clock import ManualClock
from smartpump.demo.fleet import SimFleet
from smartpump.library.keys import TrustStore
from smartpump.library.model import CareArea, DeliveryMode, DeviceDefaults, DrugLibrary, Entry
from smartpump.pump import AlarmId, ChannelState, OverrideReason, Pump
from smartpump.server.app import create_app
from smartpump.server.auth import Role
from smartpump.server.settings import Settings
from smartpump.server.workers import InProcessLink
from tests.factories import (
    bounds,
    concentration,
    dose_limits,
    make_care_area,
    make_drug,
    make_entry,
    make_library,
)
from tests.server.conftest import PASSWORD, World, _wipe
from tests.server.test_web_pages import HTML, csrf_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WARD = "ward"
STEP_DOWN = "step-down"
ONCOLOGY = "onc"


def panel_library() -> DrugLibrary:
    """Synthetic example library: an ICU with a bolus-only heparin, a loading-only amiodarone, dopamine
    with neither, and a piggyback-capable cefazolin; a ward that forbids secondaries although it lists
    cefazolin; a step-down unit that allows secondaries but has no entry that allows one; an oncology unit
    with a fluorouracil dosed per m2 of body surface, with a clinical advisory."""
    drugs = (
        make_drug(),
        make_drug(id="heparin", generic_name="heparin", display_name="heparin", drug_class="anticoagulant"),
        make_drug(id="amiodarone", generic_name="amiodarone", display_name="amiodarone", is_high_alert=False),
        make_drug(id="cefazolin", generic_name="cefazolin", display_name="ceFAZolin", is_high_alert=False),
        make_drug(id="fluorouracil", generic_name="fluorouracil", display_name="fluorouracil"),
    )

    def heparin(area: str) -> Entry:
        return make_entry(
            id=f"{area}-heparin",
            care_area_id=area,
            drug_id="heparin",
            dose=dose_limits("units/kg/h", soft_max=25, hard_max=40),
            concentrations=(concentration("25000 units/250 mL"),),
            bolus=dose_limits("units/kg", soft_max=80, hard_max=100),
        )

    def cefazolin(area: str) -> Entry:
        return make_entry(
            id=f"{area}-cefazolin",
            care_area_id=area,
            drug_id="cefazolin",
            mode=DeliveryMode.INTERMITTENT,
            dose=dose_limits("mg", soft_max=2000, hard_max=3000),
            concentrations=(concentration("2000 mg/100 mL"),),
            allows_secondary=True,
        )

    entries = (
        make_entry(),
        heparin("icu"),
        make_entry(
            id="icu-amiodarone",
            drug_id="amiodarone",
            dose=dose_limits("mg/min", soft_max=1, hard_max=2),
            concentrations=(concentration("450 mg/250 mL"),),
            loading=dose_limits("mg", soft_max=150, hard_max=300),
            loading_duration_min=bounds(hard_min=10, hard_max=30),
        ),
        cefazolin("icu"),
        heparin(WARD),
        cefazolin(WARD),
        heparin(STEP_DOWN),
        make_entry(
            id=f"{ONCOLOGY}-fluorouracil",
            care_area_id=ONCOLOGY,
            drug_id="fluorouracil",
            dose=dose_limits("mg/m2/day", soft_max=1000, hard_max=1200),
            concentrations=(concentration("5000 mg/100 mL"),),
            advisory="Vesicant: check the line for patency before each start.",
        ),
    )
    areas: tuple[CareArea, ...] = (
        make_care_area(),
        make_care_area(id=WARD, name="Ward", device=DeviceDefaults(secondary_allowed=False)),
        make_care_area(id=STEP_DOWN, name="Step-down"),
        make_care_area(id=ONCOLOGY, name="Oncology"),
    )
    return make_library(drugs=drugs, care_areas=areas, entries=entries)


@dataclass(slots=True)
class Panel:
    """A nurse's browser on one simulated pump's front panel."""

    client: TestClient
    fleet: SimFleet
    serial: str
    csrf: str

    @property
    def pump(self) -> Pump:
        return self.fleet.pump(self.serial)

    def page(self, channel: str = "A") -> str:
        response: httpx.Response = self.client.get(f"/ui/panel/{self.serial}?channel={channel}")
        assert response.status_code == 200, response.text
        return response.text

    def press(self, action: str, channel: str = "A", **fields: str) -> Any:
        data = {"csrf": self.csrf, "action": action, "channel": channel, **fields}
        return self.client.post(f"/ui/panel/{self.serial}", data=data)

    def ok(self, action: str, channel: str = "A", **fields: str) -> str:
        """Press a button the pump accepts: 303 to the panel's GET (never a page a reload would re-send),
        whose page is returned."""
        response = self.press(action, channel, **fields)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith(f"/ui/panel/{self.serial}?channel={channel}&done={action}&")
        shown: httpx.Response = self.client.get(location)
        assert shown.status_code == 200, shown.text
        return str(shown.text)

    def run(self, area: str, entry_id: str, channel: str = "A", **fields: str) -> None:
        """Program and start an infusion through the panel (verdict OK expected)."""
        self.ok("care_area", channel, care_area=area)
        checked = self.ok("program", channel, entry_id=entry_id, **fields)
        assert 'class="msg-ok" id="panel-message">Checked: OK' in checked
        self.ok("start", channel)
        assert self.pump.channel(channel).therapy is not None


@pytest.fixture
def panel(settings: Settings, clock: ManualClock, engine: Engine) -> Iterator[Panel]:
    """A nurse logged in on the panel of a one-pump simulated fleet."""
    link = InProcessLink()
    fleet = SimFleet(
        library=panel_library(),
        pumps=1,
        seed=3,
        speed=1.0,
        trust=TrustStore([]),
        transport_for=link.pump_transport,
        link=link,
    )
    app = create_app(settings, clock=clock, engine=engine, sim_fleet=fleet)
    client = TestClient(app, raise_server_exceptions=False, headers=HTML, follow_redirects=False)
    world = World(app, client, clock)
    world.user((Role.NURSE, world.facility()), username="nina")
    page = client.get("/ui/login")
    login = client.post(
        "/ui/login",
        data={"username": "nina", "password": PASSWORD, "csrf": csrf_of(page.text), "next": "/ui/"},
    )
    assert login.status_code == 303, login.text
    serial = fleet.serials()[0]
    first = client.get(f"/ui/panel/{serial}")
    try:
        yield Panel(client=client, fleet=fleet, serial=serial, csrf=csrf_of(first.text))
    finally:
        client.close()
        fleet.close()
        _wipe(engine)


def block(page: str, tag: str, id_: str) -> str:
    """The inner HTML of the element ``<tag ... id="id_">`` (sections and forms are not nested)."""
    found = re.search(rf'<{tag}\b[^>]*\bid="{re.escape(id_)}"[^>]*>(.*?)</{tag}>', page, re.S)
    assert found, f"no <{tag} id={id_!r}> on the page"
    return found.group(1)


def opening_tag(page: str, id_: str) -> str:
    found = re.search(rf'<[a-z0-9]+\b[^>]*\bid="{re.escape(id_)}"[^>]*>', page)
    assert found, f"no element with id {id_!r}"
    return found.group(0)


def text_of(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def values(form: str) -> dict[str, str]:
    """The values a form's inputs hold, and the selected option of its selects."""
    found = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input\b[^>]*?\bname="([^"]+)"[^>]*?\bvalue="([^"]*)"', form)
    }
    for select in re.finditer(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', select.group(2))
        found[select.group(1)] = chosen.group(1) if chosen else ""
    return found


def option_values(form: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', form, re.S)
    assert select, f"no select {name!r}"
    return [v for v in re.findall(r'<option value="([^"]*)"', select.group(1)) if v]


HEPARIN = {"weight_kg": "80", "dose": "18", "vtbi_ml": "250"}


def test_a_running_channel_offers_a_titration_of_its_own_drug_only(panel: Panel) -> None:
    idle = panel.page()
    assert "icu-dopamine" in option_values(block(idle, "form", "program-form"), "entry_id")
    panel.run("icu", "icu-heparin", **HEPARIN)
    page = panel.page()
    form = block(page, "form", "program-form")
    assert 'name="action" value="titrate"' in form
    assert 'name="entry_id"' not in form
    assert 'name="concentration"' not in form
    assert 'name="weight_kg"' not in form
    assert "dopamine" not in text_of(form).lower()
    fixed = text_of(block(page, "dl", "titration-fixed"))
    assert fixed == "Drug heparin Concentration 25000 units/250 mL Patient weight 80 kg"
    assert values(form) == {
        "csrf": panel.csrf,
        "channel": "A",
        "action": "titrate",
        "dose": "18",
        "vtbi_ml": "250",
    }
    assert "units/kg/h" in text_of(form)


def test_a_titration_cannot_switch_the_drug_even_when_the_request_asks_to(panel: Panel) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    running = panel.pump.channel("A").therapy
    assert running is not None
    panel.ok(
        "titrate",
        entry_id="icu-dopamine",
        concentration="800 mg/250 mL",
        weight_kg="40",
        dose="20",
        vtbi_ml="200",
    )
    pending = panel.pump.channel("A").pending
    assert pending is not None and pending.is_titration
    assert pending.program.entry_id == running.program.entry_id == "icu-heparin"
    assert pending.program.concentration == running.program.concentration
    assert pending.program.patient == running.program.patient
    assert (pending.program.dose, pending.program.vtbi_ml) == (Decimal(20), Decimal(200))
    refused = panel.press("program", entry_id="icu-dopamine", weight_kg="80", dose="5")
    assert refused.status_code == 409
    assert "(panel.channel_running)" in block(refused.text, "p", "panel-error")
    assert panel.pump.channel("A").pending is pending


def test_the_bolus_form_shows_the_running_entry_limits_and_asks_only_dose_and_duration(panel: Panel) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    page = panel.page()
    offer = block(page, "section", "bolus-offer")
    assert "Bolus limits (units/kg): soft max 80 · hard max 100" in text_of(offer)
    assert sorted(re.findall(r'<input name="([^"]+)"', block(page, "form", "bolus-form"))) == [
        "bolus_dose",
        "bolus_min",
    ]
    assert "Bolus dose (units/kg)" in text_of(block(page, "form", "bolus-form"))
    assert 'id="loading-offer"' not in page


def test_loading_is_offered_only_by_an_entry_with_loading_limits(panel: Panel) -> None:
    panel.run("icu", "icu-amiodarone", dose="0.5")
    page = panel.page()
    offer = text_of(block(page, "section", "loading-offer"))
    assert (
        "Loading dose limits (mg): soft max 150 · hard max 300 · duration (min): hard min 10 · hard max 30"
        in (offer)
    )
    assert "Loading dose (mg)" in offer
    assert "dose dose" not in offer.lower()
    assert 'id="bolus-offer"' not in page


def test_no_bolus_is_offered_or_accepted_when_the_entry_allows_none(panel: Panel) -> None:
    panel.run("icu", "icu-dopamine", concentration="400 mg/250 mL", weight_kg="80", dose="5")
    page = panel.page()
    assert 'id="bolus-offer"' not in page and 'id="loading-offer"' not in page
    for action in ("bolus", "loading"):
        refused = panel.press(action, **{f"{action}_dose": "5", f"{action}_min": "5"})
        assert refused.status_code == 409
        assert f"(panel.{action}_not_offered)" in block(refused.text, "p", "panel-error")
    therapy = panel.pump.channel("A").therapy
    assert therapy is not None and therapy.overlay is None


@pytest.mark.parametrize(
    ("area", "offered"),
    [("icu", ["icu-cefazolin"]), (WARD, []), (STEP_DOWN, [])],
    ids=["secondary-entries", "area-forbids-secondaries", "no-entry-allows-one"],
)
def test_a_piggyback_is_offered_only_with_entries_that_allow_one(
    panel: Panel, area: str, offered: list[str]
) -> None:
    panel.run(area, f"{area}-heparin", **HEPARIN)
    page = panel.page()
    if offered:
        assert option_values(block(page, "form", "secondary-form"), "secondary_entry_id") == offered
        return
    assert 'id="secondary-offer"' not in page
    forged = panel.press(
        "secondary", secondary_entry_id=f"{area}-cefazolin", secondary_dose="1000", secondary_vtbi_ml="50"
    )
    assert forged.status_code == 409
    assert "(panel.secondary_not_offered)" in block(forged.text, "p", "panel-error")


def test_a_piggyback_on_an_entry_that_allows_one_runs(panel: Panel) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    started = panel.ok(
        "secondary",
        secondary_entry_id="icu-cefazolin",
        secondary_dose="1000",
        secondary_min="30",
        secondary_vtbi_ml="50",
    )
    assert "Piggyback running at 100 mL/h" in block(started, "p", "panel-message")
    therapy = panel.pump.channel("A").therapy
    assert therapy is not None and therapy.overlay is not None


def test_a_hard_verdict_is_red_with_each_limit_value_unit_and_rule(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    page = panel.ok(
        "program", entry_id="icu-dopamine", concentration="400 mg/250 mL", weight_kg="80", dose="45"
    )
    assert 'class="msg-hard" id="panel-message"' in page
    assert "msg-ok" not in page
    assert "verdict-hard" in opening_tag(page, "verdict")
    verdict = block(page, "section", "verdict")
    alert = re.search(r'<li class="alert-hard" data-rule="ders.dose.hard_max"[^>]*>(.*?)</li>', verdict, re.S)
    assert alert, verdict
    assert text_of(alert.group(1)) == (
        "HARD dose 45 mcg/kg/min is above the hard max 30 mcg/kg/min (× 1.5) rule ders.dose.hard_max"
    )
    assert 'data-action="start"' not in verdict
    assert 'data-action="override"' not in verdict


def test_a_soft_verdict_shows_the_factor_rounded_and_the_coded_reasons(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    dose = (Decimal(20) * 7 / 6).quantize(Decimal("0.0000001"))
    page = panel.ok(
        "program", entry_id="icu-dopamine", concentration="400 mg/250 mL", weight_kg="80", dose=str(dose)
    )
    assert 'class="msg-soft" id="panel-message"' in page
    verdict = block(page, "section", "verdict")
    assert "verdict-soft" in opening_tag(page, "verdict")
    alert = text_of(re.findall(r'<li class="alert-soft"[^>]*>(.*?)</li>', verdict, re.S)[0])
    assert (
        alert
        == "SOFT dose 23.33 mcg/kg/min is above the soft max 20 mcg/kg/min (× 1.17) rule ders.dose.soft_max"
    )
    assert option_values(verdict, "reason") == [r.value for r in OverrideReason]
    assert not re.search(r"\d{9,}|\dE[+-]?\d", text_of(page))


def test_a_refused_program_keeps_what_the_nurse_typed(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    typed = {"entry_id": "icu-dopamine", "concentration": "800 mg/250 mL", "dose": "7.5", "vtbi_ml": "250"}
    refused = panel.press("program", **typed)
    assert refused.status_code == 409
    assert "(program.weight_required)" in text_of(block(refused.text, "p", "panel-error"))
    kept = values(block(refused.text, "form", "program-form"))
    assert {name: kept[name] for name in typed} == typed
    assert kept["weight_kg"] == ""


def test_a_refused_bolus_shows_the_pumps_message_the_limits_crossed_and_keeps_the_values(
    panel: Panel,
) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    refused = panel.press("bolus", bolus_dose="120", bolus_min="30")
    assert refused.status_code == 409
    error = text_of(block(refused.text, "p", "panel-error"))
    assert error.startswith("Refused: ") and error.endswith("(pump.hard_stop)")
    assert "verdict-hard" in opening_tag(refused.text, "refusal")
    crossed = text_of(block(refused.text, "section", "refusal"))
    assert "HARD bolus dose 120 units/kg is above the hard max 100 units/kg (× 1.2)" in crossed
    assert "rule ders.bolus_dose.hard_max" in crossed
    assert values(block(refused.text, "form", "bolus-form")) == {
        "csrf": panel.csrf,
        "channel": "A",
        "action": "bolus",
        "bolus_dose": "120",
        "bolus_min": "30",
        "reason": "",
    }
    soft = panel.press("bolus", bolus_dose="90", bolus_min="30")
    assert soft.status_code == 409
    assert "(pump.override_required)" in text_of(block(soft.text, "p", "panel-error"))
    assert "verdict-soft" in opening_tag(soft.text, "refusal")
    given = panel.ok("bolus", bolus_dose="90", bolus_min="30", reason=OverrideReason.PRESCRIBER_ORDER.value)
    assert "Bolus running at" in block(given, "p", "panel-message")


def _half_an_hour_later(panel: Panel) -> None:
    """The pump's own clock moves on 30 min and 1 s (the 50 mL piggyback at 100 mL/h has ended)."""
    with panel.fleet.lock:
        panel.fleet.env.clock.advance(1801)
        panel.pump.sync()


def test_a_piggyback_with_callback_calls_the_nurse_back_and_the_reset_clears_it(panel: Panel) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    form = block(panel.page(), "form", "secondary-form")
    assert re.search(r'<input type="checkbox" name="secondary_callback" value="yes">', form)
    started = panel.ok(
        "secondary",
        secondary_entry_id="icu-cefazolin",
        secondary_dose="1000",
        secondary_min="30",
        secondary_vtbi_ml="50",
        secondary_callback="yes",
    )
    assert "Piggyback running at 100 mL/h; the pump calls you back when it ends" in text_of(
        block(started, "p", "panel-message")
    )
    assert "callback when it ends" in text_of(block(started, "p", "overlay"))
    _half_an_hour_later(panel)
    channel = panel.pump.channel("A")
    assert channel.state is ChannelState.RUNNING and channel.flow_ml_per_h == Decimal(
        "14.4"
    )  # 18 units/kg/h x 80 kg at 100 units/mL
    page = panel.page()
    alarm = re.search(r'<li class="alarm prio-medium" data-alarm="secondary.callback">(.*?)</li>', page, re.S)
    assert alarm, page
    assert text_of(alarm.group(1)).startswith("medium · secondary.callback (A)")
    reset = panel.ok("clear_alarm", alarm="secondary.callback", alarm_channel="A")
    assert "Alarm secondary.callback reset" in text_of(block(reset, "p", "panel-message"))
    assert 'data-alarm="secondary.callback"' not in reset
    assert not panel.pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A")


def test_a_piggyback_without_callback_ends_silently_and_bad_callback_or_alarm_values_are_refused(
    panel: Panel,
) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    piggyback = {
        "secondary_entry_id": "icu-cefazolin",
        "secondary_dose": "1000",
        "secondary_min": "30",
        "secondary_vtbi_ml": "50",
    }
    refused = panel.press("secondary", **piggyback, secondary_callback="maybe")
    assert refused.status_code == 409
    assert "(panel.callback)" in block(refused.text, "p", "panel-error")
    assert values(block(refused.text, "form", "secondary-form"))["secondary_dose"] == "1000"
    therapy = panel.pump.channel("A").therapy
    assert therapy is not None and therapy.overlay is None
    started = panel.ok("secondary", **piggyback)
    assert "calls you back" not in text_of(block(started, "p", "panel-message"))
    _half_an_hour_later(panel)
    assert not panel.pump.alarms.is_active(AlarmId.SECONDARY_CALLBACK, "A")
    unknown = panel.press("clear_alarm", alarm="no.such.alarm")
    assert unknown.status_code == 409
    assert "(panel.alarm)" in block(unknown.text, "p", "panel-error")
