"""The UI's editing forms: the drug-library entry editor and the maintenance forms (records, faults)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from smartpump.server.auth import Role
from tests.server.conftest import World, library_payload
from tests.server.test_web_pages import SCRIPT, browsers, csrf_of, login

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["browsers"]
ENTRY = "icu-dopamine"


def _draft(world: World, browsers: list[TestClient]) -> tuple[TestClient, int, dict[str, str]]:
    facility = world.facility("north")
    headers = world.as_role(Role.PHARMACIST, facility, username="phil")
    created = world.post_json("/api/v1/libraries", library_payload(facility), headers).json()
    return login(world.app, browsers, "phil"), created["id"], headers


def _facility_of(world: World, headers: dict[str, str], library_id: int) -> int:
    found: int = world.client.get(f"/api/v1/libraries/{library_id}", headers=headers).json()["facility_id"]
    return found


def _editor(client: TestClient, library_id: int) -> dict[str, str]:
    """The entry editor's current field values, as the browser would submit them unchanged."""
    page = client.get(f"/ui/libraries/{library_id}/entries/{ENTRY}")
    assert page.status_code == 200, page.text
    form = {
        "csrf": csrf_of(page.text),
        "entry_id": ENTRY,
        "care_area_id": "icu",
        "drug_id": "dopamine",
        "route": "IV",
        "mode": "continuous",
        "concentrations": "400 mg/250 mL",
        "dose.unit": "mcg/kg/min",
    }
    return form


def _entry(world: World, headers: dict[str, str], library_id: int) -> dict[str, Any]:
    document = world.client.get(f"/api/v1/libraries/{library_id}/document", headers=headers).json()
    found: dict[str, Any] = next(e for e in document["entries"] if e["id"] == ENTRY)
    return found


def test_entry_editor_saves_bolus_vtbi_and_pca_limits(world: World, browsers: list[TestClient]) -> None:
    client, library_id, headers = _draft(world, browsers)
    form = {
        **_editor(client, library_id),
        "dose.hard_max": "30",
        "bolus.unit": "mcg/kg",
        "bolus.soft_max": "5",
        "bolus.hard_max": "10",
        "vtbi_ml.hard_max": "500",
        "vtbi_ml.default": "250",
        "pca.demand_dose.unit": "mg",
        "pca.demand_dose.hard_max": "2",
        "pca.lockout_min.hard_min": "5",
        "pca.max_dose_window_h": "4",
        "therapy": "shock",
        "route": "IV",
    }
    saved = client.post(f"/ui/libraries/{library_id}/entries", data=form)
    assert saved.status_code == 303, saved.text
    entry = _entry(world, headers, library_id)
    assert entry["bolus"] == {"unit": "mcg/kg", "limits": {"soft_max": 5, "hard_max": 10}}
    assert entry["vtbi_ml"] == {"limits": {"hard_max": 500}, "default": 250}
    assert entry["pca"]["demand_dose"]["limits"] == {"hard_max": 2}
    assert entry["pca"]["max_dose_window_h"] == 4
    assert entry["therapy"] == "shock"
    view = client.get(saved.headers["location"]).text
    assert 'data-param="bolus"' in view and 'data-param="vtbi_ml"' in view


def test_entry_editor_shows_the_servers_refusal_next_to_the_field(
    world: World, browsers: list[TestClient]
) -> None:
    client, library_id, headers = _draft(world, browsers)
    before = _entry(world, headers, library_id)
    form = {
        **_editor(client, library_id),
        "bolus.unit": "mcg/kg",
        "bolus.soft_max": "40",
        "bolus.hard_max": "30",
    }
    refused = client.post(f"/ui/libraries/{library_id}/entries", data=form)
    assert refused.status_code == 422
    assert 'data-error-field="bolus.hard_max"' in refused.text
    assert "limits.order" in refused.text
    assert 'value="40"' in refused.text
    assert _entry(world, headers, library_id) == before


def test_entry_editor_saves_dose_rate_limits_of_an_intermittent_and_refuses_them_elsewhere(
    world: World, browsers: list[TestClient]
) -> None:
    client, library_id, headers = _draft(world, browsers)
    continuous = {**_editor(client, library_id), "dose_rate.unit": "mg/h", "dose_rate.hard_max": "50"}
    refused = client.post(f"/ui/libraries/{library_id}/entries", data=continuous)
    assert refused.status_code == 422
    assert "library.dose_rate_mode" in refused.text
    assert "dose_rate" not in _entry(world, headers, library_id)
    intermittent = {
        **_editor(client, library_id),
        "mode": "intermittent",
        "dose.unit": "mg",
        "dose.hard_max": "100",
        "duration_min.hard_min": "30",
        "dose_rate.unit": "mg/h",
        "dose_rate.soft_max": "40",
        "dose_rate.hard_max": "50",
    }
    saved = client.post(f"/ui/libraries/{library_id}/entries", data=intermittent)
    assert saved.status_code == 303, saved.text
    assert _entry(world, headers, library_id)["dose_rate"] == {
        "unit": "mg/h",
        "limits": {"soft_max": 40, "hard_max": 50},
    }
    assert 'data-param="dose_rate"' in client.get(saved.headers["location"]).text


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("bolus.unit", "furlongs/kg", "unit.unknown"),
        ("rate_ml_per_h.hard_max", "-3", "library.limit_invalid"),
        ("vtbi_ml.soft_max", "ten", "library.limit_invalid"),
        ("duration_min.default", "0", "library.limit_invalid"),
        ("pca.max_dose_window_h", "13", "library.pca_window"),
        ("concentrations", "lots of it", "library.concentration_invalid"),
        ("route", "nasal", "library.route_invalid"),
        ("custom_concentration.unit", "mg/kg", "unit.unknown"),
    ],
)
def test_each_malformed_field_is_refused_with_its_code(
    world: World, browsers: list[TestClient], field: str, value: str, code: str
) -> None:
    client, library_id, _ = _draft(world, browsers)
    refused = client.post(
        f"/ui/libraries/{library_id}/entries", data={**_editor(client, library_id), field: value}
    )
    assert refused.status_code == 422
    assert f'data-error-field="{field}"' in refused.text
    assert code in refused.text


def test_limits_without_a_unit_are_refused(world: World, browsers: list[TestClient]) -> None:
    client, library_id, _ = _draft(world, browsers)
    refused = client.post(
        f"/ui/libraries/{library_id}/entries", data={**_editor(client, library_id), "loading.hard_max": "5"}
    )
    assert refused.status_code == 422
    assert 'data-error-field="loading.unit"' in refused.text


def test_a_default_outside_the_hard_limits_is_refused(world: World, browsers: list[TestClient]) -> None:
    client, library_id, _ = _draft(world, browsers)
    form = {**_editor(client, library_id), "vtbi_ml.hard_max": "100", "vtbi_ml.default": "250"}
    refused = client.post(f"/ui/libraries/{library_id}/entries", data=form)
    assert refused.status_code == 422
    assert "library.default_outside" in refused.text


def test_concentrations_are_added_and_removed(world: World, browsers: list[TestClient]) -> None:
    client, library_id, headers = _draft(world, browsers)
    form = {**_editor(client, library_id), "concentrations": "800 mg/250 mL\n1600 mg/250 mL"}
    assert client.post(f"/ui/libraries/{library_id}/entries", data=form).status_code == 303
    amounts = [c["amount"] for c in _entry(world, headers, library_id)["concentrations"]]
    assert amounts == [800, 1600]


def test_entry_text_carrying_html_is_shown_inert(world: World, browsers: list[TestClient]) -> None:
    client, library_id, _ = _draft(world, browsers)
    form = {**_editor(client, library_id), "advisory": SCRIPT}
    saved = client.post(f"/ui/libraries/{library_id}/entries", data=form)
    assert saved.status_code == 303
    view = client.get(saved.headers["location"]).text
    assert SCRIPT not in view
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in view
    refused = client.post(
        f"/ui/libraries/{library_id}/entries", data={**form, "bolus.unit": SCRIPT, "bolus.hard_max": "1"}
    )
    assert refused.status_code == 422
    assert SCRIPT not in refused.text


def test_editing_an_approved_version_returns_it_to_draft(world: World, browsers: list[TestClient]) -> None:
    client, library_id, headers = _draft(world, browsers)
    assert world.client.post(f"/api/v1/libraries/{library_id}/submit", headers=headers).status_code == 200
    world.user((Role.PHARMACY_APPROVER, _facility_of(world, headers, library_id)), username="april")
    approver = world.login("april")
    approved = world.client.post(f"/api/v1/libraries/{library_id}/approve", headers=approver, json={})
    assert approved.status_code == 200, approved.text
    form = {**_editor(client, library_id), "vtbi_ml.hard_max": "400"}
    assert client.post(f"/ui/libraries/{library_id}/entries", data=form).status_code == 303
    page = client.get(f"/ui/libraries/{library_id}").text
    assert 'id="library-status">draft<' in page
    assert "(of earlier content, void)" in page


def test_a_reader_sees_the_entry_without_the_editor(world: World, browsers: list[TestClient]) -> None:
    _, library_id, headers = _draft(world, browsers)
    world.user((Role.NURSE, _facility_of(world, headers, library_id)), username="nina")
    page = login(world.app, browsers, "nina").get(f"/ui/libraries/{library_id}/entries/{ENTRY}")
    assert page.status_code == 200
    assert 'id="entry-limits"' in page.text
    assert 'id="entry-form"' not in page.text


def _biomed(world: World, browsers: list[TestClient]) -> tuple[TestClient, dict[str, str], int]:
    facility = world.facility("north")
    headers = world.as_role(Role.BIOMED, facility, username="bea")
    world.pump(headers, facility, "P-1")
    return login(world.app, browsers, "bea"), headers, facility


def test_recording_cleaning_takes_the_pump_off_the_due_list(world: World, browsers: list[TestClient]) -> None:
    _, headers, facility = _biomed(world, browsers)
    plan = {"facility_id": facility, "model": "LVP-1", "kind": "cleaning", "interval_days": 30}
    assert world.client.put("/api/v1/maintenance/schedules", headers=headers, json=plan).status_code == 200
    world.clock.advance(31 * 86400)
    client = login(world.app, browsers, "bea")
    page = client.get("/ui/maintenance").text
    assert "overdue" in page.split('id="due"')[1].split("</table>")[0]
    form = {"csrf": csrf_of(page), "serial": "P-1", "kind": "cleaning", "result": "pass", "notes": "wiped"}
    response = client.post("/ui/maintenance/records", data=form)
    assert response.status_code == 303
    after = client.get("/ui/maintenance").text
    assert "Nothing due." in after.split('id="due"')[1].split("</table>")[0]
    assert "wiped" in after.split('id="cleaning"')[1].split("</table>")[0]


def test_a_poor_battery_check_flags_the_pump(world: World, browsers: list[TestClient]) -> None:
    client, headers, _ = _biomed(world, browsers)
    token = csrf_of(client.get("/ui/maintenance").text)
    form = {"csrf": token, "serial": "P-1", "kind": "battery_check", "battery_health_percent": "55"}
    assert client.post("/ui/maintenance/records", data=form).status_code == 303
    pump = world.client.get("/api/v1/pumps/P-1", headers=headers).json()
    assert pump["battery_health_percent"] == 55
    assert pump["status"] == "needs_inspection"


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"kind": "battery_check"}, "maintenance.battery_health"),
        ({"kind": "battery_check", "battery_health_percent": "120"}, "maintenance.battery_health_invalid"),
        ({"kind": "cleaning", "battery_health_percent": "90"}, "maintenance.battery_health"),
        ({"kind": "software_update"}, "maintenance.kind_invalid"),
        ({"kind": "polishing"}, "maintenance.kind_invalid"),
        ({"kind": "cleaning", "result": "great"}, "maintenance.result_invalid"),
    ],
)
def test_malformed_work_records_are_refused_on_the_page(
    world: World, browsers: list[TestClient], form: dict[str, str], code: str
) -> None:
    client, headers, _ = _biomed(world, browsers)
    token = csrf_of(client.get("/ui/maintenance").text)
    refused = client.post("/ui/maintenance/records", data={"csrf": token, "serial": "P-1", **form})
    assert refused.status_code == 422
    assert 'id="record-error"' in refused.text and code in refused.text
    assert world.client.get("/api/v1/maintenance", headers=headers).json() == []


def test_a_fault_report_flags_the_pump_and_is_listed(world: World, browsers: list[TestClient]) -> None:
    client, headers, _ = _biomed(world, browsers)
    token = csrf_of(client.get("/ui/maintenance").text)
    form = {"csrf": token, "serial": "P-1", "category": "cracked_screen", "description": f"dropped {SCRIPT}"}
    assert client.post("/ui/maintenance/faults", data=form).status_code == 303
    page = client.get("/ui/maintenance").text
    faults = page.split('id="faults"')[1].split("</table>")[0]
    assert "cracked_screen" in faults and "&lt;script&gt;" in faults and SCRIPT not in page
    assert world.client.get("/api/v1/pumps/P-1", headers=headers).json()["status"] == "needs_inspection"


def test_a_fault_without_description_is_refused(world: World, browsers: list[TestClient]) -> None:
    client, _, _ = _biomed(world, browsers)
    token = csrf_of(client.get("/ui/maintenance").text)
    form = {"csrf": token, "serial": "P-1", "category": "other", "description": "  "}
    refused = client.post("/ui/maintenance/faults", data=form)
    assert refused.status_code == 422
    assert 'id="fault-error"' in refused.text and "maintenance.description_required" in refused.text


def test_a_nurse_reports_a_fault_from_the_pump_page_but_records_no_work(
    world: World, browsers: list[TestClient]
) -> None:
    _, _, facility = _biomed(world, browsers)
    world.user((Role.NURSE, facility), username="nina")
    nurse = login(world.app, browsers, "nina")
    page = nurse.get("/ui/pumps/P-1").text
    assert 'id="pump-fault-form"' in page
    form = {"csrf": csrf_of(page), "serial": "P-1", "category": "repeated_alarms", "description": "beeps"}
    response = nurse.post("/ui/maintenance/faults", data={**form, "back": "pump"})
    assert response.status_code == 303 and response.headers["location"] == "/ui/pumps/P-1"
    refused = nurse.post(
        "/ui/maintenance/records", data={"csrf": form["csrf"], "serial": "P-1", "kind": "cleaning"}
    )
    assert refused.status_code == 403
