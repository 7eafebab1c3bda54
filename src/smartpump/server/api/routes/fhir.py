"""FHIR R4 endpoints: Device (pumps, with channel DeviceMetrics), MedicationAdministration, Observation,
and MedicationRequest intake (auto-programming through the PCD-03 path). Answers are FHIR JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from smartpump import __version__
from smartpump.interop.fhir import capability
from smartpump.server.api.deps import (
    PUBLIC,
    JsonBody,
    PageDep,
    SessionDep,
    StateDep,
    body_schema,
    require_roles,
)
from smartpump.server.auth import ALL_ROLES, Access, Role
from smartpump.server.services import ehr_fhir

router = APIRouter(prefix="/fhir", tags=["fhir"])
FHIR_JSON: Final = "application/fhir+json"
Reader = Annotated[Access, require_roles(*ALL_ROLES)]
PhiReader = Annotated[
    Access, require_roles(Role.NURSE, Role.PHARMACIST, Role.PHARMACY_APPROVER, Role.AUDITOR)
]
Orderer = Annotated[Access, require_roles(Role.NURSE, Role.PHARMACIST)]
Dates = Annotated[
    list[str] | None, Query(max_length=4, description="e.g. ge2026-03-02, lt2026-03-03T12:00:00Z")
]


def _fhir(resource: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(resource, status_code=status, media_type=FHIR_JSON)


def fhir_base(request: Request) -> str:
    """The absolute base URL of this FHIR endpoint (``.../api/v1/fhir``), for ``fullUrl``."""
    return str(request.url_for("capability_statement")).removesuffix("/metadata")


@router.get("/metadata", response_class=JSONResponse, dependencies=[PUBLIC])
def capability_statement(request: Request, state: StateDep) -> JSONResponse:
    """The CapabilityStatement of this FHIR endpoint (public, as FHIR expects of ``/metadata``)."""
    return _fhir(
        capability.capability_statement(
            base_url=fhir_base(request), software_version=__version__, published=state.clock.now()
        )
    )


@router.get("/Device/{serial}", response_class=JSONResponse)
def read_device(
    serial: Annotated[str, Path(max_length=64)], access: Reader, session: SessionDep
) -> JSONResponse:
    """A pump as a FHIR Device (serial, EUI-64, MDC type, drug-library and firmware versions)."""
    return _fhir(ehr_fhir.device_resource(session, access, serial))


@router.get("/Device", response_class=JSONResponse)
def search_devices(
    request: Request,
    access: Reader,
    session: SessionDep,
    page: PageDep,
    identifier: Annotated[
        str | None, Query(max_length=128, description="serial or urn:ieee:eui-64|EUI")
    ] = None,
) -> JSONResponse:
    """Pumps of the caller's facilities as a Bundle of Devices, their channels' DeviceMetrics included."""
    return _fhir(
        ehr_fhir.search_devices(
            session,
            access,
            identifier=identifier,
            limit=page.limit,
            offset=page.offset,
            base_url=fhir_base(request),
        )
    )


@router.get("/MedicationAdministration", response_class=JSONResponse)
def search_administrations(
    http_request: Request,
    access: PhiReader,
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    patient: Annotated[str | None, Query(max_length=72)] = None,
    request: Annotated[
        str | None, Query(max_length=96, description="order id (MedicationRequest/<id>)")
    ] = None,
    date: Dates = None,
) -> JSONResponse:
    """Infusions started from EHR orders, by patient, order and start time (audited PHI read)."""
    bundle = ehr_fhir.medication_administrations(
        session,
        state,
        access,
        patient=patient,
        request=request,
        dates=ehr_fhir.parse_dates(date or []),
        limit=page.limit,
        offset=page.offset,
        base_url=fhir_base(http_request),
    )
    return _fhir(bundle)


@router.get("/Observation", response_class=JSONResponse)
def search_observations(
    request: Request,
    access: PhiReader,
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    device: Annotated[str | None, Query(max_length=72, description="pump serial (Device/<serial>)")] = None,
    date: Dates = None,
) -> JSONResponse:
    """Pump readings of ordered infusions (rate, volume infused), by pump and time (audited PHI read)."""
    bundle = ehr_fhir.observations(
        session,
        state,
        access,
        device_ref=device,
        dates=ehr_fhir.parse_dates(date or []),
        limit=page.limit,
        offset=page.offset,
        base_url=fhir_base(request),
    )
    return _fhir(bundle)


@router.post("/MedicationRequest", response_class=JSONResponse, openapi_extra=body_schema())
def create_medication_request(
    body: JsonBody, access: Orderer, session: SessionDep, state: StateDep
) -> JSONResponse:
    """Auto-program a pump from a MedicationRequest (the PCD-03 path): 201, or an OperationOutcome with
    the PIV code (422) or a structure problem (400)."""
    status, resource = ehr_fhir.submit_medication_request(session, state, access, body)
    return _fhir(resource, status)


@router.get("/MedicationRequest/{order_id}", response_class=JSONResponse)
def read_medication_request(
    order_id: Annotated[str, Path(max_length=64)], access: PhiReader, session: SessionDep, state: StateDep
) -> JSONResponse:
    """An order (HL7 or FHIR) as a MedicationRequest whose status is the order's outcome so far (audited
    PHI read; 404 outside the caller's facilities)."""
    return _fhir(ehr_fhir.read_medication_request(session, state, access, order_id))
