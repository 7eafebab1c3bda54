"""Every PCD-03 order kind offered to a pump: the concentration of a multi-concentration entry, titrations,
boluses and loading doses from a running infusion, piggybacks, multistep and PCA programs, with the PIV
refusals the server can tell before the pump does."""

from __future__ import annotations

import json

from sqlalchemy import select

from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.message import Message, parse
from smartpump.server.db.models import ChannelState
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.services.ehr import OrderListener
from tests.server.conftest import World
from tests.server.ehr_support import SERIAL, add_pump, dopamine_order, ehr_site, err_code, full_library

NO_VTBI = ("|1234^Dopamine|250||263762^MDC_DIM_MILLI_L^MDC^mL^mL^UCUM |", "|1234^Dopamine||||")
DOSE_RATE = "||||||||10|3475^ug/kg/min^UCUM^265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|"


def _text(message: Message) -> str:
    return message.to_er7().replace("\n", "\r")


def titration(dose: str, *, order_id: str = "12345", control_id: str = "20") -> Message:
    """An ORC-1 XO rate change of the running dopamine order (no VTBI)."""
    text = _text(dopamine_order(control_id=control_id, order_id=order_id, dose=dose))
    return parse(text.replace("ORC|RE|", "ORC|XO|").replace(*NO_VTBI))


def bolus(parent: str = "12345", *, dose: str = "50", loading: bool = False, rate: str = "200") -> Message:
    """An ORC-1 CH bolus (or loading dose) from the running order ``parent``."""
    refid = "158018^MDC_DOSE_LOADING" if loading else "158019^MDC_DOSE_CLINICIAN"
    text = _text(dopamine_order(control_id="30", order_id="B-1"))
    text = text.replace("ORC|RE|B-1|", "ORC|CH|B-1||||||" + parent + "|", 1)
    text = text.replace(DOSE_RATE, f"||||||||{dose}|ug/kg^ug/kg^UCUM|")
    return parse(
        text.rstrip("\r")
        + f"\rOBX|3|NM|{refid}^MDC||||||||R"
        + f"\rOBX|4|NM|157784^MDC_FLOW_FLUID_PUMP^MDC||{rate}|mL/h^mL/h^UCUM|||||R"
    )


def piggyback() -> Message:
    """A secondary (RXR-4 IVPB) dopamine order."""
    text = _text(dopamine_order(control_id="40", order_id="P-1"))
    return parse(text.replace("RXR|IV||IVP|IV", "RXR|IV||IVP|IVPB"))


def multistep(step2_dose: str = "15", step2_vtbi: str = "100") -> Message:
    """A two-step dopamine ramp (RXG-1 = 1, 2)."""
    text = _text(dopamine_order(control_id="50", order_id="M-1")).rstrip("\r")
    rxg = next(line for line in text.split("\r") if line.startswith("RXG"))
    step2 = (
        rxg.replace("RXG|1|", "RXG|2|")
        .replace("||||||||10|3475", f"||||||||{step2_dose}|3475")
        .replace("|1234^Dopamine|250|", f"|1234^Dopamine|{step2_vtbi}|")
    )
    rxr = next(line for line in text.split("\r") if line.startswith("RXR"))
    return parse(text.replace(rxr, f"{rxr}\r{step2}\r{rxr}", 1))


def pca_order(*, serial: str = "PCA-EHR-1", lockout: bool = True, limit: bool = True) -> Message:
    """A morphine PCA order: demand 1 mg, lockout 10 min, 8 mg per 4 h, 30 mg/30 mL."""
    text = _text(dopamine_order(serial=serial, control_id="60", order_id="PCA-1", drug="4321^Morphine"))
    text = text.replace(
        DOSE_RATE + "400|1746^mg^UCUM^263890^MDC_DIM_MILLI_G^MDC|||||250|",
        "||||||||||30|mg^mg^UCUM|||||30|",
    ).replace("|4321^Morphine|250|", "|4321^Morphine|30|")
    text = text.rstrip("\r") + "\rOBX|3|NM|158017^MDC_DOSE_PCA_PATIENT^MDC||1|mg^mg^UCUM|||||R"
    if lockout:
        text += "\rOBX|4|NM|157989^MDC_TIME_PCA_LOCKOUT^MDC||10|min^min^UCUM|||||R"
    if limit:
        text += "\rOBX|5|NM|157985^MDC_DOSE_PCA_LIMIT^MDC||8|mg^mg^UCUM|||||R"
        text += "\rOBX|6|NM|157987^MDC_TIME_PD_PCA_DOSE_LIMIT^MDC||4|h^h^UCUM|||||R"
    return parse(text)


def _offers(world: World) -> list[dict[str, object]]:
    with world.state.sessions() as session:
        rows = session.scalars(select(PumpCommand).order_by(PumpCommand.id)).all()
        return [json.loads(r.signed)["command"]["args"] for r in rows]


def _accepted(reply: Message) -> bool:
    code = ack_code_of(reply)
    return code is not None and code.value == "CA"


def running(world: World, *, order_id: str = "12345", vtbi: str = "250", infused: str = "10") -> None:
    """Channel A runs the dopamine order ``order_id`` (as the pump reported and the link step recorded)."""
    with world.state.sessions() as session:
        pump = fleet_repo.pump_by_serial(session, SERIAL)
        assert pump is not None
        now = world.clock.now()
        session.add(
            ChannelState(
                pump_id=pump.id,
                channel="A",
                state="running",
                drug="DOPamine",
                rate_ml_per_h=None,
                volume_infused_ml=infused,
                vtbi_ml=vtbi,
                updated_at=now,
            )
        )
        session.add(
            EhrOrder(
                facility_id=pump.facility_id,
                pump_id=pump.id,
                pump_serial=SERIAL,
                channel="A",
                order_id=order_id,
                source="hl7",
                sender="test",
                control_id="0",
                patient_id="98765",
                status="started",
                received_at=now,
                start_event_id=1,
                started_at=now,
            )
        )
        session.commit()


def test_order_for_an_entry_with_two_concentrations_carries_the_ordered_one(world: World) -> None:
    ehr_site(world, library=full_library())
    reply = OrderListener(world.state).answer(
        parse(_text(dopamine_order()).replace("|400|1746^mg", "|800|1746^mg"))
    )
    assert _accepted(reply), reply.to_er7()
    [args] = _offers(world)
    assert (args["concentration_amount"], args["concentration_unit"], args["concentration_volume_ml"]) == (
        "800",
        "mg",
        "250",
    )
    assert args["kind"] == "new"


def test_titration_of_the_running_order_is_offered_as_a_titration(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    reply = OrderListener(world.state).answer(titration("15"))
    assert _accepted(reply), reply.to_er7()
    [args] = _offers(world)
    assert (args["kind"], args["dose"], args["order_id"]) == ("titration", "15", "12345")
    assert "vtbi_ml" not in args


def test_titration_is_rechecked_by_ders_9024(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    assert err_code(OrderListener(world.state).answer(titration("50"))) == "9024"
    assert _offers(world) == []


def test_titration_of_another_order_is_9035(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world, order_id="OTHER")
    assert err_code(OrderListener(world.state).answer(titration("15"))) == "9035"


def test_titration_of_an_idle_channel_is_9035(world: World) -> None:
    ehr_site(world, library=full_library())
    assert err_code(OrderListener(world.state).answer(titration("15"))) == "9035"


def test_titration_while_another_offer_awaits_confirmation_is_9002(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    listener = OrderListener(world.state)
    assert _accepted(listener.answer(titration("15")))
    assert err_code(listener.answer(titration("12", control_id="21"))) == "9002"


def test_bolus_from_the_running_order_is_offered_with_its_parent(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    reply = OrderListener(world.state).answer(bolus())
    assert _accepted(reply), reply.to_er7()
    [args] = _offers(world)
    assert (args["kind"], args["program_kind"], args["parent_order_id"]) == ("bolus", "bolus", "12345")
    assert (args["dose"], args["dose_unit"]) == ("50", "mcg/kg")
    assert args["duration_min"] == "0.796875"


def test_loading_dose_from_the_running_order_is_offered(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    assert _accepted(OrderListener(world.state).answer(bolus(loading=True)))
    assert [a["program_kind"] for a in _offers(world)] == ["loading"]


def test_bolus_above_the_entry_bolus_limit_is_9024(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    assert err_code(OrderListener(world.state).answer(bolus(dose="150"))) == "9024"


def test_bolus_for_an_entry_without_bolus_is_9039(world: World) -> None:
    ehr_site(world)
    running(world)
    assert err_code(OrderListener(world.state).answer(bolus())) == "9039"


def test_loading_dose_for_an_entry_without_one_is_9042(world: World) -> None:
    ehr_site(world)
    running(world)
    assert err_code(OrderListener(world.state).answer(bolus(loading=True))) == "9042"


def test_bolus_naming_another_parent_is_9035(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    assert err_code(OrderListener(world.state).answer(bolus(parent="OTHER"))) == "9035"


def test_bolus_larger_than_the_volume_left_is_9034(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world, vtbi="250", infused="248")
    assert err_code(OrderListener(world.state).answer(bolus())) == "9034"


def test_piggyback_on_a_running_primary_is_offered_as_a_secondary(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    reply = OrderListener(world.state).answer(piggyback())
    assert _accepted(reply), reply.to_er7()
    [args] = _offers(world)
    assert (args["kind"], args["vtbi_ml"]) == ("secondary", "250")


def test_piggyback_without_a_primary_is_9013(world: World) -> None:
    ehr_site(world, library=full_library())
    assert err_code(OrderListener(world.state).answer(piggyback())) == "9013"


def test_piggyback_on_a_paused_primary_is_9030(world: World) -> None:
    ehr_site(world, library=full_library())
    running(world)
    with world.state.sessions() as session:
        row = session.scalars(select(ChannelState)).one()
        row.state = "paused"
        session.commit()
    assert err_code(OrderListener(world.state).answer(piggyback())) == "9030"


def test_multistep_is_offered_with_each_step_rate_and_volume(world: World) -> None:
    ehr_site(world, library=full_library())
    reply = OrderListener(world.state).answer(multistep())
    assert _accepted(reply), reply.to_er7()
    [args] = _offers(world)
    # 10 and 15 mcg/kg/min x 85 kg at 1.6 mg/mL: 31.875 and 47.8125 mL/h, shown at 0.1 mL/h
    assert args["steps"] == [
        {"rate_ml_per_h": "31.9", "volume_ml": "250"},
        {"rate_ml_per_h": "47.8", "volume_ml": "100"},
    ]
    assert (args["kind"], args["rate_ml_per_h"]) == ("multistep", "31.9")


def test_multistep_with_a_step_over_the_hard_limit_is_9024(world: World) -> None:
    ehr_site(world, library=full_library())
    assert err_code(OrderListener(world.state).answer(multistep(step2_dose="50"))) == "9024"


def test_multistep_step_without_volume_is_9041(world: World) -> None:
    ehr_site(world, library=full_library())
    assert err_code(OrderListener(world.state).answer(multistep(step2_vtbi=""))) == "9041"


def _pca_site(world: World) -> None:
    site = ehr_site(world, library=full_library())
    add_pump(world, site.biomed, site.facility_id, "PCA-EHR-1", care_area="icu", online=True, model="pca-1")


def test_pca_order_is_offered_with_its_settings_to_a_pca_pump(world: World) -> None:
    _pca_site(world)
    reply = OrderListener(world.state).answer(pca_order())
    assert _accepted(reply), reply.to_er7()
    [args] = _offers(world)
    assert (args["kind"], args["program_kind"]) == ("pca", "pca")
    assert (args["pca_demand_dose"], args["pca_lockout_min"]) == ("1", "10")
    assert (args["pca_max_dose"], args["pca_max_dose_window_h"]) == ("8", "4")


def test_pca_order_without_lockout_is_9025(world: World) -> None:
    _pca_site(world)
    assert err_code(OrderListener(world.state).answer(pca_order(lockout=False))) == "9025"


def test_pca_order_without_dose_limit_is_9026(world: World) -> None:
    _pca_site(world)
    assert err_code(OrderListener(world.state).answer(pca_order(limit=False))) == "9026"


def test_pca_order_to_a_pump_that_is_not_a_pca_pump_is_9016(world: World) -> None:
    ehr_site(world, library=full_library())
    assert err_code(OrderListener(world.state).answer(pca_order(serial=SERIAL))) == "9016"
