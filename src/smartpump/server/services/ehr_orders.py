"""EHR order intake: PCD-03 (and FHIR) orders checked like a manual program and offered to their pump.

An order is checked exactly like a manual program (``interop.hl7v2.pcd03.evaluate_order`` against the
facility's released library and the pump's care area), then offered to the pump as a pending
auto-programmed program the nurse confirms there. Refusals carry the IHE PIV code. Inbound messages
are de-duplicated by (MSH-3, MSH-10) in the database, so a repeat gets the original reply, even after a
restart, and is never acted on twice.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Final

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartpump.ders.program import InfusionProgram
from smartpump.errors import PumpError, SmartpumpError
from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.listener import new_control_id
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, parse
from smartpump.interop.hl7v2.pcd03 import (
    InfusionOrder,
    OrderDecision,
    OrderIntent,
    OrderRejected,
    evaluate_order,
    parse_order,
    reject,
    respond,
)
from smartpump.library.formats import json_format
from smartpump.library.model import DeviceType, DrugLibrary
from smartpump.pump.capabilities import capabilities
from smartpump.pump.channel import ChannelState
from smartpump.pump.delivery import Step
from smartpump.pump.persistence import program_to_dict
from smartpump.server import audit
from smartpump.server.auth import FacilityScope
from smartpump.server.db.models import Pump
from smartpump.server.db.models_ehr import EhrInbound, EhrOrder
from smartpump.server.db.repositories import ehr as repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.repositories import libraries as libraries_repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.db.unit_of_work import in_own_transaction, unit_of_work
from smartpump.server.services import fleet_view, patients
from smartpump.server.services.commands import issue_command
from smartpump.server.services.context import OrderContext
from smartpump.server.services.ehr_config import DEFAULT_CHANNEL, DEFAULT_CONFIG, SOURCE_HL7, EhrConfig
from smartpump.server.services.ehr_documentation import link_orders
from smartpump.server.services.ehr_outcomes import settle_offers
from smartpump.server.services.presence import Presence
from smartpump.transport.commands import OFFER_PROGRAM
from smartpump.transport.offers import OfferKind, ProgramOffer, offer_args

RUNNING_INTENTS: Final = frozenset(
    {OrderIntent.TITRATION, OrderIntent.BOLUS, OrderIntent.LOADING, OrderIntent.SECONDARY}
)
"""Orders acted on a channel that already runs an infusion."""


def submit_order(
    session: Session,
    state: OrderContext,
    order: InfusionOrder,
    *,
    source: str,
    sender: str,
    actor: str,
    scope: FacilityScope = None,
    config: EhrConfig = DEFAULT_CONFIG,
) -> OrderDecision:
    """Check an order like a manual program and offer it to its pump; store and audit the outcome.

    Refusals (returned as a decision with ``rejection``): 9003 no pump named, 9001 unknown pump or
    channel (or a pump outside ``scope``), 9007 pump offline or out of service, 9029 no care area,
    9010 no released library, every code of ``evaluate_order`` (9010 drug, 9024 hard limit, 9021 care
    area, 9022 stale...), 9002 channel busy, 9035 parent order mismatch (titration, bolus), 9034 bolus
    larger than the volume left, 9013/9030 no primary to piggyback on, 9016 PCA order to a non-PCA pump.
    """
    now = state.clock.now()
    channel = (order.channel or DEFAULT_CHANNEL).strip().upper()
    pump: Pump | None = None
    try:
        pump = _resolve_pump(session, order, channel, scope)
        _check_reachable(session, state, pump, now)
        library, care_area = _library_and_area(session, pump)
    except OrderRejected as rejection:
        decision = OrderDecision(order=order, rejection=rejection)
    else:
        decision = evaluate_order(order, library, care_area, now=now, max_age=config.max_order_age)
        if decision.accepted:
            # the channel's running order as the events now stand, whether or not documentation runs
            link_orders(session, state.clock)
            try:
                _check_offerable(session, decision, pump, channel, now)
            except OrderRejected as rejection:
                decision = OrderDecision(order=order, rejection=rejection)
    nonce = None
    if decision.accepted and pump is not None:
        decision, nonce = _offer(session, state, pump, channel, decision, actor=actor, config=config)
    row = EhrOrder(
        facility_id=pump.facility_id if pump is not None else None,
        pump_id=pump.id if pump is not None else None,
        pump_serial=order.pump_id[:64],
        channel=channel[:8],
        order_id=order.order_id[:64],
        parent_order_id=order.parent_order_id[:64],
        source=source,
        sender=sender[:227],
        control_id=order.control_id[:199],
        patient_id=order.patient_id[:64],
        prescriber_id=order.prescriber_id[:64],
        prescriber_name=order.prescriber_name[:128],
        status="offered" if decision.accepted else "rejected",
        piv_code=decision.rejection.error_code if decision.rejection else None,
        reason=decision.rejection.reason if decision.rejection else "",
        drug=order.drug_text[:128],
        drug_code=order.drug_code[:64],
        program=json.dumps([program_to_dict(p) for p in decision.programs], sort_keys=True),
        received_at=now,
        expires_at=now + timedelta(seconds=config.offer_expires_in_s) if decision.accepted else None,
        command_nonce=nonce,
        offer_event_id=repo.last_event_id(session) if nonce is not None else None,
    )
    session.add(row)
    patients.record_order_patient(session, row, order, now)
    audit.append(
        session,
        state.clock,
        actor=actor[:64],
        action="ehr.order",
        object_type="order",
        object_id=order.order_id[:128],
        facility_id=row.facility_id,
        outcome="accepted" if decision.accepted else "rejected",
        details={
            "source": source,
            "pump": order.pump_id,
            "channel": channel,
            "piv_code": row.piv_code,
            "reason": row.reason,
            "alerts": [a.rule for v in decision.verdicts for a in v.alerts],
        },
    )
    return decision


def _resolve_pump(session: Session, order: InfusionOrder, channel: str, scope: FacilityScope) -> Pump:
    if not order.pump_id:
        raise OrderRejected(9003, "the order names no pump (OBX MDC_DEV_PUMP_INFUS_VMD, OBX-18)")
    pump = fleet_repo.pump_by_serial(session, order.pump_id)
    if pump is None or (scope is not None and pump.facility_id not in scope):
        raise OrderRejected(9001, f"no pump {order.pump_id!r} is known")
    try:
        channel_count = capabilities(pump.model).max_channels
    except PumpError:
        channel_count = 4
    if channel not in "ABCD"[:channel_count] or len(channel) != 1:
        raise OrderRejected(9001, f"pump {pump.serial} has no channel {channel!r}")
    return pump


def _check_reachable(session: Session, state: OrderContext, pump: Pump, now: datetime) -> None:
    if pump.status in ("out_of_service", "retired"):
        raise OrderRejected(9007, f"pump {pump.serial} is {pump.status.replace('_', ' ')}")
    presence = fleet_view.presence_by_pump(session, [pump], now, state.settings.offline_after_s)[pump.id]
    if presence is Presence.OFFLINE:
        raise OrderRejected(9007, f"pump {pump.serial} is offline")
    if presence is Presence.SILENT:
        offline_after = timedelta(seconds=state.settings.offline_after_s)
        raise OrderRejected(9007, f"pump {pump.serial} has not been heard from within {offline_after}")


@lru_cache(maxsize=32)
def _library(content_hash: str, document: str) -> DrugLibrary:
    """A released library document read once per content hash."""
    return json_format.loads(document)


def _library_and_area(session: Session, pump: Pump) -> tuple[DrugLibrary, str]:
    if not pump.care_area:
        raise OrderRejected(9029, f"pump {pump.serial} has no care area selected")
    version = libraries_repo.released_in(session, pump.facility_id)
    if version is None:
        raise OrderRejected(9010, f"the facility of pump {pump.serial} has no released drug library")
    return _library(version.content_hash, version.document), pump.care_area


def _check_offerable(
    session: Session, decision: OrderDecision, pump: Pump, channel: str, now: datetime
) -> None:
    """Whether the channel can take the order now: free for a new program, running the parent order for a
    titration, bolus or loading dose, running a primary for a piggyback; no offer awaiting confirmation."""
    order = decision.order
    intent = order.intent
    settle_offers(session, now, pump_id=pump.id, channel=channel, expire=False)
    if intent is OrderIntent.PCA and _device_type(pump) is not DeviceType.PCA:
        raise OrderRejected(9016, f"pump {pump.serial} is not a PCA pump")
    state_row = fleet_repo.channel(session, pump.id, channel)
    state = state_row.state if state_row is not None else ChannelState.IDLE
    in_use = state != ChannelState.IDLE
    where = f"channel {channel} of pump {pump.serial}"
    if intent in RUNNING_INTENTS:
        if intent is OrderIntent.SECONDARY:
            if not in_use:
                raise OrderRejected(9013, f"{where} runs no primary infusion to piggyback on")
            if state != ChannelState.RUNNING:
                raise OrderRejected(9030, f"{where} is {state}: its infusion cannot take a piggyback now")
        else:
            _check_parent(session, order, pump, channel, where, in_use)
            if intent is not OrderIntent.TITRATION and state_row is not None:
                _check_bolus_volume(decision, state_row.vtbi_ml, state_row.volume_infused_ml, where)
    elif in_use:
        raise OrderRejected(9002, f"{where} is {state}")
    waiting = repo.offered_order(session, pump.id, channel, received_by=now)
    if waiting is not None and waiting.expires_at is not None and waiting.expires_at > now:
        raise OrderRejected(9002, f"{where} holds order {waiting.order_id} awaiting confirmation")


def _check_parent(
    session: Session, order: InfusionOrder, pump: Pump, channel: str, where: str, in_use: bool
) -> None:
    """9035 unless the channel runs the order's infusion (a titration's own id, a bolus's parent id)."""
    parent = order.order_id if order.intent is OrderIntent.TITRATION else order.parent_order_id
    if not in_use:
        raise OrderRejected(9035, f"{where} runs no infusion (order {parent or '?'} is not running)")
    running = repo.started_order(session, pump.id, channel)
    if running is None or not parent or running.order_id != parent:
        current = running.order_id if running is not None else "no order"
        raise OrderRejected(9035, f"{where} runs {current}, not order {parent or '(none named)'}")


def _check_bolus_volume(
    decision: OrderDecision, vtbi_ml: Decimal | None, infused_ml: Decimal | None, where: str
) -> None:
    """9034 when the bolus volume (rate x duration) is more than the running infusion has left."""
    program, verdict = decision.programs[0], decision.verdicts[0]
    if vtbi_ml is None or program.duration_min is None:
        return
    left = vtbi_ml - (infused_ml or Decimal(0))
    volume = verdict.rate_ml_per_h_exact * program.duration_min / 60
    if volume > left:
        raise OrderRejected(9034, f"the {volume:.2f} mL bolus is more than the {left} mL left on {where}")


def _device_type(pump: Pump) -> DeviceType | None:
    try:
        return capabilities(pump.model).device_type
    except PumpError:
        return None


def program_offer(decision: OrderDecision, channel: str) -> ProgramOffer:
    """The offer of an accepted order: its first program with the dose (or else the rate) it was checked
    with; a multistep sends the checked rate of every step, a bolus or loading dose names its parent."""
    order, program = decision.order, decision.programs[0]
    kind = OfferKind(order.intent.value)
    steps: tuple[Step, ...] = ()
    if kind is OfferKind.MULTISTEP:
        program = replace(
            program, dose=None, dose_unit=None, rate_ml_per_h=decision.verdicts[0].rate_ml_per_h, vtbi_ml=None
        )
        steps = tuple(
            Step(rate_ml_per_h=v.rate_ml_per_h, volume_ml=_step_volume(p))
            for p, v in zip(decision.programs, decision.verdicts, strict=True)
        )
    elif program.dose is not None and program.dose_unit is not None:
        program = replace(program, rate_ml_per_h=None)
    else:
        program = replace(program, dose=None, dose_unit=None)
    return ProgramOffer(
        order_id=order.order_id,
        patient_id=order.patient_id,
        channel=channel,
        kind=kind,
        program=program,
        steps=steps,
        parent_order_id=order.parent_order_id if kind in (OfferKind.BOLUS, OfferKind.LOADING) else "",
        prescriber=(order.prescriber or "")[:200],
    )


def _step_volume(program: InfusionProgram) -> Decimal:
    """A multistep step's volume (``evaluate_order`` refuses a step without one: 9041)."""
    if program.vtbi_ml is None:
        raise OrderRejected(9041, "a step of the multistep order has no volume (RXG-5)")
    return program.vtbi_ml


def _offer(
    session: Session,
    state: OrderContext,
    pump: Pump,
    channel: str,
    decision: OrderDecision,
    *,
    actor: str,
    config: EhrConfig,
) -> tuple[OrderDecision, str | None]:
    """Send the program to the pump as a pending auto-programmed offer (queued with the order's unit); returns
    the decision (a 9007 refusal when the command could not be issued) and the command's nonce."""
    order = decision.order
    try:
        command = issue_command(
            session,
            state,
            pump_serial=pump.serial,
            command=OFFER_PROGRAM,
            args=offer_args(program_offer(decision, channel)),
            actor=actor[:64],
            expires_in_s=config.offer_expires_in_s,
        )
    except SmartpumpError as error:
        session.rollback()
        rejection = OrderRejected(
            9007, f"the program could not be sent to pump {pump.serial}: {error.message}"
        )
        return OrderDecision(order=order, rejection=rejection), None
    return decision, command.nonce


class OrderListener:
    """The MLLP listener's handler: each RGV^O15 is answered once, the reply kept in the database."""

    def __init__(self, state: OrderContext, config: EhrConfig = DEFAULT_CONFIG) -> None:
        self._state = state
        self._config = config

    async def handle(self, message: Message) -> Message:
        """Answer one parsed inbound message (database work runs in a worker thread)."""
        return await asyncio.to_thread(self.answer, message)

    def answer(self, message: Message) -> Message:
        """The reply to a message: the stored one for a repeat, else the outcome of the order.

        Raises:
            Hl7ParseError: not an RGV^O15, an unreadable order, or the same message still in progress
                (the listener answers AE/AR; nothing is acted on).
        """
        sender = message.msh.value(3).strip()[:227]
        control_id = message.control_id[:199]
        with unit_of_work(self._state.sessions) as session:
            stored = repo.inbound(session, sender, control_id)
            if stored is not None:
                return _stored_reply(stored)
            if message.message_type[:2] != ("RGV", "O15"):
                raise Hl7ParseError(
                    f"{message.type_text} is not accepted here (only RGV^O15 orders)",
                    code="hl7.unsupported_type",
                )
            claim = EhrInbound(
                sender=sender,
                control_id=control_id,
                message_type=message.type_text[:32],
                received_at=self._state.clock.now(),
                ack_code="",
                reply="",
            )
            try:
                with in_own_transaction(session):
                    session.add(claim)
            except IntegrityError:
                stored = repo.inbound(session, sender, control_id)
                assert stored is not None
                return _stored_reply(stored)
            try:
                reply, order_id = self._process(session, message, sender)
            except BaseException:
                session.rollback()
                with in_own_transaction(session):
                    session.execute(delete(EhrInbound).where(EhrInbound.id == claim.id))
                raise
            claim.reply = reply.to_er7()
            code = ack_code_of(reply)
            claim.ack_code = code.value if code is not None else ""
            claim.order_id = order_id[:64] if order_id else None
            return reply

    def _process(self, session: Session, message: Message, sender: str) -> tuple[Message, str | None]:
        now = self._state.clock.now()
        control_id = new_control_id()
        try:
            order = parse_order(message, local_zone=self._state.settings.hl7_zone)
        except OrderRejected as rejection:
            return reject(message, rejection, control_id=control_id, timestamp=now), None
        scope = _facility_scope(session, message)
        decision = submit_order(
            session,
            self._state,
            order,
            source=SOURCE_HL7,
            sender=sender,
            actor=(sender.split("^")[0] or "ehr")[:64],
            scope=scope,
            config=self._config,
        )
        return respond(message, decision, control_id=control_id, timestamp=now), order.order_id


def _stored_reply(stored: EhrInbound) -> Message:
    if not stored.reply:
        raise Hl7ParseError(f"message {stored.control_id} is still being processed", code="hl7.in_progress")
    return parse(stored.reply)


def _facility_scope(session: Session, message: Message) -> FacilityScope:
    """The facility named by MSH-6 (receiving facility) when it is a facility code; else the whole system."""
    code = message.msh.value(6).strip()
    facility = users_repo.facility_by_code(session, code) if code else None
    return None if facility is None else frozenset({facility.id})
