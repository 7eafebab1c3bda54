"""Device identity on the link: pumps held in quarantine (and admitting them), and seq conflicts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import Field, StringConstraints
from sqlalchemy import func, select

from smartpump.server.api.deps import ClockDep, PageDep, SessionDep, require_roles
from smartpump.server.api.schemas import Code, PumpOut
from smartpump.server.api.schemas import Request as RequestBody
from smartpump.server.api.schemas import Response as ResponseBody
from smartpump.server.auth import Access, Role
from smartpump.server.db.models import Pump
from smartpump.server.db.models_identity import SeqConflict
from smartpump.server.services import quarantine

router = APIRouter(prefix="/fleet", tags=["pumps"])
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
Reader = Annotated[Access, require_roles(Role.BIOMED, Role.AUDITOR)]
Serial = Annotated[str, Path(max_length=64)]


class QuarantinedOut(ResponseBody):
    """A pump held in quarantine: why, since when, and what it tried to send."""

    serial: str
    reason: str
    first_seen_at: datetime
    last_seen_at: datetime
    messages: int
    events: int


class AdmitIn(RequestBody):
    """Register a held pump in a facility."""

    facility_id: int = Field(ge=1, le=2**31 - 1)
    model: Code
    firmware: Code = "unknown"
    care_area: Code | None = None
    location: Annotated[str, StringConstraints(max_length=128)] | None = None


class SeqConflictOut(ResponseBody):
    """An event received for a seq the store holds with other content (kept, not dropped)."""

    pump: str
    seq: int
    type: str
    record: str
    detected_at: datetime


@router.get("/quarantine")
def list_quarantine(
    access: Reader, session: SessionDep, page: PageDep, response: Response
) -> list[QuarantinedOut]:
    """Pumps that spoke without being admitted (serials only: no facility owns them yet)."""
    rows, total = quarantine.pending(session, limit=page.limit, offset=page.offset)
    page.headers(response, total)
    return [QuarantinedOut.model_validate(row, from_attributes=True) for row in rows]


@router.post("/quarantine/{serial}/admit", status_code=status.HTTP_201_CREATED)
def admit(serial: Serial, body: AdmitIn, access: Biomed, session: SessionDep, clock: ClockDep) -> PumpOut:
    """Register a pump held as unknown in one of the caller's facilities; its next resend is stored."""
    pump = quarantine.admit(
        session,
        clock,
        access,
        serial,
        facility_id=body.facility_id,
        model=body.model,
        firmware=body.firmware,
        care_area=body.care_area,
        location=body.location,
    )
    return PumpOut.model_validate(pump)


@router.post("/quarantine/{serial}/reject", status_code=status.HTTP_204_NO_CONTENT)
def reject(serial: Serial, access: Biomed, session: SessionDep, clock: ClockDep) -> None:
    """Decide not to admit a held pump: it leaves the waiting list and stays refused (audited)."""
    quarantine.reject(session, clock, access, serial)


@router.get("/seq-conflicts")
def list_seq_conflicts(
    access: Reader, session: SessionDep, page: PageDep, response: Response
) -> list[SeqConflictOut]:
    """Seq conflicts of the visible pumps, newest first."""
    query = select(SeqConflict, Pump.serial).join(Pump, Pump.id == SeqConflict.pump_id)
    if access.scope is not None:
        query = query.where(Pump.facility_id.in_(access.scope))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.execute(
        query.order_by(SeqConflict.detected_at.desc(), SeqConflict.id).limit(page.limit).offset(page.offset)
    ).all()
    page.headers(response, total)
    return [
        SeqConflictOut(pump=serial, seq=c.seq, type=c.type, record=c.record, detected_at=c.detected_at)
        for c, serial in rows
    ]
