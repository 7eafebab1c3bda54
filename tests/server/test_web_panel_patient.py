"""The front panel's patient step: a nurse scans or types the patient, the pump emits patient.associated,
the panel shows who the pump is for; malformed or locked associations are refused, typed values kept."""

from __future__ import annotations

from smartpump.pump import EventType, Pump
from smartpump.pump.events import PumpEvent
from tests.server.test_web_panel import HEPARIN, Panel, block, panel, panel_library, text_of, values

__all__ = ["panel", "panel_library"]


def _watch(panel: Panel) -> list[dict[str, object]]:
    """The data of every patient.associated the fleet hands on from now (the pump's log is drained)."""
    seen: list[dict[str, object]] = []

    def hook(_: Pump, event: PumpEvent) -> None:
        if event.type is EventType.PATIENT_ASSOCIATED:
            seen.append(dict(event.data))

    panel.fleet.fleet.subscribe(hook)
    return seen


def test_a_scanned_wristband_in_hl7_cx_form_associates_the_patient(panel: Panel) -> None:
    seen = _watch(panel)
    page = panel.ok("patient", scan="98765^^^HOSP^MR", family_name="Doe", given_name="John")
    assert "Patient 98765 associated (scan)" in page
    assert text_of(block(page, "p", "panel-patient")) == "Patient DOE, John · MR 98765 (HOSP)"
    [event] = seen
    assert (event["patient_id"], event["authority"], event["id_type"], event["source"]) == (
        "98765",
        "HOSP",
        "MR",
        "scan",
    )


def test_typed_entry_takes_the_authority_and_type_beside_it(panel: Panel) -> None:
    seen = _watch(panel)
    panel.ok("patient", patient_id="A-42", authority="NORTH", id_type="PI", family_name="Roe")
    assert panel.pump.patient is not None
    assert (panel.pump.patient.patient_id, panel.pump.patient.authority, panel.pump.patient.id_type) == (
        "A-42",
        "NORTH",
        "PI",
    )
    assert [e["source"] for e in seen] == ["entry"]


def test_a_simulated_pump_shows_its_synthetic_patient_as_synthetic(panel: Panel) -> None:
    page = panel.ok("care_area", care_area="icu")
    line = block(page, "p", "panel-patient")
    assert "SIM-00001 (SYNTHETIC)" in text_of(line) and "synthetic" in line


def test_malformed_entries_are_refused_and_kept(panel: Panel) -> None:
    patient = panel.pump.patient
    for fields in ({"patient_id": ""}, {"scan": "1^2^3^4^5^6"}, {"patient_id": "12|34"}):
        response = panel.press("patient", family_name="Doe", **fields)
        assert response.status_code == 409, fields
        assert "pump.patient_invalid" in response.text
        assert values(block(response.text, "form", "patient-form"))["family_name"] == "Doe"
    assert panel.pump.patient == patient


def test_another_patient_is_refused_while_a_channel_runs(panel: Panel) -> None:
    panel.ok("patient", patient_id="111", authority="HOSP")
    panel.run("icu", "icu-heparin", **HEPARIN)
    response = panel.press("patient", patient_id="222", authority="HOSP")
    assert response.status_code == 409 and "pump.patient_locked" in response.text
    assert panel.pump.patient_id == "111"
