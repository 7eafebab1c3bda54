"""The front panel programs every therapy class the pump supports (basic infusion, intermittent with a
duration, a BSA-dosed drug, a route), shows the entry's advisory, answers each action with a redirect so a
reload repeats nothing, and refuses each of them with the values kept."""

from __future__ import annotations

import re
from decimal import Decimal

import tests.server.test_web_panel as web_panel
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind
from smartpump.library.model import Route
from smartpump.pump import EventType, PumpEvent
from smartpump.units import Concentration
from tests.server.test_web_panel import HEPARIN, ONCOLOGY, Panel, block, opening_tag, text_of, values

panel = web_panel.panel


def _boluses(panel: Panel) -> list[PumpEvent]:
    """The bolus.started events the pump logs from now on (as the fleet hands them to the uplink)."""
    seen: list[PumpEvent] = []
    panel.fleet.fleet.subscribe(
        lambda _pump, event: seen.append(event) if event.type is EventType.BOLUS_STARTED else None
    )
    return seen


def test_a_basic_infusion_is_an_explicit_choice_programmed_by_rate(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    form = block(panel.page(), "form", "program-form")
    assert re.search(r'<option value="basic" data-basic="yes"[^>]*>Basic infusion', form)
    page = panel.ok("program", entry_id="basic", rate_ml_per_h="125", vtbi_ml="1000", route="IV")
    assert "Checked: OK" in text_of(block(page, "p", "panel-message"))
    pending = panel.pump.channel("A").pending
    assert pending is not None
    assert pending.program.kind is ProgramKind.BASIC and pending.program.entry_id is None
    assert pending.program.rate_ml_per_h == Decimal(125)
    assert values(block(page, "form", "program-form"))["entry_id"] == "basic"


def test_a_basic_infusion_without_a_rate_is_refused_with_the_values_kept(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    refused = panel.press("program", entry_id="basic", rate_ml_per_h="", vtbi_ml="500")
    assert refused.status_code == 409
    assert "(panel.value_required)" in text_of(block(refused.text, "p", "panel-error"))
    kept = values(block(refused.text, "form", "program-form"))
    assert kept["entry_id"] == "basic" and kept["vtbi_ml"] == "500"
    assert panel.pump.channel("A").pending is None


def test_an_intermittent_is_given_over_its_duration(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    page = panel.ok(
        "program",
        entry_id="icu-cefazolin",
        concentration="2000 mg/100 mL",
        dose="2000",
        duration_min="30",
        vtbi_ml="100",
    )
    assert "Checked: OK" in text_of(block(page, "p", "panel-message"))
    assert re.fullmatch(r"200(\.0)? mL/h", text_of(block(page, "strong", "computed-rate")))
    pending = panel.pump.channel("A").pending
    assert pending is not None and pending.program.kind is ProgramKind.INTERMITTENT
    assert pending.program.duration_min == Decimal(30)
    assert text_of(block(page, "strong", "verdict-duration")) == "30 min"
    assert values(block(page, "form", "program-form"))["duration_min"] == "30"


def test_an_intermittent_without_a_duration_is_refused_before_the_pump(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    typed = {"entry_id": "icu-cefazolin", "concentration": "2000 mg/100 mL", "dose": "2000", "vtbi_ml": "100"}
    refused = panel.press("program", duration_min="", **typed)
    assert refused.status_code == 409
    assert "enter the duration (panel.value_required)" in text_of(block(refused.text, "p", "panel-error"))
    kept = values(block(refused.text, "form", "program-form"))
    assert {name: kept[name] for name in typed} == typed


def test_a_bsa_drug_is_programmed_with_a_bsa_and_shows_its_advisory(panel: Panel) -> None:
    panel.ok("care_area", care_area=ONCOLOGY)
    form = block(panel.page(), "form", "program-form")
    option = re.search(r'<option value="onc-fluorouracil"[^>]*>', form)
    assert option, form
    assert 'data-per-m2="yes"' in option.group(0)
    assert 'data-advisory="Vesicant: check the line for patency before each start."' in option.group(0)
    assert 'name="bsa_m2"' in form and 'name="height_cm"' in form
    page = panel.ok(
        "program", entry_id="onc-fluorouracil", concentration="5000 mg/100 mL", bsa_m2="1.8", dose="1000"
    )
    assert "Checked: OK" in text_of(block(page, "p", "panel-message"))
    pending = panel.pump.channel("A").pending
    assert pending is not None and pending.program.patient.bsa_m2 == Decimal("1.8")


def test_a_bsa_drug_from_weight_and_height_and_without_either(panel: Panel) -> None:
    panel.ok("care_area", care_area=ONCOLOGY)
    typed = {"entry_id": "onc-fluorouracil", "concentration": "5000 mg/100 mL", "dose": "1000"}
    refused = panel.press("program", **typed)
    assert refused.status_code == 409
    assert "bsa" in text_of(block(refused.text, "p", "panel-error")).lower()
    malformed = panel.press("program", weight_kg="70", height_cm="tall", **typed)
    assert malformed.status_code == 409
    assert "height 'tall' is not a number (panel.value_invalid)" in text_of(
        block(malformed.text, "p", "panel-error")
    )
    assert values(block(malformed.text, "form", "program-form"))["height_cm"] == "tall"
    page = panel.ok("program", weight_kg="70", height_cm="175", **typed)
    assert "Checked: OK" in text_of(block(page, "p", "panel-message"))
    pending = panel.pump.channel("A").pending
    assert pending is not None and pending.program.patient.height_cm == Decimal(175)


def test_a_route_other_than_the_entrys_is_refused_by_the_pump(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    refused = panel.press("program", entry_id="icu-heparin", route=Route.EPIDURAL.value, **HEPARIN)
    assert refused.status_code == 409
    assert "route" in text_of(block(refused.text, "p", "panel-error")).lower()
    assert values(block(refused.text, "form", "program-form"))["route"] == Route.EPIDURAL.value
    unknown = panel.press("program", entry_id="icu-heparin", route="nasal", **HEPARIN)
    assert unknown.status_code == 409
    assert "(panel.route)" in text_of(block(unknown.text, "p", "panel-error"))


def test_a_reload_after_a_bolus_shows_the_answer_without_giving_it_again(panel: Panel) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    boluses = _boluses(panel)
    pressed = panel.press("bolus", bolus_dose="50", bolus_min="30")
    assert pressed.status_code == 303
    location = pressed.headers["location"]
    assert len(boluses) == 1
    for _reload in range(2):
        again = panel.client.get(location)
        assert again.status_code == 200
        assert "Bolus running at" in text_of(block(again.text, "p", "panel-message"))
    assert len(boluses) == 1
    focus = opening_tag(again.text, "panel-layout")
    assert 'data-focus="#running [data-action=pause]' in focus


def test_a_forged_or_altered_answer_is_not_shown(panel: Panel) -> None:
    page = panel.ok("care_area", care_area="icu")
    assert "Care area Adult ICU selected" in text_of(block(page, "p", "panel-message"))
    pressed = panel.press("care_area", care_area="icu")
    location = pressed.headers["location"]
    altered = location.replace("Adult+ICU", "Ward")
    assert altered != location
    forgeries = (
        altered,
        f"/ui/panel/{panel.serial}?channel=A&done=start&tone=ok&said=Infusing&sig=00",
        location.replace("tone=ok", "tone=shout"),
        location.replace("channel=A", "channel=B"),
    )
    for forged in forgeries:
        shown = panel.client.get(forged)
        assert shown.status_code == 200
        assert 'id="panel-message"' not in shown.text


def test_a_refused_action_keeps_focus_on_its_own_button_and_the_skip_link_leads_to_the_form(
    panel: Panel,
) -> None:
    panel.run("icu", "icu-heparin", **HEPARIN)
    refused = panel.press("bolus", bolus_dose="120", bolus_min="30")
    assert refused.status_code == 409
    assert 'data-focus="[data-action=bolus]' in opening_tag(refused.text, "panel-layout")
    error = text_of(block(refused.text, "p", "panel-error"))
    assert "HARD bolus dose 120 units/kg is above the hard max 100 units/kg (× 1.2)" in error
    assert "rule ders.bolus_dose.hard_max" in error
    assert '<a class="panel-skip" href="#program-form">' in refused.text
    assert 'id="program-form"' in refused.text


def test_an_auto_programmed_program_not_from_a_known_order_names_no_order(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    program = InfusionProgram(
        entry_id="icu-dopamine",
        dose=Decimal(5),
        concentration=Concentration.parse("400 mg/250 mL"),
        patient=PatientParameters(weight_kg=Decimal(80)),
    )
    panel.fleet.act(panel.serial, lambda p: p.program("A", program, auto_programmed=True))
    order = text_of(block(panel.page(), "p", "ehr-order"))
    assert order.startswith("EHR order (order id not known) · for ")
    assert panel.fleet.order_behind(panel.serial, "A", program) is None


def test_a_multistep_program_runs_its_steps_by_rate(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    typed = {"entry_id": "icu-heparin", "weight_kg": "80", "dose": ""}
    steps = {"step_rate_1": "10", "step_volume_1": "20", "step_rate_2": "5", "step_volume_2": "30"}
    page = panel.ok("program", **typed, **steps)
    assert "Checked: OK" in text_of(block(page, "p", "panel-message"))
    pending = panel.pump.channel("A").pending
    assert pending is not None
    assert [(s.rate_ml_per_h, s.volume_ml) for s in pending.steps] == [
        (Decimal(10), Decimal(20)),
        (Decimal(5), Decimal(30)),
    ]
    assert pending.program.rate_ml_per_h == Decimal(10) and pending.program.vtbi_ml == Decimal(50)
    listed = re.findall(r"<li>(.*?)</li>", block(page, "ol", "verdict-steps"))
    assert [re.sub(r"\.0 mL/h", " mL/h", line) for line in listed] == [
        "10 mL/h for 20 mL",
        "5 mL/h for 30 mL",
    ]
    shown = values(block(page, "form", "program-form"))
    assert {name: shown[name] for name in steps} == steps


def test_a_half_filled_or_hard_step_is_refused_with_the_steps_kept(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    typed = {"entry_id": "icu-heparin", "weight_kg": "80", "dose": ""}
    half = panel.press("program", step_rate_1="10", step_volume_1="20", step_rate_2="5", **typed)
    assert half.status_code == 409
    assert "enter the step 2 volume (panel.value_required)" in text_of(block(half.text, "p", "panel-error"))
    kept = values(block(half.text, "form", "program-form"))
    assert (kept["step_rate_2"], kept["step_volume_2"]) == ("5", "")
    page = panel.ok(
        "program", step_rate_1="10", step_volume_1="20", step_rate_2="200", step_volume_2="30", **typed
    )
    verdict = block(page, "section", "verdict")
    assert "verdict-hard" in opening_tag(page, "verdict")
    assert "alert-hard" in verdict
