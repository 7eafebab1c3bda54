"""The fleet registry: pumps and their channels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from smartpump.server.api.deps import ClockDep, PageDep, SessionDep, require_roles
from smartpump.server.api.schemas import ChannelOut, EhrOrderOut, PumpCreate, PumpOut, PumpUpdate
from smartpump.server.auth import ALL_ROLES, Access, Role
from smartpump.server.services import fleet
from smartpump.server.services.ehr_order_list import ORDER_READERS, pump_orders
from smartpump.server.vocabulary import PumpStatus

router = APIRouter(prefix="/pumps", tags=["pumps"])
Reader = Annotated[Access, require_roles(*ALL_ROLES)]
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
OrderReader = Annotated[Access, require_roles(*ORDER_READERS)]
Serial = Annotated[str, Path(max_length=64)]


@router.get("")
def list_pumps(
    access: Reader,
    session: SessionDep,
    page: PageDep,
    response: Response,
    facility_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    status: PumpStatus | None = None,
    care_area: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
) -> list[PumpOut]:
    """Pumps of the caller's facilities, by serial."""
    pumps, total = fleet.list_pumps(
        session,
        access,
        facility_id=facility_id,
        status=status,
        care_area=care_area,
        model=model,
        limit=page.limit,
        offset=page.offset,
    )
    page.headers(response, total)
    return [PumpOut.model_validate(p) for p in pumps]


@router.post("", status_code=status.HTTP_201_CREATED)
def register_pump(body: PumpCreate, access: Biomed, session: SessionDep, clock: ClockDep) -> PumpOut:
    """Register a pump in a facility."""
    pump = fleet.register_pump(
        session,
        clock,
        access,
        facility_id=body.facility_id,
        serial=body.serial,
        model=body.model,
        firmware=body.firmware,
        care_area=body.care_area,
        location=body.location,
    )
    return PumpOut.model_validate(pump)


@router.get("/{serial}")
def get_pump(serial: Serial, access: Reader, session: SessionDep) -> PumpOut:
    """One pump."""
    return PumpOut.model_validate(fleet.get_pump(session, access, serial))


@router.patch("/{serial}")
def update_pump(
    serial: Serial, body: PumpUpdate, access: Biomed, session: SessionDep, clock: ClockDep
) -> PumpOut:
    """Move a pump, change its care area, or change its status."""
    pump = fleet.update_pump(
        session, clock, access, serial, location=body.location, care_area=body.care_area, status=body.status
    )
    return PumpOut.model_validate(pump)


@router.get("/{serial}/channels")
def pump_channels(serial: Serial, access: Reader, session: SessionDep) -> list[ChannelOut]:
    """The latest state of each channel."""
    return [ChannelOut.model_validate(c) for c in fleet.channels(session, access, serial)]


@router.get("/{serial}/orders")
def ehr_orders(
    serial: Serial, access: OrderReader, session: SessionDep, clock: ClockDep
) -> list[EhrOrderOut]:
    """The pump's latest EHR orders, newest first, each with its outcome (audited PHI read)."""
    return [EhrOrderOut.model_validate(o) for o in pump_orders(session, clock, access, serial)]
