"""Facilities (hospitals) of the deployment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from smartpump.server.api.deps import ClockDep, SessionDep, require_roles
from smartpump.server.api.schemas import FacilityCreate, FacilityOut
from smartpump.server.auth import ALL_ROLES, Access, Role
from smartpump.server.services import users as service

router = APIRouter(prefix="/facilities", tags=["facilities"])


@router.get("")
def list_facilities(
    access: Annotated[Access, require_roles(*ALL_ROLES)], session: SessionDep
) -> list[FacilityOut]:
    """Facilities where the caller holds a role."""
    return [FacilityOut.model_validate(f) for f in service.list_facilities(session, access)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_facility(
    body: FacilityCreate,
    access: Annotated[Access, require_roles(Role.ADMIN)],
    session: SessionDep,
    clock: ClockDep,
) -> FacilityOut:
    """Create a facility (deployment-wide admins only)."""
    return FacilityOut.model_validate(
        service.create_facility(session, clock, access, code=body.code, name=body.name)
    )
