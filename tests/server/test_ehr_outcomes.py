"""Issue 16, closed loop: every accepted order ends in a state the EHR is told about (declined by the nurse,
refused by the pump, expired; started through PCD-10), its channel is free the moment the offer ends, and
the outcome is stored per order and shown by the API."""

from __future__ import annotations

import asyncio

import hl7
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.message import Message, parse
from smartpump.interop.hl7v2.validation import structure_problems
from smartpump.server.auth import Role
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.ehr_worker import EhrSettings
from smartpump.server.services import commands
from smartpump.server.services.ehr import OrderListener
from smartpump.server.workers import IngestWorker
from smartpump.transport.messages import Envelope
from tests.server.conftest import World
from tests.server.ehr_support import SERIAL, documentation_pass, dopamine_order, ehr_site, err_code
from tests.server.test_ehr_documentation import Events

DESTINATION = "ehr.test:2575"


def _order(world: World, order_id: str) -> EhrOrder:
    with world.state.sessions() as session:
        order: EhrOrder = session.scalars(select(EhrOrder).where(EhrOrder.order_id == order_id)).one()
        return order


def _document(world: World) -> list[Message]:
    """Run one documentation pass; every queued message, parsed, in queue order."""
    return [parse(payload) for payload in documentation_pass(world, DESTINATION)]


def _outcomes(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.message_type[:2] == ("RRG", "O16")]


def _accepted(world: World, *, control_id: str = "1", order_id: str = "12345") -> None:
    reply = OrderListener(world.state).answer(dopamine_order(control_id=control_id, order_id=order_id))
    assert ack_code_of(reply).value == "CA", reply.to_er7()  # type: ignore[union-attr]


def _refuse_offer(world: World, code: str, reason: str) -> None:
    """The pump's answer to the offer command: refused with its code (what the uplink reports)."""
    with unit_of_work(world.state.sessions) as session:
        command = session.scalars(select(PumpCommand).order_by(PumpCommand.id.desc())).first()
        pump = fleet_repo.pump_by_serial(session, SERIAL)
        assert command is not None and pump is not None
        commands.record_result(
            session, world.state, pump_id=pump.id, nonce=command.nonce, ok=False, code=code, reason=reason
        )


def _check_outcome(message: Message, *, control_id: str, order_id: str, piv: str, code: str) -> None:
    """The RRG^O16 AR an EHR receives: MSA-2 = the order's MSH-10, ERR-5 = the PIV code, ORC = the order."""
    assert structure_problems(message) == ()
    assert ack_code_of(message).value == "AR"  # type: ignore[union-attr]
    msa = message.first("MSA")
    orc = message.first("ORC")
    assert msa is not None and orc is not None
    assert msa.value(2) == control_id
    assert err_code(message) == piv
    assert (orc.value(1), orc.value(2), orc.value(5), orc.value(16, 1)) == ("OC", order_id, "CA", code)
    pid = message.first("PID")
    assert pid is not None
    # the order's PID-3 is 98765^^^IHE^PI: its identifier type and assigning authority come back as sent
    assert (pid.value(3, 1), pid.value(3, 4), pid.value(3, 5)) == ("98765", "IHE", "PI")
    assert (pid.value(5, 1), pid.value(5, 2)) == ("Doe", "John")
    independent = hl7.parse(message.to_er7())
    assert str(independent.segment("MSA")[2]) == control_id


def test_a_declined_order_frees_its_channel_at_once_and_the_ehr_is_told_9023(world: World) -> None:
    ehr_site(world)
    _accepted(world)
    Events(world).add(
        "program.cancelled",
        verdict="ok",
        entry_id="icu-dopamine",
        alerts=[],
        auto_programmed=True,
        reason="wrong_patient",
    )
    _accepted(world, control_id="2", order_id="12346")
    declined = _order(world, "12345")
    assert (declined.status, declined.piv_code, declined.outcome_code) == ("declined", 9023, "wrong_patient")
    assert "wrong patient" in declined.reason
    assert _order(world, "12346").status == "offered"

    [outcome] = _outcomes(_document(world))
    _check_outcome(outcome, control_id="1", order_id="12345", piv="9023", code="wrong_patient")
    assert len(_outcomes(_document(world))) == 1
    assert _order(world, "12345").outcome_reported_at is not None


def test_a_manual_cancel_is_no_decline_and_the_offer_still_holds_the_channel(world: World) -> None:
    ehr_site(world)
    _accepted(world)
    Events(world).add(
        "program.cancelled",
        verdict="ok",
        entry_id="icu-dopamine",
        alerts=[],
        auto_programmed=False,
        reason="",
    )
    reply = OrderListener(world.state).answer(dopamine_order(control_id="2", order_id="12346"))
    assert err_code(reply) == "9002"
    assert _order(world, "12345").status == "offered"


def test_a_pump_refusal_ends_the_order_with_its_piv_code_and_frees_the_channel(world: World) -> None:
    ehr_site(world)
    _accepted(world)
    _refuse_offer(world, "command.patient_mismatch", "the order is for another patient than this pump's")
    _accepted(world, control_id="2", order_id="12346")
    refused = _order(world, "12345")
    assert (refused.status, refused.piv_code, refused.outcome_code) == (
        "refused",
        9012,
        "command.patient_mismatch",
    )
    assert "another patient" in refused.reason and SERIAL in refused.reason

    [outcome] = _outcomes(_document(world))
    _check_outcome(outcome, control_id="1", order_id="12345", piv="9012", code="command.patient_mismatch")


def test_a_refusal_without_a_piv_code_of_its_own_is_9016(world: World) -> None:
    ehr_site(world)
    _accepted(world)
    _refuse_offer(world, "program.no_library", "no library installed")
    [outcome] = _outcomes(_document(world))
    _check_outcome(outcome, control_id="1", order_id="12345", piv="9016", code="program.no_library")


def test_an_offer_nobody_acts_on_expires_once_and_the_ehr_is_told_9015(world: World) -> None:
    ehr_site(world)
    _accepted(world)
    world.clock.advance(9 * 60)
    assert _outcomes(_document(world)) == []
    assert _order(world, "12345").status == "offered"
    world.clock.advance(60)
    [outcome] = _outcomes(_document(world))
    expired = _order(world, "12345")
    assert (expired.status, expired.piv_code, expired.outcome_code) == ("expired", 9015, "offer.expired")
    assert expired.outcome_at == expired.expires_at
    _check_outcome(outcome, control_id="1", order_id="12345", piv="9015", code="offer.expired")
    assert len(_outcomes(_document(world))) == 1


def test_a_started_order_is_told_by_its_pcd10_start_and_gets_no_refusal(world: World) -> None:
    ehr_site(world)
    _accepted(world)
    Events(world).add(
        "infusion.started",
        entry_id="icu-dopamine",
        drug="DOPamine",
        care_area="icu",
        rate_ml_per_h="31.9",
        vtbi_ml="250",
        dose="10",
        dose_unit="mcg/kg/min",
        library_version=1,
        auto_programmed=True,
    )
    world.clock.advance(11 * 60)
    messages = _document(world)
    assert _outcomes(messages) == []
    [start] = [m for m in messages if m.message_type[:2] == ("ORU", "R42")]
    assert start.first("OBR").value(2, 1) == "12345"  # type: ignore[union-attr]
    assert _order(world, "12345").status == "started"


def test_a_refusal_recorded_while_the_offer_is_being_sent_is_never_overwritten_as_sent(world: World) -> None:
    # the pump's answer can be stored by ingest before the sender marks its command sent (a fast
    # refusal): "sent" must not overwrite it, or the order would stay offered (seen as a flaky test)
    ehr_site(world)
    for service in world.state.background:  # this test is the sender: the worker must not send first
        if isinstance(service, IngestWorker):
            asyncio.run(service.stop())
    _accepted(world)

    def send_and_refuse_at_once(envelope: Envelope) -> bool:
        _refuse_offer(world, "command.patient_mismatch", "the order is for another patient")
        return True

    with unit_of_work(world.state.sessions) as session:
        assert commands.dispatch_next(session, world.state, send_and_refuse_at_once)
    with world.state.sessions() as session:
        [command] = session.scalars(select(PumpCommand)).all()
        assert (command.status, command.result_code) == ("refused", "command.patient_mismatch")
    _document(world)
    assert _order(world, "12345").status == "refused"


def test_the_api_and_the_pump_page_show_each_order_with_its_outcome(world: World) -> None:
    site = ehr_site(world)
    _accepted(world)
    _refuse_offer(world, "command.patient_mismatch", "the order is for another patient than this pump's")
    _document(world)
    body = world.client.get(f"/api/v1/pumps/{SERIAL}/orders", headers=site.nurse).json()
    [order] = body
    assert (order["order_id"], order["status"], order["piv_code"], order["outcome_code"]) == (
        "12345",
        "refused",
        9012,
        "command.patient_mismatch",
    )
    assert order["outcome_reported_at"] is not None
    page = world.client.get(f"/ui/pumps/{SERIAL}", headers=site.nurse)
    assert page.status_code == 200, page.text
    assert 'class="order order-refused"' in page.text and "(command.patient_mismatch)" in page.text
    viewer = world.as_role(Role.VIEWER, site.facility_id, username="ehr-viewer")
    assert world.client.get(f"/api/v1/pumps/{SERIAL}/orders", headers=viewer).status_code == 403
    assert world.client.get("/api/v1/pumps/NOPE/orders", headers=site.nurse).status_code == 404


def test_the_prescriber_travels_from_orc_12_to_the_offer_the_api_and_the_pump_page(world: World) -> None:
    site = ehr_site(world)
    order = dopamine_order(prescriber="P-77^Smith^Ann^^^Dr")
    reply = OrderListener(world.state).answer(order)
    assert ack_code_of(reply).value == "CA", reply.to_er7()  # type: ignore[union-attr]
    with world.state.sessions() as session:
        command = session.scalars(select(PumpCommand)).one()
        assert "Dr Ann Smith (P-77)" in command.signed
    [shown] = world.client.get(f"/api/v1/pumps/{SERIAL}/orders", headers=site.nurse).json()
    assert (shown["prescriber_id"], shown["prescriber_name"]) == ("P-77", "Dr Ann Smith")
    page = world.client.get(f"/ui/pumps/{SERIAL}", headers=site.nurse).text
    assert '<td class="prescriber">Dr Ann Smith <span class="muted">(P-77)</span></td>' in page


def test_a_dose_change_is_documented_in_the_unit_of_its_own_event(world: World) -> None:
    ehr_site(world)
    _accepted(world)
    events = Events(world)
    events.add("program.checked", kind="continuous", concentration="400 mg/250 mL", weight_kg="85.0")
    events.add(
        "infusion.started",
        entry_id="icu-dopamine",
        drug="DOPamine",
        care_area="icu",
        rate_ml_per_h="31.9",
        vtbi_ml="250",
        dose="10",
        dose_unit="mcg/kg/min",
        library_version=1,
        auto_programmed=True,
    )
    events.add(
        "rate.changed",
        old_rate_ml_per_h="31.9",
        new_rate_ml_per_h="0.5",
        dose="600",
        dose_unit="mcg/kg/h",
        cause="titration",
    )
    reports = [m for m in _document(world) if m.message_type[:2] == ("ORU", "R42")]
    doses = [
        (obx.value(5), obx.value(6, 2))
        for m in reports
        for obx in m.all("OBX")
        if obx.value(3, 2) == "MDC_RATE_DOSE"
    ]
    assert doses == [
        ("10", "MDC_DIM_MICRO_G_PER_KG_PER_MIN"),
        ("10", "MDC_DIM_MICRO_G_PER_KG_PER_MIN"),
        ("600", "MDC_DIM_MICRO_G_PER_KG_PER_HR"),
    ]


def test_the_offer_lifetime_is_a_bounded_setting() -> None:
    assert EhrSettings(ehr_offer_expires_s=30).config().offer_expires_in_s == 30
    assert EhrSettings().config().offer_expires_in_s == 600
    with pytest.raises(ValidationError):
        EhrSettings(ehr_offer_expires_s=5)
