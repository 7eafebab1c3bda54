"""PCD-03 orders: mapping to the library, DERS like a manual program, RRG^O16 with PIV codes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from smartpump.ders.program import ProgramKind, VerdictLevel
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.interop.hl7v2.message import Hl7ParseError, parse
from smartpump.interop.hl7v2.pcd03 import (
    OrderIntent,
    OrderRejected,
    evaluate_order,
    order_to_program,
    parse_order,
    respond,
)
from smartpump.library.model import EhrMapping
from tests.unit.interop.helpers import ORDER_NOW, demo_library, example

DOPAMINE = "pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7"
SALINE = "pcd03_rgv_o15_ex2_normal_saline_rate.hl7"


def _order(name: str = DOPAMINE, replace: tuple[str, str] | None = None):  # type: ignore[no-untyped-def]
    text = example(name)
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    return parse(text), parse_order(parse(text))


def test_dopamine_order_gives_exact_and_programmed_rate() -> None:
    _, order = _order()
    decision = evaluate_order(order, demo_library(), "icu", now=ORDER_NOW)
    assert decision.accepted
    verdict = decision.verdicts[0]
    assert verdict.rate_ml_per_h_exact == Decimal("31.875")
    assert verdict.rate_ml_per_h == Decimal("31.9")
    assert verdict.level is VerdictLevel.OK
    assert decision.programs[0].entry_id == "icu-dopamine"


def test_accepted_order_gets_ca_in_enhanced_mode() -> None:
    message, order = _order()
    reply = respond(
        message,
        evaluate_order(order, demo_library(), "icu", now=ORDER_NOW),
        control_id="R1",
        timestamp=ORDER_NOW,
    )
    assert reply.message_type == ("ACK", "O15", "ACK")
    assert ack_code_of(reply) is AckCode.CA
    assert reply.first("MSA").value(2) == "1"  # type: ignore[union-attr]


def test_application_ack_always_gets_rrg_aa() -> None:
    message, order = _order(replace=("|AL|ER|", "|AL|AL|"))
    reply = respond(
        message,
        evaluate_order(order, demo_library(), "icu", now=ORDER_NOW),
        control_id="R1",
        timestamp=ORDER_NOW,
    )
    assert reply.message_type[:2] == ("RRG", "O16")
    assert ack_code_of(reply) is AckCode.AA


def test_saline_rate_order() -> None:
    _, order = _order(SALINE)
    decision = evaluate_order(order, demo_library(), "icu", now=ORDER_NOW)
    assert decision.accepted
    assert decision.programs[0].rate_ml_per_h == Decimal("13.3")
    assert decision.programs[0].vtbi_ml == Decimal(500)
    assert decision.verdicts[0].rate_ml_per_h == Decimal("13.3")


def test_drug_missing_from_library_reproduces_the_tf_reject() -> None:
    message, order = _order(SALINE)
    decision = evaluate_order(order, demo_library(with_saline=False), "icu", now=ORDER_NOW)
    reply = respond(message, decision, control_id="102", timestamp=ORDER_NOW)
    err = reply.first("ERR")
    assert reply.message_type == ("RRG", "O16", "RRG_O16")
    assert ack_code_of(reply) is AckCode.AR
    assert err is not None and err.value(5, 1) == "9010"
    assert err.value(5, 2) == "Unable to match medication to drug library"
    assert reply.first("MSA").value(2) == "2"  # type: ignore[union-attr]


def test_mapping_file_resolves_a_foreign_code() -> None:
    _, order = _order(replace=("|1234^Dopamine|", "|A-99^Dopa drip|"))
    program = order_to_program(order, demo_library(), "icu", (EhrMapping(order_code="A-99", alias="1234"),))
    assert program.entry_id == "icu-dopamine"


def test_name_is_the_last_resort() -> None:
    _, order = _order(replace=("|1234^Dopamine|", "|^DOPamine|"))
    assert order_to_program(order, demo_library(), "icu").entry_id == "icu-dopamine"


def _rejected(order, care_area: str = "icu", **kwargs) -> int:  # type: ignore[no-untyped-def]
    decision = evaluate_order(order, demo_library(), care_area, now=ORDER_NOW, **kwargs)
    assert decision.rejection is not None
    return decision.rejection.error_code


def test_weight_missing_is_9019() -> None:
    _, order = _order(
        replace=("\rOBX|2|NM|68063^MDC_ATTR_PT_WEIGHT^MDC||85.0|kg^kg^UCUM^263875^MDC_DIM_KILO_G^MDC", "")
    )
    assert _rejected(order) == 9019


def test_hard_limit_is_9024() -> None:
    _, order = _order(replace=("||||||||10|3475", "||||||||25|3475"))
    assert _rejected(order) == 9024


def test_soft_limit_travels_with_the_offer() -> None:
    message, order = _order(replace=("||||||||10|3475", "||||||||16|3475"))
    decision = evaluate_order(order, demo_library(), "icu", now=ORDER_NOW)
    assert decision.accepted and decision.verdicts[0].level is VerdictLevel.SOFT
    reply = respond(message, decision, control_id="R", timestamp=ORDER_NOW)
    assert ack_code_of(reply) is AckCode.CA
    assert [e.value(4) for e in reply.all("ERR")] == ["W"]


def test_drug_not_in_care_area_is_9021() -> None:
    _, order = _order()
    assert _rejected(order, "nicu") == 9021


def test_unknown_care_area_is_9021_and_none_is_9029() -> None:
    _, order = _order()
    assert _rejected(order, "oncology") == 9021
    assert _rejected(order, "") == 9029


def test_stale_order_is_9022() -> None:
    _, order = _order(replace=("|||||||||||||||||N0001", "|||||||20080101120000-0600||||||||||N0001"))
    assert order.order_time is not None
    assert _rejected(order, max_age=timedelta(minutes=30)) == 9022
    fresh = evaluate_order(order, demo_library(), "icu", now=order.order_time + timedelta(minutes=5))
    assert fresh.accepted


def test_unreadable_unit_is_9008() -> None:
    with pytest.raises(OrderRejected) as caught:
        _order(replace=("3475^ug/kg/min^UCUM^265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC", "furlong/fortnight"))
    assert caught.value.error_code == 9008


def test_concentration_not_in_entry_is_9037() -> None:
    _, order = _order(replace=("|400|1746^mg", "|200|1746^mg"))
    assert _rejected(order) == 9037


def test_piggyback_refused_by_entry_is_9013() -> None:
    _, order = _order(
        name="pcd03_rgv_o15_ex1_dopamine_dose_rate_cp159.hl7", replace=("RXR|IV||IVP|IV", "RXR|IV||IVP|IVPB")
    )
    assert order.intent is OrderIntent.SECONDARY
    assert _rejected(order) == 9013


def test_titration_is_a_rate_change_without_vtbi() -> None:
    text = (
        example(DOPAMINE)
        .replace("ORC|RE|12345", "ORC|XO|12345")
        .replace("|1234^Dopamine|250||263762^MDC_DIM_MILLI_L^MDC^mL^mL^UCUM |", "|1234^Dopamine||||")
    )
    order = parse_order(parse(text))
    assert order.intent is OrderIntent.TITRATION
    program = order_to_program(order, demo_library(), "icu")
    assert program.kind is ProgramKind.CONTINUOUS and program.dose == Decimal(10) and program.vtbi_ml is None


def test_bolus_from_running_infusion() -> None:
    text = (
        example(DOPAMINE)
        .replace("ORC|RE|12345|||||||||||||||||N0001", "ORC|CH|12346||||||12345|||||||||||N0001")
        .replace(
            "||||||||10|3475^ug/kg/min^UCUM^265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|",
            "||||||||50|ug/kg^ug/kg^UCUM|",
        )
        .rstrip("\r")
        + "\rOBX|3|NM|158019^MDC_DOSE_CLINICIAN^MDC||||||||R"
        + "\rOBX|4|NM|157784^MDC_FLOW_FLUID_PUMP^MDC||200|mL/h^mL/h^UCUM|||||R\r"
    )
    order = parse_order(parse(text))
    assert order.intent is OrderIntent.BOLUS and order.parent_order_id == "12345"
    program = order_to_program(order, demo_library(), "icu")
    assert program.kind is ProgramKind.BOLUS
    assert program.dose == Decimal(50)
    # 50 mcg/kg x 85 kg = 4.25 mg = 2.65625 mL at 1.6 mg/mL; at 200 mL/h that is 0.796875 min
    assert program.duration_min == Decimal("0.796875")


def test_loading_dose_not_configured_is_9042() -> None:
    text = (
        example(DOPAMINE).replace("ORC|RE|", "ORC|CH|").rstrip("\r")
        + "\rOBX|3|NM|158018^MDC_DOSE_LOADING^MDC||5|ug/kg^ug/kg^UCUM|||||R\r"
    )
    order = parse_order(parse(text))
    assert order.intent is OrderIntent.LOADING
    assert _rejected(order) == 9042


def _pca_order(extra: str) -> str:
    return (
        example(DOPAMINE)
        .replace("|1234^Dopamine|", "|4321^Morphine|")
        .replace(
            "||||||||10|3475^ug/kg/min^UCUM^265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|400|1746^mg^UCUM^263890^MDC_DIM_MILLI_G^MDC|||||250|",
            "||||||||||30|mg^mg^UCUM|||||30|",
        )
        .rstrip("\r")
        + "\rOBX|3|NM|158017^MDC_DOSE_PCA_PATIENT^MDC||1|mg^mg^UCUM|||||R"
        + extra
        + "\r"
    )


PCA_LOCKOUT = "\rOBX|4|NM|157989^MDC_TIME_PCA_LOCKOUT^MDC||10|min^min^UCUM|||||R"
PCA_LIMIT = (
    "\rOBX|5|NM|157985^MDC_DOSE_PCA_LIMIT^MDC||8|mg^mg^UCUM|||||R"
    "\rOBX|6|NM|157987^MDC_TIME_PD_PCA_DOSE_LIMIT^MDC||4|h^h^UCUM|||||R"
)


def test_pca_order() -> None:
    order = parse_order(parse(_pca_order(PCA_LOCKOUT + PCA_LIMIT)))
    assert order.intent is OrderIntent.PCA
    decision = evaluate_order(order, demo_library(), "icu", now=ORDER_NOW)
    assert decision.accepted, decision.rejection
    pca = decision.programs[0].pca
    assert pca is not None and (pca.demand_dose, pca.lockout_min) == (Decimal(1), Decimal(10))
    assert (pca.max_dose, pca.max_dose_window_h) == (Decimal(8), 4)


def test_pca_without_lockout_is_9025() -> None:
    assert _rejected(parse_order(parse(_pca_order(PCA_LIMIT)))) == 9025


def test_pca_without_dose_limit_is_9026() -> None:
    assert _rejected(parse_order(parse(_pca_order(PCA_LOCKOUT)))) == 9026


def test_multistep_steps_are_each_checked() -> None:
    text = example(DOPAMINE)
    rxg = next(line for line in text.split("\r") if line.startswith("RXG"))
    step2 = rxg.replace("RXG|1|", "RXG|2|").replace("||||||||10|3475", "||||||||25|3475")
    text = text.replace("RXR|IV||IVP\r", f"RXR|IV||IVP\r{step2}\rRXR|IV||IVP\r", 1)
    order = parse_order(parse(text))
    assert order.intent is OrderIntent.MULTISTEP and len(order.steps) == 2
    assert _rejected(order) == 9024


def _two_steps(step2_dose: str, *, step2_vtbi: str = "250") -> str:
    text = example(DOPAMINE)
    rxg = next(line for line in text.split("\r") if line.startswith("RXG"))
    step2 = (
        rxg.replace("RXG|1|", "RXG|2|")
        .replace("||||||||10|3475", f"||||||||{step2_dose}|3475")
        .replace("|1234^Dopamine|250|", f"|1234^Dopamine|{step2_vtbi}|")
    )
    return text.replace("RXR|IV||IVP\r", f"RXR|IV||IVP\r{step2}\rRXR|IV||IVP\r", 1)


def test_multistep_within_limits_is_accepted_with_a_program_per_step() -> None:
    decision = evaluate_order(parse_order(parse(_two_steps("15"))), demo_library(), "icu", now=ORDER_NOW)
    assert decision.accepted, decision.rejection
    assert [p.dose for p in decision.programs] == [Decimal(10), Decimal(15)]


def test_multistep_step_without_volume_is_9041() -> None:
    assert _rejected(parse_order(parse(_two_steps("15", step2_vtbi="")))) == 9041


def test_multistep_for_a_pca_entry_is_9043() -> None:
    text = _pca_order(PCA_LOCKOUT + PCA_LIMIT)
    rxg = next(line for line in text.split("\r") if line.startswith("RXG"))
    text = text.replace("RXR|IV||IVP\r", f"RXR|IV||IVP\r{rxg.replace('RXG|1|', 'RXG|2|')}\rRXR|IV||IVP\r", 1)
    order = parse_order(parse(text))
    assert order.intent is OrderIntent.MULTISTEP
    assert _rejected(order) == 9043


def test_segments_out_of_order_are_a_parse_error() -> None:
    text = example(DOPAMINE)
    lines = text.rstrip("\r").split("\r")
    swapped = [lines[0], lines[1], lines[3], lines[2], *lines[4:]]
    with pytest.raises(Hl7ParseError) as caught:
        parse_order(parse("\r".join(swapped)))
    assert caught.value.code == "hl7.segment_order"


def test_missing_patient_id_is_9031() -> None:
    _, order = _order(replace=("PID|||98765^^^IHE^PI|", "PID||||"))
    assert _rejected(order) == 9031


@pytest.mark.parametrize(
    ("orc12", "prescriber_id", "name", "shown"),
    [
        ("P-77^Smith^Ann^^^Dr", "P-77", "Dr Ann Smith", "Dr Ann Smith (P-77)"),
        ("^Smith^Ann", "", "Ann Smith", "Ann Smith"),
        ("P-77", "P-77", "", "P-77"),
        ("", "", "", ""),
    ],
    ids=["id-and-name", "name-only", "id-only", "none"],
)
def test_the_ordering_provider_is_read_from_orc_12(
    orc12: str, prescriber_id: str, name: str, shown: str
) -> None:
    line = next(seg for seg in example(DOPAMINE).split("\r") if seg.startswith("ORC|"))
    fields = line.split("|")
    fields[12] = orc12
    _, order = _order(replace=(line, "|".join(fields)))
    assert (order.prescriber_id, order.prescriber_name, order.prescriber) == (prescriber_id, name, shown)
