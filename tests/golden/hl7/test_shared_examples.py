"""Every IHE/Dräger example in ../shared/data/hl7 parses, round-trips and yields its README values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.interop.hl7v2.message import parse
from smartpump.interop.hl7v2.pcd03 import parse_order
from smartpump.units import DoseUnit
from tests.unit.interop.helpers import HL7_DIR, example

ALL_EXAMPLES = sorted(p.name for p in HL7_DIR.glob("*.hl7"))


def test_the_shared_examples_are_present() -> None:
    assert len(ALL_EXAMPLES) == 19, f"expected the 19 README examples in {HL7_DIR}"


@pytest.mark.parametrize("name", ALL_EXAMPLES)
def test_example_parses_and_round_trips(name: str) -> None:
    text = example(name)
    message = parse(text)
    assert message.msh.id == "MSH"
    assert str(message) == text


@pytest.mark.parametrize(
    "name", ["pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7", "pcd03_rgv_o15_ex1_dopamine_dose_rate_cp159.hl7"]
)
def test_dopamine_order_fields(name: str) -> None:
    message = parse(example(name))
    order = parse_order(message)
    assert message.profile_ids == ("IHE_PCD_PIV_001",)
    assert (message.accept_ack_type, message.application_ack_type, message.version) == ("AL", "ER", "2.5")
    assert (order.patient_id, order.patient_id_authority) == ("98765", "IHE")
    assert (order.order_control, order.order_id, order.clinician) == ("RE", "12345", "N0001")
    assert (order.drug_code, order.drug_text) == ("1234", "Dopamine")
    step = order.first
    assert step.vtbi_ml == Decimal(250)
    assert step.give_amount == Decimal(10)
    assert step.give_unit == DoseUnit.parse("mcg/kg/min")
    assert (step.drug_amount, step.drug_amount_unit, step.diluent_ml) == (Decimal(400), "mg", Decimal(250))
    assert step.concentration is not None and step.concentration.per_ml == Decimal("1.6")
    assert (step.route, step.device) == ("IV", "IVP")
    assert step.method == ("IV" if name.endswith("_cp159.hl7") else "")
    assert (order.pump_id, order.pump_vendor) == ("A0001", "PUMPVENDOR")
    assert order.weight_kg == Decimal(85)


@pytest.mark.parametrize(
    "name", ["pcd03_rgv_o15_ex2_normal_saline_rate.hl7", "pcd03_rgv_o15_ex2_normal_saline_rate_cp159.hl7"]
)
def test_saline_order_fields(name: str) -> None:
    order = parse_order(parse(example(name)))
    assert (order.drug_code, order.drug_text) == ("5678", "Normal Saline")
    assert order.first.vtbi_ml == Decimal(500)
    assert order.first.give_amount == Decimal("13.3")
    assert order.first.give_unit == DoseUnit.parse("mL/h")
    assert order.first.concentration is None
    assert order.weight_kg is None
    assert order.pump_id == "A0001"


def test_accept_acks() -> None:
    ack1 = parse(example("pcd03_ack_o15_ex1_accept.hl7"))
    ack2 = parse(example("pcd03_ack_o15_ex2_accept.hl7"))
    assert ack_code_of(ack1) is AckCode.CA
    assert ack1.first("MSA") is not None and ack1.first("MSA").value(2) == "1"  # type: ignore[union-attr]
    assert ack_code_of(ack2) is AckCode.CA
    assert ack2.control_id == "102"


def test_reject_example_carries_9010() -> None:
    rrg = parse(example("pcd03_rrg_o16_ex2_reject_drug_not_in_library.hl7"))
    err = rrg.first("ERR")
    assert rrg.message_type == ("RRG", "O16", "RRG_O16")
    assert ack_code_of(rrg) is AckCode.AR
    assert err is not None
    assert (err.value(3, 1), err.value(4), err.value(5, 1)) == ("207", "F", "9010")


@pytest.mark.parametrize(
    "phase,state,name",
    [
        ("start", "active", "pcd04_oru_r40_pump_occlusion_start.hl7"),
        ("end", "inactive", "pcd04_oru_r40_pump_occlusion_end.hl7"),
    ],
)
def test_pump_occlusion_alarm(phase: str, state: str, name: str) -> None:
    message = parse(example(name))
    obr = message.first("OBR")
    assert obr is not None
    assert obr.value(4, 2) == "MDC_EVT_ALARM"
    assert obr.value(3, 1) == "P6013_4"
    values = {o.value(3, 2): o for o in message.all("OBX")}
    assert values["MDC_EVT_ALARM"].value(5, 2) == "MDC_EVT_FLUID_LINE_OCCL"
    assert values["MDC_EVT_ALARM"].value(5, 9) == "Occlusion"
    assert values["MDC_ATTR_ALERT_SOURCE"].value(5, 2) == "MDC_DEV_PUMP_INFUS_MDS"
    assert values["MDC_ATTR_EVENT_PHASE"].value(5) == phase
    assert values["MDC_ATTR_ALARM_STATE"].value(5) == state
    assert message.first("PID").value(3) == "HO2009003"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    [
        "pcd10_oru_r42_ipec_delivery_start.hl7",
        "pcd10_oru_r42_ipec_delivery_start_suppl_rev1_5_pending_codes.hl7",
    ],
)
def test_ipec_example_values(name: str) -> None:
    message = parse(example(name))
    obr = message.first("OBR")
    assert obr is not None
    assert message.message_type == ("ORU", "R42", "ORU_R01")
    assert "1.3.6.1.4.1.19376.1.6.4.10" in message.profile_ids
    assert (obr.value(2, 1), obr.value(2, 2)) == ("AB12345", "PCD-03")
    assert obr.value(4, 2) == "Dopamine"
    by_refid = {o.value(3, 2): o for o in message.all("OBX")}
    assert by_refid["MDC_FLOW_FLUID_PUMP"].value(5) == "15.4"
    assert Decimal(by_refid["MDC_RATE_DOSE"].value(5)) == Decimal(5)
    assert Decimal(by_refid["MDC_VOL_FLUID_TBI"].value(5)) == Decimal(250)
    assert by_refid["MDC_TIME_PD_REMAIN"].value(5) == "974"
    assert by_refid["MDC_CONC_DRUG"].value(5) == "1.6"
    assert by_refid["MDC_PUMP_DRUG_LIBRARY_CARE_AREA"].value(5) == "Crit Care"
    assert by_refid["MDC_PUMP_DRUG_LIBRARY_VERSION"].value(5) == "DL1"
    assert by_refid["MDC_ATTR_EVT_COND"].value(5, 2) == "MDC_EVT_PUMP_DELIV_START"
    assert by_refid["MDC_ATTR_EVT_SOURCE"].value(5) == "1.1.2.0"
    containment = [o.value(4) for o in message.all("OBX")]
    assert containment[0] == "1.0.0.0"
    assert "1.1.0.0" in containment and "1.1.1.0" in containment and "1.1.2.0" in containment


def test_v27_ack_reads_five_encoding_characters() -> None:
    message = parse(example("draeger_ack_r40_watchdog_accept.hl7"))
    assert message.encoding.truncation == "#"
    assert message.version == "2.7"
    assert message.control_id == ""
    assert ack_code_of(message) is AckCode.CA


def test_draeger_alarm_priority_and_type() -> None:
    message = parse(example("draeger_pcd04_oru_r40_co2_sensor_unplugged.hl7"))
    by_refid = {o.value(3, 2): o.value(5) for o in message.all("OBX")}
    assert (by_refid["MDC_ATTR_ALARM_PRIORITY"], by_refid["MDC_ATTR_ALERT_TYPE"]) == ("PL", "SP")
