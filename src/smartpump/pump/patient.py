"""Who the pump is associated with: the patient's identifier, its assigning authority and name.

A nurse associates the patient at the bedside (wristband scan or typed entry), or the server does it from
an EHR's patient context; the pump emits ``patient.associated`` so the association reaches the server
and the EHR documentation in the event stream like every other state change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from smartpump.errors import PumpError

MAX_ID_CHARS: Final = 64
MAX_NAME_CHARS: Final = 64
ID_TYPES: Final = frozenset({"MR", "PI", "PT", "PN", "AN", "NI", "U"})
"""HL7 table 0203 identifier types a patient association may carry (MR medical record number, PI patient
internal identifier, PT patient external identifier, PN person number, AN account number, NI national
unique individual identifier, U unspecified)."""
SCAN_SEPARATOR: Final = "^"


class AssociationSource(StrEnum):
    """Where an association came from: the pump's own panel (scan or typed) or the server (API, order)."""

    SCAN = "scan"
    ENTRY = "entry"
    SERVER = "server"
    ORDER = "order"


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientIdentity:
    """An associated patient: identifier (PID-3.1), assigning authority (PID-3.4), type (PID-3.5), name."""

    patient_id: str
    authority: str = ""
    id_type: str = "MR"
    family_name: str = ""
    given_name: str = ""

    def __post_init__(self) -> None:
        _check_text(self.patient_id, "patient id", MAX_ID_CHARS, required=True)
        _check_text(self.authority, "assigning authority", MAX_ID_CHARS)
        _check_text(self.family_name, "family name", MAX_NAME_CHARS)
        _check_text(self.given_name, "given name", MAX_NAME_CHARS)
        if self.id_type not in ID_TYPES:
            raise PumpError(
                f"identifier type {self.id_type!r} is not one of {', '.join(sorted(ID_TYPES))}",
                code="pump.patient_invalid",
            )


def _check_text(value: str, what: str, limit: int, *, required: bool = False) -> None:
    if value != value.strip():
        raise PumpError(f"the {what} has leading or trailing spaces", code="pump.patient_invalid")
    if required and not value:
        raise PumpError(f"the {what} is empty", code="pump.patient_invalid")
    if len(value) > limit:
        raise PumpError(f"the {what} is longer than {limit} characters", code="pump.patient_invalid")
    if any(not c.isprintable() or c in "|^~\\&" for c in value):
        raise PumpError(
            f"the {what} {value!r} holds a control or HL7 delimiter character", code="pump.patient_invalid"
        )


def parse_wristband(scan: str) -> tuple[str, str, str]:
    """A wristband barcode as (patient id, authority, id type): ``ID`` alone, or HL7 CX ``ID^^^AUTH^TYPE``.

    Raises:
        PumpError: ``pump.patient_invalid`` for an empty scan or a CX with more than 5 components.
    """
    text = scan.strip()
    if not text:
        raise PumpError("the wristband scan is empty", code="pump.patient_invalid")
    parts = text.split(SCAN_SEPARATOR)
    if len(parts) > 5:
        raise PumpError(
            f"the wristband scan {text!r} is not an identifier or an HL7 CX (ID^^^AUTHORITY^TYPE)",
            code="pump.patient_invalid",
        )
    parts += [""] * (5 - len(parts))
    return parts[0].strip(), parts[3].strip(), parts[4].strip() or "MR"


def identity_from(data: Mapping[str, object]) -> PatientIdentity:
    """A patient identity from event data or command arguments (``patient_id``, ``authority``, ``id_type``,
    ``family_name``, ``given_name``).

    Raises:
        PumpError: ``pump.patient_invalid`` for a missing or malformed field.
    """
    return PatientIdentity(
        patient_id=str(data.get("patient_id") or ""),
        authority=str(data.get("authority") or ""),
        id_type=str(data.get("id_type") or "MR"),
        family_name=str(data.get("family_name") or ""),
        given_name=str(data.get("given_name") or ""),
    )
