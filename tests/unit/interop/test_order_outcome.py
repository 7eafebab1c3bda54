"""The deferred RRG^O16 AR that ends an accepted order at the pump: valid for hl7apy and python-hl7, MSA-2
naming the order's MSH-10, ERR-5 the PIV code, ORC the order."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest

from smartpump.interop.hl7v2.order_outcome import (
    OrderEnd,
    OrderOutcome,
    build_order_outcome,
    piv_code_for_refusal,
)
from smartpump.interop.hl7v2.reports import PatientContext
from smartpump.interop.hl7v2.validation import structure_problems

ENDED = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def _outcome(**changes: object) -> OrderOutcome:
    values: dict[str, object] = {
        "order_id": "ORD-7",
        "order_control_id": "MSG-42",
        "patient": PatientContext(patient_id="MRN-1", id_type=""),
        "end": OrderEnd.DECLINED,
        "piv_code": 9023,
        "pump_code": "wrong_patient",
        "reason": "declined by the nurse: wrong patient",
        "ended_at": ENDED,
    }
    values.update(changes)
    return OrderOutcome(**values)  # type: ignore[arg-type]


def _build(outcome: OrderOutcome) -> str:
    message = build_order_outcome(
        outcome, control_id="OUT-1", sent_at=ENDED, receiving_application="EPIC", receiving_facility="NORTH"
    )
    assert structure_problems(message) == ()
    return message.to_er7()


@pytest.mark.parametrize(
    ("patient", "pid3", "pid5"),
    [
        (
            PatientContext(
                patient_id="MRN-1", authority="HOSP", id_type="MR", family_name="Doe", given_name="Jane"
            ),
            "MRN-1^^^HOSP^MR",
            "Doe^Jane^^^^^L",
        ),
        (PatientContext(patient_id="PI-77", authority="NHS", id_type="NH"), "PI-77^^^NHS^NH", "^^^^^^U"),
        (PatientContext(patient_id="MRN-1", id_type=""), "MRN-1", "^^^^^^U"),
    ],
    ids=["mr-named", "non-mr-type-kept", "no-authority"],
)
def test_the_outcome_validates_and_names_order_patient_and_codes(
    patient: PatientContext, pid3: str, pid5: str
) -> None:
    text = _build(_outcome(patient=patient))
    parsed = hl7.parse(text)
    assert str(parsed.segment("MSH")[9]) == "RRG^O16^RRG_O16"
    assert str(parsed.segment("MSH")[5]) == "EPIC"
    assert str(parsed.segment("MSH")[21]).endswith("1.3.6.1.4.1.19376.1.6.1.3.2^ISO")
    msa = parsed.segment("MSA")
    assert (str(msa[1]), str(msa[2]), str(msa[3])) == ("AR", "MSG-42", "declined: Program rejected by user")
    err = parsed.segment("ERR")
    assert (str(err[4]), str(err[5])) == ("F", "9023^Program rejected by user")
    assert (str(parsed.segment("PID")[3]), str(parsed.segment("PID")[5])) == (pid3, pid5)
    orc = parsed.segment("ORC")
    fields = (str(orc[1]), str(orc[2]), str(orc[5]), str(orc[9]))
    assert fields == ("OC", "ORD-7", "CA", "20260329013000+0000")
    assert str(orc[16]) == "wrong_patient^Program rejected by user^SMARTPUMP"


def test_pump_refusal_codes_map_to_piv_codes() -> None:
    assert piv_code_for_refusal("command.patient_mismatch") == 9012
    assert piv_code_for_refusal("command.channel_busy") == 9002
    assert piv_code_for_refusal("command.expired") == 9015
    assert piv_code_for_refusal("anything.else") == 9016


def test_an_outcome_refuses_a_code_outside_the_piv_table_and_a_naive_time() -> None:
    with pytest.raises(ValueError, match="PIV"):
        _outcome(piv_code=1234)
    with pytest.raises(ValueError, match="offset"):
        _outcome(ended_at=datetime(2026, 3, 29, 1, 30))
