"""The CQI page in real headless Chromium (1366x768): a soft-max suggestion on an entry that has no hard
max (the demo library's Med/Surg naloxone, 2 mg/h soft max, no hard max) carries its warning."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from smartpump.server.auth import Access, Principal, Role
from smartpump.server.services import fleet
from smartpump.server.services.events import IncomingEvent, store_events
from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e

SERIAL = "CQI-E2E-1"
ENTRY = "ADULT_MEDSURG.naloxone"
OVERRIDDEN_MG_PER_H = ("2.5", "3", "3.5")


def _checked(dose: str, version: int) -> dict[str, Any]:
    factor = str(round(float(dose) / 2, 4))
    alert = {
        "rule": "ders.dose.soft_max",
        "parameter": "dose",
        "limit_kind": "soft_max",
        "limit": "2",
        "value": dose,
        "unit": "mg/h",
        "factor": factor,
        "level": "soft",
    }
    return {
        "entry_id": ENTRY,
        "drug": "naloxone",
        "care_area": "ADULT_MEDSURG",
        "kind": "continuous",
        "dose": dose,
        "dose_unit": "mg/h",
        "rate_ml_per_h": str(float(dose) * 25),
        "weight_kg": None,
        "verdict": "soft",
        "alerts": [alert],
        "library_version": version,
        "is_basic": False,
        "auto_programmed": False,
        "is_titration": False,
    }


def _event(seq: int, at: datetime, type_: str, data: dict[str, Any]) -> IncomingEvent:
    return IncomingEvent(pump=SERIAL, seq=seq, ts=at, type=type_, channel="A", data=data)


def _store_overrides(live_server: LiveServer) -> None:
    """Three overridden naloxone soft-max alerts an hour ago, on a pump of the facility's registry."""
    state = live_server.state
    principal = Principal(user_id=0, username="e2e", global_roles=frozenset({Role.BIOMED}))
    with state.sessions() as session:
        fleet.register_pump(
            session,
            state.clock,
            Access(principal=principal, roles=frozenset({Role.BIOMED})),
            facility_id=live_server.facility_id,
            serial=SERIAL,
            model="lvp-4",
            firmware="1.0.0",
            care_area="ADULT_MEDSURG",
            location="Bed 99",
        )
        session.commit()
        start = state.clock.now() - timedelta(hours=1)
        events = [
            IncomingEvent(
                pump=SERIAL,
                seq=1,
                ts=start,
                type="care_area.selected",
                channel=None,
                data={"care_area": "ADULT_MEDSURG", "library_version": 1},
            )
        ]
        for index, dose in enumerate(OVERRIDDEN_MG_PER_H):
            at = start + timedelta(minutes=10 * (index + 1))
            seq = 2 + 3 * index
            events += [
                _event(seq, at, "program.checked", _checked(dose, 1)),
                _event(seq + 1, at + timedelta(seconds=5), "alert.overridden", {"entry_id": ENTRY}),
                _event(seq + 2, at + timedelta(seconds=9), "infusion.started", {"entry_id": ENTRY}),
            ]
        store_events(session, state.clock, events)
        session.commit()


def test_cqi_page_warns_on_a_suggestion_for_an_entry_without_hard_max(
    new_page: Any, live_server: LiveServer
) -> None:
    _store_overrides(live_server)
    page = new_page({"width": 1366, "height": 768})
    login(page, "phil")
    page.goto("/ui/cqi?days=1&min_overrides=3")
    section = page.locator("section.suggestions")
    # v1 or v2: the seed's release is v2 when the pumps reported their factory v1 first
    expect(section.locator("h2")).to_contain_text(re.compile(r"released v\d+"))
    row = section.locator(f'tr:has(td:text-is("{ENTRY}"))')
    expect(row).to_contain_text("none")
    warning = section.locator("p.warn[role=alert]")
    expect(warning).to_contain_text(f"Warning, {ENTRY}: entry has no dose hard max")
    expect(warning).to_contain_text("raising the soft max to 3.5 mg/h leaves no hard stop above it")
    expect(warning).to_be_visible()
    shot(page, "cqi-suggestion-no-hard-max")
    nurse = new_page({"width": 1366, "height": 768})
    login(nurse, "nina")
    nurse.goto("/ui/cqi?days=1&min_overrides=3")
    expect(nurse.locator("h1")).to_contain_text("CQI overview")
    expect(nurse.locator("section.suggestions")).to_have_count(0)
