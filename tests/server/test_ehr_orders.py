"""PCD-03 orders in the server: DERS-checked like a manual program, offered to the pump, refused with the
IHE PIV code, and de-duplicated by MSH-10 in the database (across a restart of the listener)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.message import Hl7ParseError, parse
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.services.ehr import OrderListener
from tests.server.conftest import World
from tests.server.ehr_support import SERIAL, add_pump, dopamine_order, ehr_site, err_code, example


def _commands(world: World) -> list[dict[str, object]]:
    with world.state.sessions() as session:
        rows = session.scalars(select(PumpCommand).order_by(PumpCommand.id)).all()
        return [json.loads(r.signed)["command"] for r in rows]


def _orders(world: World) -> list[EhrOrder]:
    with world.state.sessions() as session:
        return list(session.scalars(select(EhrOrder).order_by(EhrOrder.id)).all())


def test_accepted_order_is_offered_to_the_pump_with_the_checked_program(world: World) -> None:
    ehr_site(world)
    reply = OrderListener(world.state).answer(dopamine_order())
    assert ack_code_of(reply) is not None and ack_code_of(reply).value == "CA"  # type: ignore[union-attr]
    [command] = _commands(world)
    assert command["command"] == "program.offer"
    assert command["pump_id"] == SERIAL
    assert command["args"] == {
        "format": "smartpump.program-offer/1",
        "order_id": "12345",
        "patient_id": "98765",
        "channel": "A",
        "entry_id": "icu-dopamine",
        "kind": "new",
        "program_kind": "continuous",
        "route": "IV",
        "concentration_amount": "400",
        "concentration_unit": "mg",
        "concentration_volume_ml": "250",
        "dose": "10",
        "dose_unit": "mcg/kg/min",
        "vtbi_ml": "250",
        "weight_kg": "85.0",
    }
    [order] = _orders(world)
    assert (order.status, order.order_id, order.patient_id, order.source) == (
        "offered",
        "12345",
        "98765",
        "hl7",
    )


def test_duplicate_control_id_gets_the_original_reply_and_no_second_offer(world: World) -> None:
    ehr_site(world)
    first = OrderListener(world.state).answer(dopamine_order()).to_er7()
    again = OrderListener(world.state).answer(dopamine_order()).to_er7()
    assert again == first
    assert len(_commands(world)) == 1
    assert len(_orders(world)) == 1


def test_drug_missing_from_the_library_is_refused_9010(world: World) -> None:
    ehr_site(world)
    reply = OrderListener(world.state).answer(dopamine_order(drug="9999^Heparin"))
    assert reply.message_type[:2] == ("RRG", "O16")
    assert ack_code_of(reply).value == "AR"  # type: ignore[union-attr]
    assert err_code(reply) == "9010"
    assert _commands(world) == []
    assert [(o.status, o.piv_code) for o in _orders(world)] == [("rejected", 9010)]


def test_hard_limit_is_refused_9024(world: World) -> None:
    ehr_site(world)
    reply = OrderListener(world.state).answer(dopamine_order(dose="50"))
    assert err_code(reply) == "9024"
    assert "ders.dose.hard_max" in reply.to_er7()
    assert _commands(world) == []


def test_unknown_pump_is_refused_9001(world: World) -> None:
    ehr_site(world)
    reply = OrderListener(world.state).answer(dopamine_order(serial="NO-SUCH-PUMP"))
    assert err_code(reply) == "9001"


def test_unknown_channel_is_refused_9001(world: World) -> None:
    ehr_site(world)
    assert err_code(OrderListener(world.state).answer(dopamine_order(channel="Z"))) == "9001"


def test_offline_pump_is_refused_9007(world: World) -> None:
    ehr_site(world, online=False)
    assert err_code(OrderListener(world.state).answer(dopamine_order())) == "9007"


def test_pump_without_care_area_is_refused_9029(world: World) -> None:
    ehr_site(world, care_area=None)
    assert err_code(OrderListener(world.state).answer(dopamine_order())) == "9029"


def test_care_area_missing_from_the_library_is_refused_9021(world: World) -> None:
    ehr_site(world, care_area="nicu")
    assert err_code(OrderListener(world.state).answer(dopamine_order())) == "9021"


def test_stale_order_is_refused_9022(world: World) -> None:
    ehr_site(world)
    old = world.clock.now() - timedelta(hours=2)
    assert err_code(OrderListener(world.state).answer(dopamine_order(order_time=old))) == "9022"


def test_fresh_order_time_is_accepted(world: World) -> None:
    ehr_site(world)
    recent = world.clock.now() - timedelta(minutes=5)
    reply = OrderListener(world.state).answer(dopamine_order(order_time=recent))
    assert ack_code_of(reply).value == "CA"  # type: ignore[union-attr]


def test_second_order_on_a_channel_awaiting_confirmation_is_refused_9002(world: World) -> None:
    ehr_site(world)
    listener = OrderListener(world.state)
    listener.answer(dopamine_order())
    reply = listener.answer(dopamine_order(control_id="2", order_id="12346"))
    assert err_code(reply) == "9002"
    assert len(_commands(world)) == 1


def test_an_expired_offer_frees_the_channel(world: World) -> None:
    ehr_site(world)
    listener = OrderListener(world.state)
    listener.answer(dopamine_order())
    world.clock.advance(11 * 60)
    with world.state.sessions() as session:
        from smartpump.server.db.repositories import fleet as fleet_repo

        pump = fleet_repo.pump_by_serial(session, SERIAL)
        assert pump is not None
        pump.last_seen = world.clock.now()
        session.commit()
    reply = listener.answer(dopamine_order(control_id="2", order_id="12346"))
    assert ack_code_of(reply).value == "CA"  # type: ignore[union-attr]


def test_pump_of_another_facility_named_by_msh6_is_unknown(world: World) -> None:
    site = ehr_site(world)
    other = world.facility("south")
    add_pump(world, site.biomed, site.facility_id, "LVP-NORTH-2", care_area="icu", online=True)
    text = dopamine_order(serial="LVP-NORTH-2").to_er7().replace("|IOCVENDOR|2008", "|south|2008")
    assert other > 0
    assert err_code(OrderListener(world.state).answer(parse(text))) == "9001"


def test_a_message_other_than_an_order_is_refused_and_not_stored(world: World) -> None:
    ehr_site(world)
    with pytest.raises(Hl7ParseError) as raised:
        OrderListener(world.state).answer(parse(example("pcd10_oru_r42_ipec_delivery_start.hl7")))
    assert raised.value.code == "hl7.unsupported_type"
    assert _orders(world) == []
