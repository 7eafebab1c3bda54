"""PCD-10/01/04 builders: the IPEC example's key fields, containment, and hl7apy STRICT validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from smartpump.interop.hl7v2.ack import AckCode, ErrorDetail, build_ack, build_rrg_o16
from smartpump.interop.hl7v2.message import Message, parse
from smartpump.interop.hl7v2.pcd01 import build_pcd01
from smartpump.interop.hl7v2.pcd04 import build_pcd04
from smartpump.interop.hl7v2.pcd10 import build_pcd10, rate_change_reports
from smartpump.interop.hl7v2.reports import (
    AlarmPhase,
    AlarmReport,
    AlarmState,
    DeviceIdentity,
    InactivationState,
    InfusionEventKind,
    InfusionEventReport,
    PatientContext,
    PumpStatusReport,
    SourceChannel,
    SourceKind,
)
from smartpump.interop.hl7v2.validation import structure_problems
from smartpump.units import Concentration, DoseUnit
from tests.unit.interop.helpers import example

TZ = timezone(timedelta(hours=-5))
SENT = datetime(2015, 10, 15, 13, 21, 7, tzinfo=TZ)
DEVICE = DeviceIdentity(device_id="E0002", eui64="0012210000000000", clinician_id="N0002")
PATIENT = PatientContext(
    patient_id="HO2009002",
    authority="IHE",
    family_name="Hon",
    given_name="Charles",
    point_of_care="3 West ICU",
    room="3002",
    bed="1",
)
SOURCE = SourceChannel(
    rate_ml_per_h=Decimal("15.4"),
    dose_rate=Decimal("5.00"),
    dose_unit=DoseUnit.parse("mcg/kg/min"),
    vtbi_ml=Decimal("250.0"),
    volume_delivered_ml=Decimal("0.0"),
    vtbi_remaining_ml=Decimal("250.0"),
    time_remaining_min=Decimal(974),
    drug_name="Dopamine",
    concentration=Concentration.parse("400 mg/250 mL"),
    care_area="Crit Care",
    weight_kg=Decimal("82.0"),
)
START = InfusionEventReport(
    control_id="6358051206735492253",
    sent_at=SENT,
    event_time=SENT - timedelta(seconds=1),
    event=InfusionEventKind.START,
    device=DEVICE,
    patient=PATIENT,
    source=SOURCE,
    order_id="AB12345",
    filler_id="CD12345",
    drug_code="2222",
    current_flow_ml_per_h=Decimal("15.4"),
    library_version="DL1",
)


def _obx_by_position(message: Message) -> dict[str, tuple[str, str]]:
    return {o.value(4): (o.value(3, 2), o.value(5)) for o in message.all("OBX")}


def test_pcd10_reproduces_the_ipec_example_observations() -> None:
    built = _obx_by_position(build_pcd10(START))
    reference = _obx_by_position(parse(example("pcd10_oru_r42_ipec_delivery_start.hl7")))
    assert built == reference


def test_pcd10_key_fields() -> None:
    message = build_pcd10(START)
    by_refid = {o.value(3, 2): o for o in message.all("OBX")}
    assert message.message_type == ("ORU", "R42", "ORU_R01")
    assert message.first("OBR").value(2) == "AB12345"  # type: ignore[union-attr]
    assert by_refid["MDC_FLOW_FLUID_PUMP"].value(5) == "15.4"
    assert by_refid["MDC_RATE_DOSE"].value(5) == "5.00"
    assert by_refid["MDC_RATE_DOSE"].value(6, 2) == "MDC_DIM_MICRO_G_PER_KG_PER_MIN"
    assert by_refid["MDC_VOL_FLUID_TBI"].value(5) == "250.0"
    assert by_refid["MDC_TIME_PD_REMAIN"].value(5) == "974"
    assert [o.value(4) for o in message.all("OBX")][:6] == [
        "1.0.0.0",
        "1.0.0.1",
        "1.0.0.2",
        "1.0.0.3",
        "1.1.0.0",
        "1.1.1.0",
    ]


def test_pcd10_bolus_names_its_parent_order() -> None:
    bolus = START.__class__(
        **{
            **{f: getattr(START, f) for f in START.__dataclass_fields__},
            "order_id": "B1",
            "parent_order_id": "AB12345",
        }
    )
    obr = build_pcd10(bolus).first("OBR")
    assert obr is not None and (obr.value(2), obr.value(29)) == ("B1", "AB12345")


def test_pcd10_of_a_fluid_with_no_drug_names_the_pump_as_its_service_and_validates() -> None:
    # A basic infusion with no drug and no order (the demo's fluids) left OBR-4, required, empty.
    fluid = replace(
        START,
        order_id="",
        filler_id="",
        drug_code="",
        source=replace(SOURCE, drug_name="", concentration=None),
    )
    message = build_pcd10(fluid)
    obr = message.first("OBR")
    assert obr is not None
    assert (obr.value(2), obr.value(4, 1), obr.value(4, 2)) == ("", "70049", "MDC_DEV_PUMP_INFUS_LVP_MDS")
    assert structure_problems(message) == ()


def test_rate_change_is_stop_then_start() -> None:
    faster = SourceChannel(rate_ml_per_h=Decimal(20), label="Primary")
    stop, start = rate_change_reports(START, faster, stop_control_id="s", start_control_id="t")
    assert (stop.event, start.event) == (InfusionEventKind.STOP, InfusionEventKind.START)
    assert start.source.rate_ml_per_h == Decimal(20) and stop.source.rate_ml_per_h == Decimal("15.4")


STATUS = PumpStatusReport(
    control_id="S1",
    sent_at=SENT,
    observed_at=SENT,
    device=DEVICE,
    patient=PATIENT,
    sources=(SOURCE, SourceChannel(kind=SourceKind.SECONDARY, label="Secondary", rate_ml_per_h=Decimal(50))),
    order_id="AB12345",
    is_infusing=True,
    current_flow_ml_per_h=Decimal("15.4"),
    library_version="DL1",
)
ALARM = AlarmReport(
    control_id="A1",
    sent_at=SENT,
    observed_at=SENT,
    device=DEVICE,
    patient=PATIENT,
    alert_id="P6013_4",
    alarm_refid="MDC_EVT_FLUID_LINE_OCCL",
    alarm_code=196940,
    alarm_text="Occlusion",
    phase=AlarmPhase.START,
    state=AlarmState.ACTIVE,
)


def test_pcd01_has_both_sources() -> None:
    positions = [o.value(4) for o in build_pcd01(STATUS).all("OBX")]
    assert "1.1.2.0" in positions and "1.1.3.0" in positions


def test_pcd04_alarm_start_and_end_share_the_alert_id() -> None:
    end = build_pcd04(
        AlarmReport(
            **{
                **{f: getattr(ALARM, f) for f in ALARM.__dataclass_fields__},
                "control_id": "A2",
                "phase": AlarmPhase.END,
                "state": AlarmState.INACTIVE,
                "inactivation": InactivationState.ACKNOWLEDGED,
            }
        )
    )
    start = build_pcd04(ALARM)
    assert start.first("OBR").value(3) == end.first("OBR").value(3) == "P6013_4"  # type: ignore[union-attr]
    values = {o.value(3, 2): o.value(5) for o in end.all("OBX")}
    assert (values["MDC_ATTR_EVENT_PHASE"], values["MDC_ATTR_ALARM_STATE"]) == ("end", "inactive")


def _ack() -> Message:
    order = parse(example("pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7"))
    return build_ack(order, AckCode.CA, control_id="A1", timestamp=SENT)


def _rrg() -> Message:
    order = parse(example("pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7"))
    return build_rrg_o16(
        order,
        AckCode.AR,
        control_id="R1",
        timestamp=SENT,
        errors=(ErrorDetail(application_code=9010, text="not in library"),),
    )


@pytest.mark.parametrize(
    "build",
    [lambda: build_pcd10(START), lambda: build_pcd01(STATUS), lambda: build_pcd04(ALARM), _ack, _rrg],
    ids=["pcd10", "pcd01", "pcd04", "ack", "rrg_o16"],
)
def test_every_produced_message_passes_hl7apy_strict(build) -> None:  # type: ignore[no-untyped-def]
    message = build()
    assert structure_problems(message) == ()
    assert str(parse(message.to_er7())) == message.to_er7()


def test_hl7apy_check_reports_a_broken_structure() -> None:
    broken = build_pcd10(START)
    no_obr = Message(tuple(s for s in broken.segments if s.id != "OBR"))
    assert structure_problems(no_obr) != ()


@pytest.mark.parametrize(
    ("patient", "pid3", "pid5"),
    [
        (PATIENT, "HO2009002^^^IHE^PI", "Hon^Charles^^^^^L"),
        (PatientContext(patient_id="98765", authority="HOSP", id_type="MR"), "98765^^^HOSP^MR", "^^^^^^U"),
        (PatientContext(patient_id="98765", family_name="Doe"), "98765^^^^PI", "Doe^^^^^^L"),
    ],
    ids=["named", "no-name-tf-b5-type-u", "family-only"],
)
def test_pid_keeps_authority_and_type_and_follows_the_pcd_name_rule(
    patient: PatientContext, pid3: str, pid5: str
) -> None:
    for message in (
        build_pcd10(replace(START, patient=patient)),
        build_pcd01(replace(STATUS, patient=patient)),
        build_pcd04(replace(ALARM, patient=patient)),
    ):
        pid = message.first("PID")
        assert pid is not None and (pid.field(3), pid.field(5)) == (pid3, pid5)
        assert structure_problems(message) == ()


def test_no_known_patient_leaves_the_patient_group_out_and_still_validates() -> None:
    for message in (
        build_pcd10(replace(START, patient=None)),
        build_pcd01(replace(STATUS, patient=None)),
        build_pcd04(replace(ALARM, patient=None)),
    ):
        assert message.first("PID") is None and message.first("PV1") is None
        assert structure_problems(message) == ()


@pytest.mark.parametrize(
    "original",
    [
        None,
        "MSH|^~\\&|EHR|H|SP|H|20260101||RGV|C9|P|2.6\rPID|||1",
        "MSH|^~\\&|EHR|H|SP|H|20260101||RGV^??|C9|P|2.6",
    ],
    ids=["unparsable", "no-trigger", "garbled-trigger"],
)
def test_acks_to_malformed_input_carry_a_valid_message_type(original: str | None) -> None:
    message = parse(original) if original is not None else None
    ack = build_ack(message, AckCode.AR, control_id="A9", timestamp=SENT, acked_control_id="C9")
    assert ack.msh.field(9) == "ACK^O15^ACK"
    assert structure_problems(ack) == ()
