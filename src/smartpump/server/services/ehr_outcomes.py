"""Order outcomes: every accepted EHR order ends in a state the EHR is told about, and frees its channel.

An offered order ends as ``started`` (linked by ``ehr_documentation.link_orders``; the PCD-10 delivery start
carries its id) or, without an infusion, as ``declined`` (the nurse's coded reason, from the pump's
``program.cancelled``), ``refused`` (the offer command's result from the pump) or ``expired`` (nobody acted
before ``expires_at``). Those three are stored on the order (PIV code, reason, the pump's code, when) and an
HL7 order gets the deferred RRG^O16 AR of ``interop.hl7v2.order_outcome`` in the outbound queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.interop.hl7v2.listener import new_control_id
from smartpump.interop.hl7v2.order_outcome import (
    DECLINED_PIV,
    EXPIRED_PIV,
    OrderEnd,
    OrderOutcome,
    build_order_outcome,
    piv_code_for_refusal,
)
from smartpump.pump.events import EventType
from smartpump.server.db.models import Event
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.services.ehr_config import SOURCE_HL7, EhrConfig
from smartpump.server.services.ehr_outbound import enqueue
from smartpump.server.services.patients import order_patient
from smartpump.server.vocabulary import OrderStatus

ENDED_WITHOUT_INFUSION: Final = tuple(end.value for end in OrderEnd)
EXPIRED_CODE: Final = "offer.expired"
NO_REASON: Final = "no reason given"


@dataclass(frozen=True, slots=True, kw_only=True)
class _End:
    end: OrderEnd
    piv_code: int
    pump_code: str
    reason: str
    at: datetime


def settle_offers(
    session: Session, now: datetime, *, pump_id: int | None = None, channel: str | None = None, expire: bool
) -> list[EhrOrder]:
    """End the offered orders (of one pump channel, or all) whose offer is over: refused by the pump, declined
    by the nurse, or, with ``expire``, past their expiry. Returns the orders it ended (the caller commits).

    Intake settles one channel with ``expire=False`` (an expired offer already frees the channel, and an
    infusion start not yet linked must not be read as an expiry); the documentation pass links starts first,
    then settles everything with ``expire=True``.
    """
    query = select(EhrOrder).where(EhrOrder.status == "offered", EhrOrder.pump_id.is_not(None))
    if pump_id is not None:
        query = query.where(EhrOrder.pump_id == pump_id)
    if channel is not None:
        query = query.where(EhrOrder.channel == channel)
    ended = []
    for order in session.scalars(query.order_by(EhrOrder.id)).all():
        end = _refused(session, order) or _declined(session, order)
        if end is None and expire and order.expires_at is not None and order.expires_at <= now:
            lifetime = int((order.expires_at - order.received_at).total_seconds())
            end = _End(
                end=OrderEnd.EXPIRED,
                piv_code=EXPIRED_PIV,
                pump_code=EXPIRED_CODE,
                reason=f"not started at the pump within {lifetime} s of the offer",
                at=order.expires_at,
            )
        if end is not None:
            order.status = OrderStatus(end.end)
            order.piv_code = end.piv_code
            order.outcome_code = end.pump_code[:64]
            order.reason = end.reason
            order.outcome_at = end.at
            ended.append(order)
    session.flush()
    return ended


def _refused(session: Session, order: EhrOrder) -> _End | None:
    """The pump's refusal of the offer command (or the command's expiry before it was sent), if any."""
    if order.command_nonce is None or order.pump_id is None:
        return None
    command = session.scalars(
        select(PumpCommand).where(
            PumpCommand.pump_id == order.pump_id, PumpCommand.nonce == order.command_nonce
        )
    ).one_or_none()
    if command is None or command.status not in ("refused", "expired"):
        return None
    at = command.result_at or command.expires_at
    if command.status == "expired":
        return _End(
            end=OrderEnd.EXPIRED,
            piv_code=EXPIRED_PIV,
            pump_code=command.result_code or "command.expired",
            reason="the offer expired before it reached the pump",
            at=at,
        )
    code = command.result_code or "command.refused"
    detail = command.result_reason or code
    return _End(
        end=OrderEnd.REFUSED,
        piv_code=piv_code_for_refusal(code),
        pump_code=code,
        reason=f"refused by pump {order.pump_serial}: {detail} ({code})",
        at=at,
    )


def _declined(session: Session, order: EhrOrder) -> _End | None:
    """The nurse's decline: an auto-programmed ``program.cancelled`` on the channel stored after the offer."""
    after = (
        Event.id > order.offer_event_id
        if order.offer_event_id is not None
        else Event.received_at >= order.received_at
    )
    cancels = session.scalars(
        select(Event)
        .where(
            Event.pump_id == order.pump_id,
            Event.channel == order.channel,
            Event.type == EventType.PROGRAM_CANCELLED,
            after,
        )
        .order_by(Event.id)
        .limit(20)
    ).all()
    for event in cancels:
        data = json.loads(event.data)
        if data.get("auto_programmed") is not True:
            continue
        code = str(data.get("reason") or "")
        words = code.replace("_", " ") if code else NO_REASON
        return _End(
            end=OrderEnd.DECLINED,
            piv_code=DECLINED_PIV,
            pump_code=code or "declined",
            reason=f"declined by the nurse at pump {order.pump_serial}: {words}",
            at=event.ts,
        )
    return None


def report_outcomes(session: Session, clock: Clock, destination: str, config: EhrConfig) -> int:
    """Queue the RRG^O16 AR of every HL7 order that ended without an infusion and was not yet reported;
    returns how many it queued (the caller commits)."""
    rows = session.scalars(
        select(EhrOrder)
        .where(
            EhrOrder.status.in_(ENDED_WITHOUT_INFUSION),
            EhrOrder.source == SOURCE_HL7,
            EhrOrder.outcome_reported_at.is_(None),
        )
        .order_by(EhrOrder.outcome_at, EhrOrder.id)
    ).all()
    now = clock.now()
    queued = 0
    for order in rows:
        outcome = OrderOutcome(
            order_id=order.order_id,
            order_control_id=order.control_id,
            patient=order_patient(session, order),
            end=OrderEnd(order.status),
            piv_code=order.piv_code or DECLINED_PIV,
            pump_code=order.outcome_code,
            reason=order.reason,
            ended_at=order.outcome_at or now,
        )
        message = build_order_outcome(
            outcome,
            control_id=new_control_id(),
            sent_at=now,
            receiving_application=order.sender.split("^")[0] or config.receiving_application,
            receiving_facility=config.receiving_facility,
            sending_application=config.sending_application,
        )
        queued += enqueue(
            session, clock, destination, message, source_key=f"outcome:{order.id}", order_id=order.order_id
        )
        order.outcome_reported_at = now
    session.flush()
    return queued
