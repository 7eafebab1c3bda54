"""An EHR order declined at the front panel in real headless Chromium on a 1366x768 laptop: the panel shows
the auto-programmed program as an EHR order with a required decline reason, and the pump page then shows
the order declined with PIV 9023 and the nurse's reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.server.db.models import Event
from smartpump.server.db.models_fleet_ops import PumpLink
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.services.ehr import OrderListener
from tests.e2e.conftest import SERVER_START_S, LiveServer, login, shot
from tests.server.ehr_support import dopamine_order
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
LAPTOP = {"width": 1366, "height": 768}


def _declined_event_stored(live_server: LiveServer, serial: str, channel: str) -> bool:
    with live_server.state.sessions() as session:
        pump = fleet_repo.pump_by_serial(session, serial)
        assert pump is not None
        rows = session.scalars(
            select(Event.data).where(
                Event.pump_id == pump.id, Event.channel == channel, Event.type == "program.cancelled"
            )
        ).all()
        return any(json.loads(data).get("reason") == "patient_condition" for data in rows)


def test_a_nurse_declines_an_ehr_order_on_the_panel_and_the_pump_page_shows_why(
    new_page: Any, live_server: LiveServer
) -> None:
    fleet = live_server.fleet
    serial = live_server.serials[0]
    with fleet.lock:
        pump = fleet.pump(serial)
        patient = pump.patient_id
        channel = next(
            cid for cid, c in sorted(pump.channels.items(), reverse=True) if c.state.value == "idle"
        )
    assert patient is not None

    def heard_from() -> bool:
        with live_server.state.sessions() as session:
            row = fleet_repo.pump_by_serial(session, serial)
            return row is not None and row.last_seen is not None and session.get(PumpLink, row.id) is not None

    wait_until(heard_from, "the pump to be heard from", timeout_s=SERVER_START_S)
    with live_server.state.sessions() as session:
        row = fleet_repo.pump_by_serial(session, serial)
        assert row is not None
        link = session.get(PumpLink, row.id)
        assert link is not None
        # the fixture's pumps said hello before they were registered, so the server never saw them online
        link.online = True
        session.commit()
    order = dopamine_order(
        serial=serial, patient=patient, channel=channel, order_id="UI-16", drug="^Dopamine"
    )
    reply = OrderListener(live_server.state).answer(order)
    assert ack_code_of(reply) is not None and ack_code_of(reply).value == "CA", reply.to_er7()  # type: ignore[union-attr]

    def offered() -> bool:
        with fleet.lock:
            pending = fleet.pump(serial).channel(channel).pending
            return pending is not None and pending.auto_programmed

    wait_until(offered, "the offer to reach the pump", timeout_s=SERVER_START_S)

    page = new_page(LAPTOP)
    login(page, "nina")
    page.goto(f"/ui/panel/{serial}?channel={channel}")
    decline = page.locator("#decline")
    expect(decline).to_be_visible()
    expect(decline).to_contain_text("EHR order")
    expect(page.locator("#ehr-order [data-order-id]")).to_have_text("UI-16")
    expect(page.locator("#ehr-order")).to_contain_text(f"MR {patient}")
    expect(page.locator("button[data-action=cancel]")).to_have_count(0)
    box = decline.locator("button[data-action=decline]").bounding_box()
    assert box is not None and box["y"] + box["height"] <= LAPTOP["height"], (
        f"Decline is below the fold: {box}"
    )
    shot(page, "panel-ehr-order-offered", full_page=False)
    decline.locator("select[name=decline_reason]").select_option("patient_condition")
    decline.locator("button[data-action=decline]").click()
    expect(page.locator("#panel-message")).to_contain_text("EHR order declined")
    expect(page.locator("#channel-state")).to_have_text("idle")

    wait_until(
        lambda: _declined_event_stored(live_server, serial, channel),
        "the decline to reach the server",
        timeout_s=SERVER_START_S,
    )
    page.goto(f"/ui/pumps/{serial}")
    row = page.locator("#ehr-orders tr.order-declined")
    expect(row).to_contain_text("UI-16")
    expect(row).to_contain_text("9023")
    expect(row).to_contain_text("patient condition")
    shot(page, "pump-ehr-order-declined")
