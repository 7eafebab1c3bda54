"""A pump's EHR orders as the API and the pump page show them: each with where it stands and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server import audit
from smartpump.server.auth import PHI_ROLES, Access
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.errors import AccessDeniedError
from smartpump.server.services import fleet
from smartpump.server.services.ehr_documentation import link_orders
from smartpump.server.services.ehr_outcomes import settle_offers

ORDER_READERS: Final = PHI_ROLES
"""Roles that read a pump's EHR orders (they name patients)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderView:
    """One EHR order of a pump as the API and the pump page show it: where it stands and why."""

    order_id: str
    parent_order_id: str
    source: str
    channel: str
    patient_id: str
    prescriber_id: str
    prescriber_name: str
    drug: str
    status: str
    piv_code: int | None
    reason: str
    outcome_code: str
    received_at: datetime
    expires_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    outcome_at: datetime | None
    outcome_reported_at: datetime | None


def pump_orders(
    session: Session, clock: Clock, access: Access, serial: str, *, limit: int = 50
) -> Sequence[OrderView]:
    """The latest EHR orders of a pump, newest first, with their outcome brought up to date first (orders
    linked to their infusions, ended offers settled); PHI: the read is audited.

    Raises:
        NotFoundError: ``pump.not_found`` for a pump the caller cannot see.
        AccessDeniedError: ``ehr.orders_denied`` without a clinical or auditor role in its facility.
    """
    pump = fleet.get_pump(session, access, serial)
    if not access.principal.roles_in(pump.facility_id) & ORDER_READERS:
        raise AccessDeniedError("EHR orders carry patient identifiers", code="ehr.orders_denied")
    link_orders(session, clock)
    settle_offers(session, clock.now(), pump_id=pump.id, expire=True)
    rows = session.scalars(
        select(EhrOrder).where(EhrOrder.pump_id == pump.id).order_by(EhrOrder.id.desc()).limit(limit)
    ).all()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="phi.orders_read",
        object_type="pump",
        object_id=pump.serial,
        facility_id=pump.facility_id,
        details={"patients_returned": sorted({r.patient_id for r in rows})},
    )
    return [
        OrderView(
            order_id=r.order_id,
            parent_order_id=r.parent_order_id,
            source=r.source,
            channel=r.channel,
            patient_id=r.patient_id,
            prescriber_id=r.prescriber_id,
            prescriber_name=r.prescriber_name,
            drug=r.drug,
            status=r.status,
            piv_code=r.piv_code,
            reason=r.reason,
            outcome_code=r.outcome_code,
            received_at=r.received_at,
            expires_at=r.expires_at,
            started_at=r.started_at,
            ended_at=r.ended_at,
            outcome_at=r.outcome_at,
            outcome_reported_at=r.outcome_reported_at,
        )
        for r in rows
    ]
