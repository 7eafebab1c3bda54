"""EHR integration in the server: orders in (PCD-03 over MLLP, FHIR MedicationRequest) offered to pumps,
and auto-documentation out (PCD-10 / PCD-04 / PCD-01) through a persistent store-and-forward queue.

An order is checked exactly like a manual program (``interop.hl7v2.pcd03.evaluate_order`` against the
facility's released library and the pump's care area), then offered to the pump as a pending
auto-programmed program the nurse confirms there. Refusals carry the IHE PIV code. Inbound messages
are de-duplicated by (MSH-3, MSH-10) in the database, so a repeat gets the original reply, even after a
restart, and is never acted on twice. Outbound messages live in ``ehr_outbound`` (the server database,
not a side file) and leave it only on a positive acknowledgement.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.errors import PumpError, SmartpumpError, UnitError
from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.listener import new_control_id
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, parse
from smartpump.interop.hl7v2.mllp import MllpError
from smartpump.interop.hl7v2.outbox import Backoff, DrainResult
from smartpump.interop.hl7v2.pcd01 import build_pcd01
from smartpump.interop.hl7v2.pcd03 import (
    DEFAULT_MAX_ORDER_AGE,
    InfusionOrder,
    OrderDecision,
    OrderIntent,
    OrderRejected,
    evaluate_order,
    parse_order,
    reject,
    respond,
)
from smartpump.interop.hl7v2.pcd04 import build_pcd04
from smartpump.interop.hl7v2.pcd10 import build_pcd10, rate_change_reports
from smartpump.interop.hl7v2.reports import (
    AlarmPhase,
    AlarmPriority,
    AlarmReport,
    AlarmState,
    AlertKind,
    DeliveryStatus,
    DeviceIdentity,
    InactivationState,
    InfusionEventKind,
    InfusionEventReport,
    PatientContext,
    ProgramDeliveryMode,
    PumpStatusReport,
    SourceChannel,
    SourceKind,
)
from smartpump.library.formats import json_format
from smartpump.library.model import DeviceType, DrugLibrary
from smartpump.pump.capabilities import capabilities
from smartpump.pump.persistence import program_to_dict
from smartpump.server import audit
from smartpump.server.auth import FacilityScope
from smartpump.server.db.models import Event, Pump
from smartpump.server.db.models_ehr import EhrInbound, EhrOrder, EhrOutbound
from smartpump.server.db.repositories import ehr as repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.repositories import libraries as libraries_repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.event_data import decimal_or_none
from smartpump.server.services import fleet_view
from smartpump.server.services.commands import issue_command
from smartpump.server.services.presence import Presence
from smartpump.server.state import ServerState
from smartpump.units import Concentration, DoseUnit

OFFER_COMMAND: Final = "offer_program"
DEFAULT_CHANNEL: Final = "A"
DEFAULT_BACKOFF: Final = Backoff()
SOURCE_HL7: Final = "hl7"
SOURCE_FHIR: Final = "fhir"
IDLE_CHANNEL_STATES: Final = frozenset({"idle", "complete"})
LINK_CURSOR: Final = "link"
DOCUMENT_CURSOR: Final = "hl7"
BATCH: Final = 500
LINK_TYPES: Final = (
    "infusion.started",
    "infusion.stopped",
    "infusion.completed",
    "rate.changed",
    "bolus.started",
    "bolus.completed",
    "bolus.cancelled",
    "secondary.started",
    "secondary.completed",
)
OVERLAY_STARTS: Final = frozenset({"bolus.started", "secondary.started"})
OVERLAY_ENDS: Final = frozenset({"bolus.completed", "bolus.cancelled", "secondary.completed"})
RUNNING_INTENTS: Final = frozenset(
    {OrderIntent.TITRATION, OrderIntent.BOLUS, OrderIntent.LOADING, OrderIntent.SECONDARY}
)
"""Orders acted on a channel that already runs an infusion."""
DOCUMENTED_TYPES: Final = (
    "infusion.started",
    "infusion.stopped",
    "infusion.completed",
    "rate.changed",
    "bolus.started",
    "bolus.completed",
    "bolus.cancelled",
    "alarm.raised",
    "alarm.cleared",
    "alarm.silenced",
)
_PRIORITY: Final = {"high": AlarmPriority.HIGH, "medium": AlarmPriority.MEDIUM, "low": AlarmPriority.LOW}
_ALARM_TERMS: Final = {
    "occlusion.downstream": ("MDC_EVT_FLUID_LINE_OCCL", 196940),
    "occlusion.upstream": ("MDC_EVT_FLUID_LINE_OCCL", 196940),
    "door.open": ("MDC_EVT_STAT_DOOR_OPEN", 202828),
    "battery.low": ("MDC_EVT_BATT_LO", 196802),
    "syringe.near_empty": ("MDC_EVT_ADVIS_PUMP_SYRINGE_REPLACE_WARN", 203320),
}
"""Pump alarms with an MDC event term of their own; every other alarm is sent as MDC_EVT_ALARM + its text."""
_ADVISORY_ALARMS: Final = frozenset(
    {"infusion.near_end", "infusion.kvo", "set.change_due", "infiltration.advisory"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EhrConfig:
    """Order intake and documentation settings: order age limit, offer lifetime, identity of our messages."""

    max_order_age: timedelta = DEFAULT_MAX_ORDER_AGE
    offer_expires_in_s: int = 600
    sending_application: str = "SMARTPUMP"
    receiving_application: str = "EHR"
    receiving_facility: str = "EHR"
    status_interval: timedelta | None = timedelta(minutes=5)


# ----------------------------------------------------------------------------------------- order intake


def submit_order(
    session: Session,
    state: ServerState,
    order: InfusionOrder,
    *,
    source: str,
    sender: str,
    actor: str,
    scope: FacilityScope = None,
    config: EhrConfig = EhrConfig(),
) -> OrderDecision:
    """Check an order like a manual program and offer it to its pump; store and audit the outcome; commit.

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
            try:
                _check_offerable(session, decision, pump, channel, now)
            except OrderRejected as rejection:
                decision = OrderDecision(order=order, rejection=rejection)
    if decision.accepted and pump is not None:
        decision = _offer(session, state, pump, channel, decision, actor=actor, config=config)
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
        status="offered" if decision.accepted else "rejected",
        piv_code=decision.rejection.error_code if decision.rejection else None,
        reason=decision.rejection.reason if decision.rejection else "",
        drug=order.drug_text[:128],
        drug_code=order.drug_code[:64],
        program=json.dumps([program_to_dict(p) for p in decision.programs], sort_keys=True),
        received_at=now,
        expires_at=now + timedelta(seconds=config.offer_expires_in_s) if decision.accepted else None,
    )
    session.add(row)
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
    session.commit()
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


def _check_reachable(session: Session, state: ServerState, pump: Pump, now: datetime) -> None:
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
    if intent is OrderIntent.PCA and _device_type(pump) is not DeviceType.PCA:
        raise OrderRejected(9016, f"pump {pump.serial} is not a PCA pump")
    state_row = fleet_repo.channel(session, pump.id, channel)
    state = state_row.state if state_row is not None else "idle"
    in_use = state not in IDLE_CHANNEL_STATES
    where = f"channel {channel} of pump {pump.serial}"
    if intent in RUNNING_INTENTS:
        if intent is OrderIntent.SECONDARY:
            if not in_use:
                raise OrderRejected(9013, f"{where} runs no primary infusion to piggyback on")
            if state != "running":
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


def offer_args(decision: OrderDecision, channel: str) -> dict[str, object]:
    """The ``offer_program`` command arguments: order, patient, channel, entry, kind, concentration and the
    dose or rate; a bolus names its parent order, a PCA its settings, a multistep its steps (rate, volume)."""
    order, program = decision.order, decision.programs[0]
    intent = order.intent
    args: dict[str, object] = {
        "order_id": order.order_id,
        "patient_id": order.patient_id,
        "channel": channel,
        "entry_id": program.entry_id or "",
        "kind": intent.value,
        "program_kind": program.kind.value,
        "route": program.route.value,
    }
    if intent is OrderIntent.MULTISTEP:
        args["rate_ml_per_h"] = str(decision.verdicts[0].rate_ml_per_h)
        args["steps"] = [
            {"rate_ml_per_h": str(v.rate_ml_per_h), "volume_ml": str(p.vtbi_ml)}
            for p, v in zip(decision.programs, decision.verdicts, strict=True)
        ]
    elif program.dose is not None and program.dose_unit is not None:
        args |= {"dose": str(program.dose), "dose_unit": str(program.dose_unit)}
    elif program.rate_ml_per_h is not None:
        args["rate_ml_per_h"] = str(program.rate_ml_per_h)
    if intent in (OrderIntent.BOLUS, OrderIntent.LOADING):
        args["parent_order_id"] = order.parent_order_id
    concentration = program.concentration
    if concentration is not None:
        args |= {
            "concentration_amount": str(concentration.amount),
            "concentration_unit": str(concentration.unit),
            "concentration_volume_ml": str(concentration.volume_ml),
        }
    vtbi = None if intent is OrderIntent.MULTISTEP else program.vtbi_ml
    patient = program.patient
    for name, value in (
        ("vtbi_ml", vtbi),
        ("weight_kg", patient.weight_kg),
        ("height_cm", patient.height_cm),
        ("bsa_m2", patient.bsa_m2),
        ("duration_min", program.duration_min),
    ):
        if value is not None:
            args[name] = str(value)
    pca = program.pca
    if pca is not None:
        for name, number in (
            ("pca_demand_dose", pca.demand_dose),
            ("pca_lockout_min", pca.lockout_min),
            ("pca_basal", pca.basal),
            ("pca_loading_dose", pca.loading_dose),
            ("pca_max_dose", pca.max_dose),
            ("pca_max_dose_window_h", pca.max_dose_window_h),
        ):
            if number is not None:
                args[name] = str(number)
    return args


def _offer(
    session: Session,
    state: ServerState,
    pump: Pump,
    channel: str,
    decision: OrderDecision,
    *,
    actor: str,
    config: EhrConfig,
) -> OrderDecision:
    """Send the program to the pump as a pending auto-programmed offer (the command commits itself)."""
    order = decision.order
    try:
        issue_command(
            session,
            state,
            pump_serial=pump.serial,
            command=OFFER_COMMAND,
            args=offer_args(decision, channel),
            actor=actor[:64],
            expires_in_s=config.offer_expires_in_s,
        )
    except SmartpumpError as error:
        session.rollback()
        rejection = OrderRejected(
            9007, f"the program could not be sent to pump {pump.serial}: {error.message}"
        )
        return OrderDecision(order=order, rejection=rejection)
    return decision


class OrderListener:
    """The MLLP listener's handler: each RGV^O15 is answered once, the reply kept in the database."""

    def __init__(self, state: ServerState, config: EhrConfig = EhrConfig()) -> None:
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
        with self._state.sessions() as session:
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
            session.add(claim)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                stored = repo.inbound(session, sender, control_id)
                assert stored is not None
                return _stored_reply(stored)
            try:
                reply, order_id = self._process(session, message, sender)
            except BaseException:
                session.rollback()
                session.execute(delete(EhrInbound).where(EhrInbound.id == claim.id))
                session.commit()
                raise
            claim.reply = reply.to_er7()
            code = ack_code_of(reply)
            claim.ack_code = code.value if code is not None else ""
            claim.order_id = order_id[:64] if order_id else None
            session.commit()
            return reply

    def _process(self, session: Session, message: Message, sender: str) -> tuple[Message, str | None]:
        now = self._state.clock.now()
        control_id = new_control_id()
        try:
            order = parse_order(message)
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


# ----------------------------------------------------------------------------------------- documentation


def _unit(value: object) -> DoseUnit | None:
    if not value:
        return None
    try:
        return DoseUnit.parse(str(value))
    except UnitError:
        return None


def _concentration(value: object) -> Concentration | None:
    if not value:
        return None
    try:
        return Concentration.parse(str(value))
    except UnitError:
        return None


def eui64(serial: str) -> str:
    """The EUI-64 we report for a pump: the first 64 bits of SHA-256 of its serial, in hex (stable)."""
    return hashlib.sha256(serial.encode("utf-8")).hexdigest()[:16].upper()


def device_identity(pump: Pump, config: EhrConfig = EhrConfig()) -> DeviceIdentity:
    """How our messages and FHIR resources name a pump: its serial, EUI-64 and MDS/VMD terms."""
    try:
        large_volume = capabilities(pump.model).device_type is DeviceType.LARGE_VOLUME
    except PumpError:
        large_volume = False
    kind = "LVP_" if large_volume else ""
    return DeviceIdentity(
        device_id=pump.serial,
        eui64=eui64(pump.serial),
        mds_refid=f"MDC_DEV_PUMP_INFUS_{kind}MDS",
        vmd_refid=f"MDC_DEV_PUMP_INFUS_{kind}VMD",
        sending_application=config.sending_application,
        receiving_application=config.receiving_application,
        receiving_facility=config.receiving_facility,
    )


def event_data(event: Event) -> dict[str, Any]:
    """An event's data object."""
    data: dict[str, Any] = json.loads(event.data)
    return data


def link_orders(session: Session, clock: Clock) -> int:
    """Link new infusion events to the orders they carry out (offered -> started -> stopped/completed).

    An auto-programmed ``infusion.started`` takes the newest order offered on its channel before the
    server received it; a stop or completion ends the channel's started order. Idempotent: it reads
    the event store from its own cursor. Returns how many events it read (the caller commits).
    """
    now = clock.now()
    cursor = repo.cursor(session, LINK_CURSOR, now)
    rows = repo.events_after(session, cursor.last_event_id, LINK_TYPES, limit=BATCH)
    for event, pump in rows:
        channel = event.channel or DEFAULT_CHANNEL
        if event.type == "rate.changed" or event.type in OVERLAY_STARTS or event.type in OVERLAY_ENDS:
            _link_running(session, event, pump.id, channel)
        elif event.type == "infusion.started":
            if event_data(event).get("auto_programmed") is True:
                order = repo.offered_order(session, pump.id, channel, received_by=event.received_at)
                if order is not None:
                    order.status, order.start_event_id, order.started_at = "started", event.id, event.ts
        else:
            order = repo.started_order(session, pump.id, channel)
            if order is not None:
                order.status = "completed" if event.type == "infusion.completed" else "stopped"
                order.end_event_id, order.ended_at = event.id, event.ts
    if len(rows) < BATCH:
        cursor.last_event_id = max(cursor.last_event_id, repo.last_event_id(session))
    else:
        cursor.last_event_id = rows[-1][0].id
    cursor.updated_at = now
    session.flush()
    return len(rows)


def _link_running(session: Session, event: Event, pump_id: int, channel: str) -> None:
    """Link an order acted on a running infusion: a titration to its rate change (started and ended by it),
    a bolus or piggyback to its start (status ``delivering``) and its end."""
    if event.type in OVERLAY_ENDS:
        delivering = _delivering_order(session, pump_id, channel)
        if delivering is not None:
            delivering.status = "stopped" if event.type == "bolus.cancelled" else "completed"
            delivering.end_event_id, delivering.ended_at = event.id, event.ts
        return
    if event.type == "rate.changed" and event_data(event).get("cause") != "titration":
        return
    order = repo.offered_order(session, pump_id, channel, received_by=event.received_at)
    if order is None or repo.started_order(session, pump_id, channel) is None:
        return
    order.start_event_id, order.started_at = event.id, event.ts
    if event.type == "rate.changed":
        order.status, order.end_event_id, order.ended_at = "applied", event.id, event.ts
    else:
        order.status = "delivering"


def _delivering_order(session: Session, pump_id: int, channel: str) -> EhrOrder | None:
    """The bolus or piggyback order being delivered on a pump channel now (status ``delivering``)."""
    return session.scalars(
        select(EhrOrder)
        .where(EhrOrder.pump_id == pump_id, EhrOrder.channel == channel, EhrOrder.status == "delivering")
        .order_by(EhrOrder.start_event_id.desc())
        .limit(1)
    ).first()


@dataclass(slots=True, kw_only=True)
class _Outgoing:
    message: Message
    order_id: str | None


@dataclass(slots=True)
class AutoDocumentation:
    """Turns stored pump events into PCD-10 / PCD-04 / PCD-01 messages queued for one EHR destination."""

    state: ServerState
    destination: str
    config: EhrConfig = field(default_factory=EhrConfig)
    _status_sent: dict[int, datetime] = field(default_factory=dict)

    def run_once(self) -> int:
        """Link orders, document every new event, add due status reports; returns messages queued."""
        with self.state.sessions() as session:
            link_orders(session, self.state.clock)
            queued = self.document(session)
            queued += self.status_reports(session)
            session.commit()
            return queued

    def document(self, session: Session) -> int:
        """Queue the messages for events the link step has seen and this step has not (caller commits)."""
        now = self.state.clock.now()
        link_position = repo.cursor(session, LINK_CURSOR, now).last_event_id
        cursor = repo.cursor(session, DOCUMENT_CURSOR, now)
        queued = 0
        while True:
            rows = repo.events_after(
                session, cursor.last_event_id, DOCUMENTED_TYPES, upto_id=link_position, limit=BATCH
            )
            for event, pump in rows:
                for part, outgoing in enumerate(self._messages(session, event, pump)):
                    queued += enqueue(
                        session,
                        self.state.clock,
                        self.destination,
                        outgoing.message,
                        source_key=f"event:{event.id}:{part}",
                        order_id=outgoing.order_id,
                    )
            if not rows:
                cursor.last_event_id = max(cursor.last_event_id, link_position)
                break
            cursor.last_event_id = rows[-1][0].id
        cursor.updated_at = now
        session.flush()
        return queued

    def status_reports(self, session: Session) -> int:
        """PCD-01 for each pump running an ordered infusion, once per status interval (caller commits)."""
        interval = self.config.status_interval
        if interval is None:
            return 0
        now = self.state.clock.now()
        queued = 0
        for pump_id in repo.pumps_with_started_orders(session):
            last = self._status_sent.get(pump_id)
            if last is not None and now - last < interval:
                continue
            pump = fleet_repo.pump_by_id(session, pump_id)
            if pump is None:
                continue
            report = self._status(session, pump, now)
            queued += enqueue(
                session,
                self.state.clock,
                self.destination,
                build_pcd01(report),
                source_key=f"status:{pump_id}:{int(now.timestamp())}",
                order_id=report.order_id or None,
            )
            self._status_sent[pump_id] = now
        return queued

    def _status(self, session: Session, pump: Pump, now: datetime) -> PumpStatusReport:
        sources: list[SourceChannel] = []
        order_id = ""
        patient = PatientContext(patient_id="")
        flow = Decimal(0)
        for channel in fleet_repo.channels_of(session, pump.id):
            order = repo.started_order(session, pump.id, channel.channel)
            if order is None:
                continue
            order_id = order_id or order.order_id
            patient = PatientContext(patient_id=order.patient_id) if not patient.patient_id else patient
            delivering = channel.state in ("running", "kvo")
            rate = channel.rate_ml_per_h
            flow += rate if delivering and rate is not None else Decimal(0)
            sources.append(
                SourceChannel(
                    label=f"Channel {channel.channel}",
                    delivery_status=DeliveryStatus.DELIVERING
                    if delivering
                    else DeliveryStatus.NOT_DELIVERING,
                    rate_ml_per_h=rate,
                    vtbi_ml=channel.vtbi_ml,
                    volume_delivered_ml=channel.volume_infused_ml,
                    drug_name=channel.drug or order.drug,
                    care_area=pump.care_area or "",
                )
            )
        return PumpStatusReport(
            control_id=new_control_id(),
            sent_at=now,
            observed_at=now,
            device=device_identity(pump, self.config),
            patient=patient,
            sources=tuple(sources),
            order_id=order_id,
            is_infusing=flow > 0,
            current_flow_ml_per_h=flow,
            library_version=str(pump.installed_library_version or ""),
        )

    def _messages(self, session: Session, event: Event, pump: Pump) -> list[_Outgoing]:
        if event.type.startswith("alarm."):
            return [
                _Outgoing(message=build_pcd04(report), order_id=None)
                for report in self._alarm_reports(session, event, pump)
            ]
        return self._infusion_messages(session, event, pump)

    def _context(self, session: Session, event: Event, pump: Pump) -> tuple[EhrOrder | None, PatientContext]:
        order = repo.order_at_event(session, pump.id, event.channel, event.id)
        patient_id = order.patient_id if order is not None else (event.patient_id or "")
        return order, PatientContext(patient_id=patient_id)

    def _infusion_messages(self, session: Session, event: Event, pump: Pump) -> list[_Outgoing]:
        channel = event.channel or DEFAULT_CHANNEL
        data = event_data(event)
        order, patient = self._context(session, event, pump)
        start_rows = (
            [event]
            if event.type == "infusion.started"
            else repo.latest_event(session, pump.id, channel, "infusion.started", before_id=event.id)
        )
        if not start_rows:
            return []
        start = event_data(start_rows[0])
        checked_rows = repo.latest_event(
            session, pump.id, channel, "program.checked", before_id=start_rows[0].id
        )
        checked = event_data(checked_rows[0]) if checked_rows else {}
        order_id = order.order_id if order is not None else ""
        base = InfusionEventReport(
            control_id=new_control_id(),
            sent_at=self.state.clock.now(),
            event_time=event.ts,
            event=InfusionEventKind.START,
            device=device_identity(pump, self.config),
            patient=patient,
            source=_source(start, checked, pump, DeliveryStatus.DELIVERING),
            order_id=order_id,
            drug_code=order.drug_code if order is not None else "",
            current_flow_ml_per_h=decimal_or_none(start.get("rate_ml_per_h")),
            library_version=str(start.get("library_version") or pump.installed_library_version or ""),
        )
        match event.type:
            case "infusion.started":
                reports = [base]
            case "infusion.stopped" | "infusion.completed":
                kind = (
                    InfusionEventKind.COMPLETE
                    if event.type == "infusion.completed"
                    else InfusionEventKind.STOP
                )
                source = _with(base.source, DeliveryStatus.NOT_DELIVERING, delivered=data.get("infused_ml"))
                reports = [
                    replace(base, event=kind, source=source, is_infusing=False, current_flow_ml_per_h=None)
                ]
            case "rate.changed":
                before = replace(
                    base,
                    source=_with(
                        base.source, DeliveryStatus.NOT_DELIVERING, rate=data.get("old_rate_ml_per_h")
                    ),
                    is_infusing=False,
                    current_flow_ml_per_h=None,
                )
                after = _with(
                    base.source,
                    DeliveryStatus.DELIVERING,
                    rate=data.get("new_rate_ml_per_h"),
                    dose=data.get("dose"),
                )
                stop, start_report = rate_change_reports(
                    before, after, stop_control_id=new_control_id(), start_control_id=new_control_id()
                )
                reports = [
                    stop,
                    replace(start_report, is_infusing=True, current_flow_ml_per_h=after.rate_ml_per_h),
                ]
            case _:
                parent = order.parent_order_id if order is not None and order.parent_order_id else order_id
                reports = [self._bolus_report(base, event.type, data, parent)]
        return [_Outgoing(message=build_pcd10(r), order_id=order_id or None) for r in reports]

    @staticmethod
    def _bolus_report(
        base: InfusionEventReport, event_type: str, data: Mapping[str, Any], parent_order_id: str
    ) -> InfusionEventReport:
        mode = (
            ProgramDeliveryMode.LOADING_DOSE if data.get("kind") == "loading" else ProgramDeliveryMode.BOLUS
        )
        if event_type == "bolus.started":
            source = replace(
                base.source,
                delivery_mode=mode,
                rate_ml_per_h=decimal_or_none(data.get("rate_ml_per_h")),
                vtbi_ml=decimal_or_none(data.get("volume_ml")),
                dose_rate=decimal_or_none(data.get("dose")),
                dose_unit=_unit(data.get("dose_unit")),
            )
            return replace(base, source=source, parent_order_id=parent_order_id)
        kind = InfusionEventKind.COMPLETE if event_type == "bolus.completed" else InfusionEventKind.STOP
        delivered = data.get("volume_ml") if event_type == "bolus.completed" else data.get("delivered_ml")
        source = replace(
            base.source,
            delivery_mode=mode,
            delivery_status=DeliveryStatus.NOT_DELIVERING,
            volume_delivered_ml=decimal_or_none(delivered),
        )
        return replace(base, event=kind, source=source, parent_order_id=parent_order_id)

    def _alarm_reports(self, session: Session, event: Event, pump: Pump) -> list[AlarmReport]:
        data = event_data(event)
        _, patient = self._context(session, event, pump)
        if event.type == "alarm.silenced":
            names = [str(a) for a in data.get("alarms") or []]
            phases = [
                (name, AlarmPhase.CONTINUE, AlarmState.ACTIVE, InactivationState.AUDIO_PAUSED)
                for name in names
            ]
        elif event.type == "alarm.raised":
            state = AlarmState.LATCHED if data.get("latching") is True else AlarmState.ACTIVE
            phases = [(str(data.get("alarm")), AlarmPhase.START, state, InactivationState.ENABLED)]
        else:
            by_operator = data.get("by") == "operator"
            inactivation = InactivationState.ACKNOWLEDGED if by_operator else InactivationState.ENABLED
            phases = [(str(data.get("alarm")), AlarmPhase.END, AlarmState.INACTIVE, inactivation)]
        reports = []
        for name, phase, alarm_state, inactivation in phases:
            raised = self._raised(session, event, pump, name)
            raised_data = event_data(raised) if raised is not None else data
            refid, code = _ALARM_TERMS.get(name, ("MDC_EVT_ALARM", 196616))
            channel = raised.channel if raised is not None else event.channel
            reports.append(
                AlarmReport(
                    control_id=new_control_id(),
                    sent_at=self.state.clock.now(),
                    observed_at=event.ts,
                    device=device_identity(pump, self.config),
                    patient=patient,
                    alert_id=f"{pump.serial}-{raised.seq if raised is not None else event.seq}",
                    alarm_refid=refid,
                    alarm_code=code,
                    alarm_text=name,
                    phase=phase,
                    state=alarm_state,
                    inactivation=inactivation,
                    priority=_PRIORITY.get(str(raised_data.get("priority")), AlarmPriority.HIGH),
                    kind=AlertKind.ADVISORY if name in _ADVISORY_ALARMS else AlertKind.TECHNICAL,
                    source_channel=None if channel is None else SourceKind.PRIMARY,
                )
            )
        return reports

    @staticmethod
    def _raised(session: Session, event: Event, pump: Pump, name: str) -> Event | None:
        if event.type == "alarm.raised":
            return event
        candidates = repo.latest_event(session, pump.id, None, "alarm.raised", before_id=event.id, limit=50)
        return next(
            (
                e
                for e in candidates
                if event_data(e).get("alarm") == name
                and (event.channel is None or e.channel == event.channel)
            ),
            None,
        )


def _source(
    start: Mapping[str, Any], checked: Mapping[str, Any], pump: Pump, status: DeliveryStatus
) -> SourceChannel:
    kind = str(checked.get("kind") or "continuous")
    mode = {
        "pca": ProgramDeliveryMode.PCA,
        "bolus": ProgramDeliveryMode.BOLUS,
        "loading": ProgramDeliveryMode.LOADING_DOSE,
    }.get(kind, ProgramDeliveryMode.CONTINUOUS)
    return SourceChannel(
        delivery_status=status,
        delivery_mode=mode,
        rate_ml_per_h=decimal_or_none(start.get("rate_ml_per_h")),
        dose_rate=decimal_or_none(start.get("dose")),
        dose_unit=_unit(start.get("dose_unit")),
        vtbi_ml=decimal_or_none(start.get("vtbi_ml")),
        drug_name=str(start.get("drug") or ""),
        concentration=_concentration(checked.get("concentration")),
        care_area=str(start.get("care_area") or pump.care_area or ""),
        weight_kg=decimal_or_none(checked.get("weight_kg")),
    )


def _with(
    source: SourceChannel,
    status: DeliveryStatus,
    *,
    rate: object = None,
    dose: object = None,
    delivered: object = None,
) -> SourceChannel:
    changes: dict[str, Any] = {"delivery_status": status}
    if rate is not None:
        changes["rate_ml_per_h"] = decimal_or_none(rate)
    if dose is not None:
        changes["dose_rate"] = decimal_or_none(dose)
    if delivered is not None:
        changes["volume_delivered_ml"] = decimal_or_none(delivered)
    return replace(source, **changes)


# ----------------------------------------------------------------------------------------- outbound queue


def enqueue(
    session: Session,
    clock: Clock,
    destination: str,
    message: Message,
    *,
    source_key: str,
    order_id: str | None = None,
) -> int:
    """Queue a message for a destination once per source key; returns 1 when queued, 0 when it was already."""
    if repo.outbound_by_source(session, source_key) is not None:
        return 0
    now = clock.now()
    session.add(
        EhrOutbound(
            destination=destination,
            control_id=message.control_id,
            message_type=message.type_text[:16],
            source_key=source_key,
            order_id=order_id[:64] if order_id else None,
            payload=message.to_er7(),
            state="pending",
            attempts=0,
            enqueued_at=now,
            next_attempt_at=now,
            last_error="",
            ack_code="",
        )
    )
    session.flush()
    return 1


Sender = Callable[[str], str]
"""Sends one ER7 message and returns the reply text; raises MllpError on transport failure."""


def drain(
    session: Session, clock: Clock, destination: str, send: Sender, *, backoff: Backoff = DEFAULT_BACKOFF
) -> DrainResult:
    """Send due messages of a destination in order (the interop outbox's rules, in the server database).

    AA/CA: delivered; AE/AR/CE/CR: rejected (kept) and the queue moves on; a transport failure or an
    unreadable reply: retried after the backoff, and nothing behind it is sent first. Commits per message.
    """
    delivered = rejected = failed = 0
    while (
        item := repo.outbound_head(session, destination)
    ) is not None and item.next_attempt_at <= clock.now():
        try:
            code = ack_code_of(parse(send(item.payload)))
            error = "" if code is not None else "reply has no MSA-1 acknowledgement code"
        except (MllpError, Hl7ParseError) as failure:
            code, error = None, f"{failure.code}: {failure.message}"
        item.attempts += 1
        if code is None:
            item.last_error = error
            item.next_attempt_at = clock.now() + timedelta(seconds=backoff.delay_s(item.attempts))
            session.commit()
            failed += 1
            break
        item.state = "delivered" if code.is_positive else "rejected"
        item.ack_code = code.value
        item.done_at = clock.now()
        session.commit()
        if code.is_positive:
            delivered += 1
        else:
            rejected += 1
    pending = repo.count_outbound(session, destination, "pending")
    return DrainResult(delivered=delivered, rejected=rejected, failed=failed, pending=pending)


def queue_state(session: Session, destination: str) -> Sequence[EhrOutbound]:
    """Every outbound message of a destination in queue order (for operators and tests)."""
    return repo.outbound(session, destination)
