"""Acknowledgements: ACK (original mode AA/AE/AR, enhanced CA/CE/CR) and RRG^O16 with ERR segments.

ERR-3 carries the HL7 table 0357 condition, ERR-4 the severity and ERR-5 the IHE PIV application
error code (9001-9044). A message we could not parse still gets an AE/AR addressed from what of its
MSH can be read (sender, trigger, MSH-10, version); MSA-2 is empty when its MSH-10 cannot be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from smartpump.interop.hl7v2.codes import (
    HL7_ERROR_APPLICATION_INTERNAL,
    HL7_ERROR_DATA_TYPE,
    HL7_ERROR_REQUIRED_FIELD,
    HL7_ERROR_SEGMENT_SEQUENCE,
    HL7_ERROR_TEXT,
    HL7_ERROR_UNSUPPORTED_MESSAGE_TYPE,
    PIV_ERRORS,
)
from smartpump.interop.hl7v2.message import (
    FieldValue,
    Hl7ParseError,
    Message,
    Segment,
    build_msh,
    build_segment,
)

PIV_PROFILE: Final = ("IHE_PCD_PIV_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.3.1", "ISO")
RRG_PROFILE: Final = ("IHE_PCD_PIV_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.3.2", "ISO")
OUR_APPLICATION: Final = "SMARTPUMP"
DEFAULT_TRIGGER: Final = "O15"
"""MSH-9.2 of an ACK to input whose trigger event cannot be read (PCD-03 is the only inbound transaction)."""
_TRIGGER: Final = re.compile(r"[A-Z0-9]{3}")
_VERSION: Final = re.compile(r"2\.[1-9](\.[0-9]{1,2})?")
_HEADER_TEXT_MAX: Final = 199


class AckCode(StrEnum):
    """MSA-1: original mode AA/AE/AR, enhanced-mode accept acks CA/CE/CR."""

    AA = "AA"
    AE = "AE"
    AR = "AR"
    CA = "CA"
    CE = "CE"
    CR = "CR"

    @property
    def is_positive(self) -> bool:
        """True for AA and CA: the receiver took responsibility for the message."""
        return self in (AckCode.AA, AckCode.CA)


class Severity(StrEnum):
    """ERR-4 (HL7 table 0516)."""

    ERROR = "E"
    FATAL = "F"
    WARNING = "W"
    INFORMATION = "I"


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDetail:
    """One ERR segment: HL7 condition (table 0357), severity, PIV code (ERR-5), text, location."""

    hl7_code: str = HL7_ERROR_APPLICATION_INTERNAL
    severity: Severity = Severity.ERROR
    application_code: int | None = None
    text: str = ""
    location: tuple[str, ...] = ()

    def segment(self) -> Segment:
        """The ERR segment (v2.5+ layout: ERR-2 location, ERR-3 condition, ERR-4, ERR-5, ERR-8)."""
        app: FieldValue | None = None
        if self.application_code is not None:
            app = (str(self.application_code), PIV_ERRORS.get(self.application_code, self.text))
        return build_segment(
            "ERR",
            None,
            self.location or None,
            (self.hl7_code, HL7_ERROR_TEXT.get(self.hl7_code, ""), "HL70357"),
            self.severity.value,
            app,
            None,
            None,
            self.text or None,
        )


_PARSE_CONDITION: Final = {
    "hl7.no_control_id": HL7_ERROR_REQUIRED_FIELD,
    "hl7.missing_segment": HL7_ERROR_REQUIRED_FIELD,
    "hl7.segment_order": HL7_ERROR_SEGMENT_SEQUENCE,
    "hl7.bad_number": HL7_ERROR_DATA_TYPE,
    "hl7.bad_timestamp": HL7_ERROR_DATA_TYPE,
    "hl7.field_too_long": HL7_ERROR_DATA_TYPE,
    "hl7.unsupported_type": HL7_ERROR_UNSUPPORTED_MESSAGE_TYPE,
}
# Refusals that mean "this can never be processed": AR; content errors worth correcting: AE.
_REJECT_CODES: Final = frozenset(
    {
        "hl7.empty",
        "hl7.no_msh",
        "hl7.bad_delimiters",
        "hl7.encoding",
        "hl7.too_large",
        "hl7.too_many_segments",
        "hl7.too_many_fields",
        "hl7.segment_id",
        "hl7.multiple_messages",
        "hl7.unsupported_type",
        "mllp.too_large",
        "hl7.sender_not_allowed",
    }
)


def ack_code_for_error(code: str) -> AckCode:
    """AR for messages that cannot be processed at all, AE for content errors."""
    return AckCode.AR if code in _REJECT_CODES else AckCode.AE


def error_detail_for(error: Hl7ParseError) -> ErrorDetail:
    """The ERR content for a parse or structure error."""
    return ErrorDetail(
        hl7_code=_PARSE_CONDITION.get(error.code, HL7_ERROR_APPLICATION_INTERNAL),
        severity=Severity.ERROR,
        text=f"{error.code}: {error.message}",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SalvagedHeader:
    """What could be read from the MSH of input that does not parse; empty strings where nothing could."""

    sending_application: str = ""
    sending_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    version: str = ""


def salvage_header(text: str) -> SalvagedHeader:
    """MSH-3, MSH-4, MSH-9.2, MSH-10 and MSH-12 read from text that may not parse.

    Only a first line starting ``MSH`` with a non-alphanumeric field separator is read; MSH-3/MSH-4 keep
    their first component, a trigger or version that is not well formed is left empty.
    """
    if not text.startswith("MSH") or len(text) < 4 or text[3].isalnum() or text[3].isspace():
        return SalvagedHeader()
    separator = text[3]
    component = text[4] if len(text) > 4 and text[4] not in (separator, "\r", "\n") else "^"
    first = text.replace("\n", "\r").split("\r", 1)[0]
    parts = first.split(separator)

    def field(number: int) -> str:
        return parts[number - 1].strip()[:_HEADER_TEXT_MAX] if len(parts) >= number else ""

    message_type = field(9).split(component)
    trigger = message_type[1].strip() if len(message_type) > 1 else ""
    version = field(12).split(component)[0].strip()
    return SalvagedHeader(
        sending_application=field(3).split(component)[0],
        sending_facility=field(4).split(component)[0],
        trigger=trigger if _TRIGGER.fullmatch(trigger) else "",
        control_id=field(10),
        version=version if _VERSION.fullmatch(version) else "",
    )


def build_ack(
    original: Message | None,
    code: AckCode,
    *,
    control_id: str,
    timestamp: datetime,
    errors: tuple[ErrorDetail, ...] = (),
    acked_control_id: str | None = None,
    text: str = "",
    fallback_trigger: str = DEFAULT_TRIGGER,
    salvaged: SalvagedHeader | None = None,
) -> Message:
    """An ACK answering ``original`` (ACK^<trigger>^ACK); ``original`` None answers unparsable input.

    MSH-9.2 echoes the original's trigger event (or, for unparsable input, the ``salvaged`` one); when none
    is well formed it is ``fallback_trigger``: O15, the trigger of the PCD-03 orders this interface takes.
    The receiving fields are the original's (or salvaged) sending fields; ACK^O15 carries the PIV profile.
    MSA-2 is the original's MSH-10, or the salvaged one, and empty when it could not be read.
    """
    if original is not None:
        trigger = original.message_type[1]
    else:
        trigger = salvaged.trigger if salvaged is not None else ""
    if not _TRIGGER.fullmatch(trigger):
        trigger = fallback_trigger
    profile: tuple[tuple[str, str, str, str], ...] = ()
    if original is not None and original.message_type[:2] == ("RGV", "O15"):
        profile = (PIV_PROFILE,)
    msh = _reply_msh(original, ("ACK", trigger, "ACK"), control_id, timestamp, profile, salvaged)
    if acked_control_id is not None:
        msa_id = acked_control_id
    elif original is not None:
        msa_id = original.control_id
    else:
        msa_id = salvaged.control_id if salvaged is not None else ""
    msa = build_segment("MSA", code.value, msa_id, text or None)
    return Message((msh, msa, *(e.segment() for e in errors)))


def build_rrg_o16(
    original: Message,
    code: AckCode,
    *,
    control_id: str,
    timestamp: datetime,
    errors: tuple[ErrorDetail, ...] = (),
) -> Message:
    """The PIV application acknowledgement RRG^O16^RRG_O16: MSH, MSA, ERR* (TF Vol. 2 §3.3)."""
    msh = _reply_msh(original, ("RRG", "O16", "RRG_O16"), control_id, timestamp, (RRG_PROFILE,))
    msa = build_segment("MSA", code.value, original.control_id)
    return Message((msh, msa, *(e.segment() for e in errors)))


def _reply_msh(
    original: Message | None,
    message_type: tuple[str, str, str],
    control_id: str,
    timestamp: datetime,
    profile: tuple[tuple[str, str, str, str], ...],
    salvaged: SalvagedHeader | None = None,
) -> Segment:
    if original is None:
        header = salvaged if salvaged is not None else SalvagedHeader()
        return build_msh(
            sending_application=OUR_APPLICATION,
            sending_facility=OUR_APPLICATION,
            receiving_application=header.sending_application,
            receiving_facility=header.sending_facility,
            timestamp=timestamp,
            message_type=message_type,
            control_id=control_id,
            version=header.version or "2.6",
        )
    msh = original.msh
    return build_msh(
        sending_application=msh.components(5) or OUR_APPLICATION,
        sending_facility=msh.components(6) or OUR_APPLICATION,
        receiving_application=msh.components(3),
        receiving_facility=msh.components(4),
        timestamp=timestamp,
        message_type=message_type,
        control_id=control_id,
        version=original.version or "2.6",
        processing_id=msh.value(11).strip() or "P",
        profile=profile,
    )


def ack_code_of(message: Message) -> AckCode | None:
    """MSA-1 of an acknowledgement, or None when the message has no (valid) MSA."""
    msa = message.first("MSA")
    if msa is None:
        return None
    try:
        return AckCode(msa.value(1).strip())
    except ValueError:
        return None
