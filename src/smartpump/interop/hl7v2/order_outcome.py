"""What became of an accepted PCD-03 order at the pump, told back to the Infusion Order Programmer.

IHE PIV (TF Vol. 2 §3.3.4.4; CP-PCD-073) answers an RGV^O15 with an accept acknowledgement and, when MSH-16
asks for it (``AL`` or ``ER``), an application acknowledgement RRG^O16 carrying the refusal in ERR-5 with a
code of the PIV application error table. An order we accepted can still end without an infusion: the nurse
declines it at the pump, the pump refuses the program, or nobody acts on it before the offer expires. Each
of those ends it with a deferred RRG^O16 **AR** sent as its own message (HL7 v2.6 §2.9.3, enhanced mode),
MSA-2 naming the order's MSH-10, ERR-5 the PIV code, ORC the order (ORC-1 ``OC``, ORC-5 ``CA``, ORC-16 our
code). An order that starts is told by the PCD-10 delivery-start event (IPEC), whose OBR-2 is the order id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from smartpump.interop.hl7v2.ack import OUR_APPLICATION, RRG_PROFILE, AckCode, ErrorDetail, Severity
from smartpump.interop.hl7v2.codes import HL7_ERROR_APPLICATION_INTERNAL, PIV_ERRORS
from smartpump.interop.hl7v2.message import Message, build_msh, build_segment, format_timestamp
from smartpump.interop.hl7v2.observations import pid_segment
from smartpump.interop.hl7v2.reports import PatientContext

DECLINED_PIV: Final = 9023
"""PIV 9023 "Program rejected by user": the nurse declined the order at the pump."""
EXPIRED_PIV: Final = 9015
"""PIV 9015 "Request timed out": nobody confirmed the offer before it expired."""
OTHER_PIV: Final = 9016
"""PIV 9016 "Other error": a pump refusal with no code of its own in the PIV table."""
PUMP_REFUSAL_PIV: Final = {
    "command.patient_mismatch": 9012,
    "command.channel_busy": 9002,
    "pump.program_pending": 9002,
    "command.not_running": 9035,
    "command.expired": 9015,
    "pump.alarming": 9033,
    "pump.no_care_area": 9029,
}
"""The pump's refusal codes that have a PIV application error of their own; every other is 9016."""


class OrderEnd(StrEnum):
    """How an accepted order ended without an infusion."""

    DECLINED = "declined"
    REFUSED = "refused"
    EXPIRED = "expired"


def piv_code_for_refusal(pump_code: str) -> int:
    """The PIV application error (ERR-5) for a pump's refusal code (9016 when the table has none)."""
    return PUMP_REFUSAL_PIV.get(pump_code, OTHER_PIV)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderOutcome:
    """An accepted order that ended without an infusion: which order, why, with which codes, when."""

    order_id: str
    order_control_id: str
    patient: PatientContext
    """The patient as the order named it (PID-3 ID, assigning authority and identifier type, PID-5 name)."""
    end: OrderEnd
    piv_code: int
    pump_code: str
    reason: str
    ended_at: datetime

    def __post_init__(self) -> None:
        if self.piv_code not in PIV_ERRORS:
            raise ValueError(f"{self.piv_code} is not a PIV application error code")
        if self.ended_at.tzinfo is None:
            raise ValueError("an outcome time needs its UTC offset")


def build_order_outcome(
    outcome: OrderOutcome,
    *,
    control_id: str,
    sent_at: datetime,
    receiving_application: str,
    receiving_facility: str,
    sending_application: str = OUR_APPLICATION,
) -> Message:
    """The deferred RRG^O16 AR ending an accepted order: MSH, MSA, ERR (ERR-5 PIV code), PID, ORC."""
    msh = build_msh(
        sending_application=sending_application,
        sending_facility=sending_application,
        receiving_application=receiving_application,
        receiving_facility=receiving_facility,
        timestamp=sent_at,
        message_type=("RRG", "O16", "RRG_O16"),
        control_id=control_id,
        accept_ack_type="AL",
        application_ack_type="NE",
        profile=(RRG_PROFILE,),
    )
    words = PIV_ERRORS[outcome.piv_code]
    text = f"order {outcome.order_id} {outcome.end.value} at the pump: {outcome.reason or words}"
    msa = build_segment(
        "MSA", AckCode.AR.value, outcome.order_control_id, f"{outcome.end.value}: {words}"[:80]
    )
    error = ErrorDetail(
        hl7_code=HL7_ERROR_APPLICATION_INTERNAL,
        severity=Severity.FATAL,
        application_code=outcome.piv_code,
        text=text,
    ).segment()
    pid = pid_segment(outcome.patient)
    orc = build_segment(
        "ORC",
        "OC",
        outcome.order_id,
        (outcome.order_id, sending_application),
        None,
        "CA",
        None,
        None,
        None,
        format_timestamp(outcome.ended_at),
        None,
        None,
        None,
        None,
        None,
        None,
        (outcome.pump_code or outcome.end.value, words, "SMARTPUMP"),
    )
    return Message((msh, msa, error, pid, orc))
