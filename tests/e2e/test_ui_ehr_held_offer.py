"""Held EHR offers on the front panel in real headless Chromium: a loading dose and a bolus ordered over HL7
for a running EHR infusion are held on the channel; the panel shows each with its order id, patient,
prescriber and dose, the nurse declines one with a coded reason (the order ends declined, PIV 9023) and
accepts the other (the bolus runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from smartpump.demo.fleet import SimFleet
from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.message import Message, parse
from smartpump.pump.capabilities import PumpModel
from smartpump.server.db.models import Event
from smartpump.server.db.models_fleet_ops import PumpLink
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.services.ehr import OrderListener
from tests.e2e.conftest import SERVER_START_S, LiveServer, login, serve, shot
from tests.factories import make_care_area
from tests.server.ehr_support import dopamine_order, full_library
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
LAPTOP = {"width": 1366, "height": 768}
PRESCRIBER = "P-77^Smith^Ann^^^Dr"
SHOWN_PRESCRIBER = "Dr Ann Smith (P-77)"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Two pumps on a library whose dopamine has bolus and loading limits (the demo library has none)."""
    base = full_library("demo-hospital")
    pca_area = make_care_area(id="pca", name="PCA ward")
    entries = tuple(replace(e, care_area_id="pca") if e.drug_id == "morphine" else e for e in base.entries)
    yield from serve(
        tmp_path_factory, replace(base, care_areas=(*base.care_areas, pca_area), entries=entries)
    )


def _with_field(message: Message, segment: str, index: int, value: str) -> str:
    lines = message.to_er7().split("\r")
    for number, line in enumerate(lines):
        if line.startswith(segment + "|"):
            fields = line.split("|")
            fields[index] = value
            lines[number] = "|".join(fields)
    return "\r".join(lines)


def _dose_order(
    serial: str, patient: str, channel: str, order_id: str, parent: str, *, loading: bool
) -> Message:
    """A bolus (MDC_DOSE_CLINICIAN) or loading dose (MDC_DOSE_LOADING) of 20 mcg/kg from the running order."""
    base = dopamine_order(
        serial=serial,
        patient=patient,
        channel=channel,
        order_id=order_id,
        control_id=order_id,
        prescriber=PRESCRIBER,
    )
    text = _with_field(base, "ORC", 1, "CH")
    text = _with_field(parse(text), "ORC", 8, parent)
    text = text.replace(
        "||||||||10|3475^ug/kg/min^UCUM^265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|",
        "||||||||20|ug/kg^ug/kg^UCUM|",
    )
    refid = "158018^MDC_DOSE_LOADING" if loading else "158019^MDC_DOSE_CLINICIAN"
    text += (
        f"\rOBX|3|NM|{refid}^MDC||||||||R\rOBX|4|NM|157784^MDC_FLOW_FLUID_PUMP^MDC||200|mL/h^mL/h^UCUM|||||R"
    )
    return parse(text)


def _accepted(live_server: LiveServer, order: Message) -> None:
    reply = OrderListener(live_server.state).answer(order)
    code = ack_code_of(reply)
    assert code is not None and code.value == "CA", reply.to_er7()


def _running_ehr_infusion(live_server: LiveServer, fleet: SimFleet) -> tuple[str, str, str]:
    """An LVP's patient and an EHR dopamine infusion started on one of its idle channels."""
    with fleet.lock:
        serial = next(s for s in live_server.serials if fleet.pump(s).caps.model is PumpModel.LVP)
    with fleet.lock:
        pump = fleet.pump(serial)
        patient = pump.patient_id
        channel = next(cid for cid, c in sorted(pump.channels.items()) if c.state.value == "idle")
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
        link.online = True  # the fixture's pumps said hello before they were registered
        session.commit()
    _accepted(
        live_server,
        dopamine_order(serial=serial, patient=patient, channel=channel, order_id="UI-N1", control_id="UI-N1"),
    )

    def offered() -> bool:
        with fleet.lock:
            pending = fleet.pump(serial).channel(channel).pending
            return pending is not None and pending.auto_programmed

    wait_until(offered, "the parent order to reach the pump", timeout_s=SERVER_START_S)
    fleet.act(serial, lambda p: p.confirm(channel))
    fleet.act(serial, lambda p: p.start(channel))

    def started_for_the_server() -> bool:
        # The order's own start event, not the channel state: a heartbeat may report the channel running
        # while the event that starts the order is still in the pump's outbox; orders link by their events.
        with live_server.state.sessions() as session:
            row = fleet_repo.pump_by_serial(session, serial)
            assert row is not None
            data = session.scalars(
                select(Event.data).where(
                    Event.pump_id == row.id, Event.channel == channel, Event.type == "infusion.started"
                )
            ).all()
            return any(json.loads(d).get("auto_programmed") is True for d in data)

    wait_until(
        started_for_the_server, "the server to store the parent infusion's start", timeout_s=SERVER_START_S
    )
    return serial, patient, channel


def test_a_held_loading_dose_is_declined_and_a_held_bolus_accepted_on_the_panel(
    new_page: Any, live_server: LiveServer
) -> None:
    fleet = live_server.fleet
    serial, patient, channel = _running_ehr_infusion(live_server, fleet)
    _accepted(live_server, _dose_order(serial, patient, channel, "UI-L1", "UI-N1", loading=True))
    wait_until(
        lambda: fleet.held_offer(serial, channel) is not None,
        "the loading dose to be held",
        timeout_s=SERVER_START_S,
    )

    page = new_page(LAPTOP)
    login(page, "nina")
    page.goto(f"/ui/panel/{serial}?channel={channel}")
    held = page.locator("#held-offer")
    expect(held).to_contain_text("EHR offer waiting: Loading dose")
    expect(held.locator("[data-order-id]")).to_have_text("UI-L1")
    expect(held.locator("[data-prescriber]")).to_have_text(SHOWN_PRESCRIBER)
    # 20 mcg/kg at the ordered 200 mL/h: 0.31875 min, shown to 3 significant digits
    expect(held.locator("[data-dose]")).to_have_text("20 mcg/kg · over 0.319 min")
    expect(held).to_contain_text(patient)
    box = held.locator("button[data-action=decline_offer]").bounding_box()
    assert box is not None and box["y"] + box["height"] <= LAPTOP["height"], (
        f"Decline is below the fold: {box}"
    )
    shot(page, "panel-ehr-held-loading-dose", full_page=False)
    held.locator("select[name=decline_reason]").select_option("not_due")
    held.locator("button[data-action=decline_offer]").click()
    expect(page.locator("#panel-message")).to_contain_text("EHR offer declined")
    expect(page.locator("#held-offer")).to_have_count(0)
    assert fleet.held_offer(serial, channel) is None

    def declined_event_stored() -> bool:
        with live_server.state.sessions() as session:
            row = fleet_repo.pump_by_serial(session, serial)
            assert row is not None
            data = session.scalars(
                select(Event.data).where(
                    Event.pump_id == row.id, Event.channel == channel, Event.type == "program.cancelled"
                )
            ).all()
            return any(json.loads(d).get("reason") == "not_due" for d in data)

    wait_until(declined_event_stored, "the decline to reach the server", timeout_s=SERVER_START_S)
    page.goto(f"/ui/pumps/{serial}")
    row = page.locator("#ehr-orders tr.order-declined")
    expect(row).to_contain_text("UI-L1")
    expect(row).to_contain_text("9023")
    expect(row).to_contain_text("not due")

    _accepted(live_server, _dose_order(serial, patient, channel, "UI-B1", "UI-N1", loading=False))
    wait_until(
        lambda: fleet.held_offer(serial, channel) is not None,
        "the bolus to be held",
        timeout_s=SERVER_START_S,
    )
    page.goto(f"/ui/panel/{serial}?channel={channel}")
    held = page.locator("#held-offer")
    expect(held).to_contain_text("EHR offer waiting: Bolus")
    expect(held.locator("[data-order-id]")).to_have_text("UI-B1")
    held.locator("button[data-action=accept_offer]").click()
    expect(page.locator("#panel-message")).to_contain_text("EHR offer accepted and running")
    expect(page.locator("#overlay")).to_contain_text("Bolus running")
    expect(page.locator("#held-offer")).to_have_count(0)
