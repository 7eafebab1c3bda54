"""The front panel's patient step: a wristband scan or typed entry becomes a patient identity, and the
associated patient is shown the way a nurse checks it (name, identifier, assigning authority)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from smartpump.pump.patient import SCAN_SEPARATOR, AssociationSource, PatientIdentity, parse_wristband
from smartpump.sim.patients import SYNTHETIC_AUTHORITY


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientLine:
    """How a screen shows a patient: ``DOE, John``, ``MRN 98765 (HOSP)`` and whether it is synthetic."""

    name: str
    identifier: str
    synthetic: bool


def identity_from_form(fields: Mapping[str, str]) -> tuple[PatientIdentity, AssociationSource]:
    """The identity the nurse scanned (wristband: ID or HL7 CX ``ID^^^AUTHORITY^TYPE``) or typed, with the
    name typed beside it; a typed authority or type fills what the scan leaves out.

    Raises:
        PumpError: ``pump.patient_invalid`` for an empty or malformed identity.
    """
    scan = fields.get("scan", "").strip()
    typed_authority = fields.get("authority", "").strip()
    typed_type = fields.get("id_type", "").strip() or "MR"
    if scan:
        patient_id, authority, id_type = parse_wristband(scan)
        if SCAN_SEPARATOR not in scan:
            authority, id_type = typed_authority, typed_type
        source = AssociationSource.SCAN
    else:
        patient_id, authority, id_type = fields.get("patient_id", "").strip(), typed_authority, typed_type
        source = AssociationSource.ENTRY
    identity = PatientIdentity(
        patient_id=patient_id,
        authority=authority,
        id_type=id_type,
        family_name=fields.get("family_name", "").strip(),
        given_name=fields.get("given_name", "").strip(),
    )
    return identity, source


def patient_line(
    patient_id: str, authority: str, id_type: str, family_name: str, given_name: str
) -> PatientLine:
    """The screen line of a patient (name in ``FAMILY, Given`` form, the identifier with its authority)."""
    name = ", ".join(p for p in (family_name.upper(), given_name) if p) or "name not known"
    where = f" ({authority})" if authority else ""
    return PatientLine(
        name=name,
        identifier=f"{id_type or 'ID'} {patient_id}{where}",
        synthetic=authority == SYNTHETIC_AUTHORITY,
    )


def line_of(patient: PatientIdentity | None) -> PatientLine | None:
    """The screen line of the pump's associated patient, or None."""
    if patient is None:
        return None
    return patient_line(
        patient.patient_id, patient.authority, patient.id_type, patient.family_name, patient.given_name
    )
