"""Patient association of a pump: read the current patient, associate one (sent to the pump as a command)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from smartpump.server.api.deps import SessionDep, StateDep, require_roles
from smartpump.server.api.schemas import PatientAssociate, PatientOut
from smartpump.server.auth import Access, Role
from smartpump.server.services import patients

router = APIRouter(prefix="/pumps", tags=["patients"])
PhiReader = Annotated[
    Access, require_roles(Role.NURSE, Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.AUDITOR)
]
Nurse = Annotated[Access, require_roles(Role.NURSE)]
Serial = Annotated[str, Path(max_length=64)]


@router.get("/{serial}/patient")
def read_patient(serial: Serial, access: PhiReader, session: SessionDep, state: StateDep) -> PatientOut:
    """The pump's current patient (an audited PHI read; 404 ``patient.not_associated`` when none)."""
    return PatientOut.model_validate(patients.read(session, state, access, serial))


@router.put("/{serial}/patient")
def associate_patient(
    serial: Serial, body: PatientAssociate, access: Nurse, session: SessionDep, state: StateDep
) -> PatientOut:
    """Associate a patient with the pump: recorded, audited and sent to the pump as ``patient.associate``."""
    association = patients.associate(session, state, access, serial, body.model_dump())
    return PatientOut.model_validate(association)
