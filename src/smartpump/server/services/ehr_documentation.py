"""EHR auto-documentation: pump events linked to the orders they carry out and turned into PCD-10 / PCD-04 /
PCD-01 messages queued for the EHR."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.errors import PumpError, UnitError
from smartpump.interop.hl7v2.listener import new_control_id
from smartpump.interop.hl7v2.message import Message
from smartpump.interop.hl7v2.pcd01 import build_pcd01
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
from smartpump.library.model import DeviceType
from smartpump.pump.alarms import AlarmId, Priority
from smartpump.pump.capabilities import capabilities
from smartpump.pump.channel import ChannelState
from smartpump.pump.events import EventType
from smartpump.server.db.models import Event, Pump
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.repositories import ehr as repo
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.event_data import decimal_or_none
from smartpump.server.services import patients
from smartpump.server.services.context import SessionContext
from smartpump.server.services.ehr_config import DEFAULT_CHANNEL, DEFAULT_CONFIG, EhrConfig
from smartpump.server.services.ehr_outbound import enqueue
from smartpump.server.services.ehr_outcomes import report_outcomes, settle_offers
from smartpump.server.vocabulary import OrderStatus
from smartpump.units import Concentration, DoseUnit

_E, _A, _S = EventType, AlarmId, ChannelState
LINK_CURSOR: Final = "link"
DOCUMENT_CURSOR: Final = "hl7"
BATCH: Final = 500
LINK_TYPES: Final = (
    _E.INFUSION_STARTED,
    _E.INFUSION_STOPPED,
    _E.INFUSION_COMPLETED,
    _E.RATE_CHANGED,
    _E.BOLUS_STARTED,
    _E.BOLUS_COMPLETED,
    _E.BOLUS_CANCELLED,
    _E.SECONDARY_STARTED,
    _E.SECONDARY_COMPLETED,
)
OVERLAY_STARTS: Final = frozenset({_E.BOLUS_STARTED, _E.SECONDARY_STARTED})
OVERLAY_ENDS: Final = frozenset({_E.BOLUS_COMPLETED, _E.BOLUS_CANCELLED, _E.SECONDARY_COMPLETED})
DOCUMENTED_TYPES: Final = (
    _E.INFUSION_STARTED,
    _E.INFUSION_STOPPED,
    _E.INFUSION_COMPLETED,
    _E.RATE_CHANGED,
    _E.BOLUS_STARTED,
    _E.BOLUS_COMPLETED,
    _E.BOLUS_CANCELLED,
    _E.SECONDARY_STARTED,
    _E.SECONDARY_COMPLETED,
    _E.ALARM_RAISED,
    _E.ALARM_CLEARED,
    _E.ALARM_SILENCED,
)
_PRIORITY: Final[dict[str, AlarmPriority]] = {
    Priority.HIGH: AlarmPriority.HIGH,
    Priority.MEDIUM: AlarmPriority.MEDIUM,
    Priority.LOW: AlarmPriority.LOW,
}
_ALARM_TERMS: Final[dict[str, tuple[str, int]]] = {
    _A.OCCLUSION_DOWNSTREAM: ("MDC_EVT_FLUID_LINE_OCCL", 196940),
    _A.OCCLUSION_UPSTREAM: ("MDC_EVT_FLUID_LINE_OCCL", 196940),
    _A.DOOR_OPEN: ("MDC_EVT_STAT_DOOR_OPEN", 202828),
    _A.BATTERY_LOW: ("MDC_EVT_BATT_LO", 196802),
    _A.SYRINGE_NEAR_EMPTY: ("MDC_EVT_ADVIS_PUMP_SYRINGE_REPLACE_WARN", 203320),
}
"""Pump alarms with an MDC event term of their own; every other alarm is sent as MDC_EVT_ALARM + its text."""
_ADVISORY_ALARMS: Final[frozenset[str]] = frozenset(
    {_A.NEAR_END, _A.KVO_RUNNING, _A.SET_CHANGE_DUE, _A.INFILTRATION}
)


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


def device_identity(pump: Pump, config: EhrConfig = DEFAULT_CONFIG) -> DeviceIdentity:
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
        if event.type == _E.RATE_CHANGED or event.type in OVERLAY_STARTS or event.type in OVERLAY_ENDS:
            _link_running(session, event, pump.id, channel)
        elif event.type == _E.INFUSION_STARTED:
            if event_data(event).get("auto_programmed") is True:
                order = repo.offered_order(session, pump.id, channel, received_by=event.received_at)
                if order is not None:
                    order.status = OrderStatus.STARTED
                    order.start_event_id, order.started_at = event.id, event.ts
        else:
            order = repo.started_order(session, pump.id, channel)
            if order is not None:
                completed = event.type == _E.INFUSION_COMPLETED
                order.status = OrderStatus.COMPLETED if completed else OrderStatus.STOPPED
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
            cancelled = event.type == _E.BOLUS_CANCELLED
            delivering.status = OrderStatus.STOPPED if cancelled else OrderStatus.COMPLETED
            delivering.end_event_id, delivering.ended_at = event.id, event.ts
        return
    if event.type == _E.RATE_CHANGED and event_data(event).get("cause") != "titration":
        return
    order = repo.offered_order(session, pump_id, channel, received_by=event.received_at)
    if order is None or repo.started_order(session, pump_id, channel) is None:
        return
    order.start_event_id, order.started_at = event.id, event.ts
    if event.type == _E.RATE_CHANGED:
        order.status, order.end_event_id, order.ended_at = OrderStatus.APPLIED, event.id, event.ts
    else:
        order.status = OrderStatus.DELIVERING


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

    state: SessionContext
    destination: str
    config: EhrConfig = field(default_factory=EhrConfig)
    _status_sent: dict[int, datetime] = field(default_factory=dict)

    def run_once(self) -> int:
        """Link orders, end the offers that are over and report them, document every new event, add due
        status reports; returns messages queued."""
        with unit_of_work(self.state.sessions) as session:
            link_orders(session, self.state.clock)
            settle_offers(session, self.state.clock.now(), expire=True)
            queued = report_outcomes(session, self.state.clock, self.destination, self.config)
            queued += self.document(session)
            queued += self.status_reports(session)
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
        """PCD-01 for each pump running an ordered infusion, or any infusion for a patient associated at
        the bedside, once per status interval (caller commits)."""
        interval = self.config.status_interval
        if interval is None:
            return 0
        now = self.state.clock.now()
        queued = 0
        reporting = set(repo.pumps_with_started_orders(session))
        reporting |= set(patients.pumps_with_patient_and_therapy(session))
        for pump_id in sorted(reporting):
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
        patient: PatientContext | None = None
        flow = Decimal(0)
        for channel in fleet_repo.channels_of(session, pump.id):
            order = repo.started_order(session, pump.id, channel.channel)
            if order is None:
                if channel.state not in patients.THERAPY_STATES:
                    continue
                bedside = patients.patient_context(session, pump.id, at=now, order=None)
                if bedside is None:
                    continue
                patient = patient or bedside
            else:
                order_id = order_id or order.order_id
                if patient is None:
                    patient = patients.patient_context(session, pump.id, at=now, order=order)
            delivering = channel.state in (_S.RUNNING, _S.KVO)
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
                    drug_name=channel.drug or (order.drug if order is not None else ""),
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

    def _context(
        self, session: Session, event: Event, pump: Pump
    ) -> tuple[EhrOrder | None, PatientContext | None]:
        order = repo.order_at_event(session, pump.id, event.channel, event.id)
        return order, patients.patient_context(session, pump.id, at=event.ts, order=order)

    def _infusion_messages(self, session: Session, event: Event, pump: Pump) -> list[_Outgoing]:
        channel = event.channel or DEFAULT_CHANNEL
        data = event_data(event)
        order, patient = self._context(session, event, pump)
        start_rows = (
            [event]
            if event.type == _E.INFUSION_STARTED
            else repo.latest_event(session, pump.id, channel, _E.INFUSION_STARTED, before_id=event.id)
        )
        if not start_rows:
            return []
        start = event_data(start_rows[0])
        checked_rows = repo.latest_event(
            session, pump.id, channel, _E.PROGRAM_CHECKED, before_id=start_rows[0].id
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
            case _E.INFUSION_STARTED:
                reports = [base]
            case _E.INFUSION_STOPPED | _E.INFUSION_COMPLETED:
                kind = (
                    InfusionEventKind.COMPLETE
                    if event.type == _E.INFUSION_COMPLETED
                    else InfusionEventKind.STOP
                )
                source = _with(base.source, DeliveryStatus.NOT_DELIVERING, delivered=data.get("infused_ml"))
                reports = [
                    replace(base, event=kind, source=source, is_infusing=False, current_flow_ml_per_h=None)
                ]
            case _E.RATE_CHANGED:
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
                if data.get("dose_unit"):
                    after = replace(after, dose_unit=_unit(data.get("dose_unit")))
                stop, start_report = rate_change_reports(
                    before, after, stop_control_id=new_control_id(), start_control_id=new_control_id()
                )
                reports = [
                    stop,
                    replace(start_report, is_infusing=True, current_flow_ml_per_h=after.rate_ml_per_h),
                ]
            case _E.SECONDARY_STARTED | _E.SECONDARY_COMPLETED:
                primary = repo.started_order(session, pump.id, channel)
                parent = primary.order_id if primary is not None else ""
                reports = [self._secondary_report(base, event.type, data, order, parent)]
            case _:
                parent = order.parent_order_id if order is not None and order.parent_order_id else order_id
                reports = [self._bolus_report(base, event.type, data, parent)]
        return [_Outgoing(message=build_pcd10(r), order_id=order_id or None) for r in reports]

    @staticmethod
    def _secondary_report(
        base: InfusionEventReport,
        event_type: str,
        data: Mapping[str, Any],
        order: EhrOrder | None,
        primary_order_id: str,
    ) -> InfusionEventReport:
        """A piggyback's start or end on the secondary source, under its own order, the primary as parent."""
        started = event_type == _E.SECONDARY_STARTED
        source = replace(
            base.source,
            kind=SourceKind.SECONDARY,
            label="Secondary",
            delivery_status=DeliveryStatus.DELIVERING if started else DeliveryStatus.NOT_DELIVERING,
            rate_ml_per_h=decimal_or_none(data.get("rate_ml_per_h")) if started else None,
            vtbi_ml=decimal_or_none(data.get("vtbi_ml")) if started else None,
            volume_delivered_ml=None if started else decimal_or_none(data.get("volume_ml")),
            dose_rate=None,
            dose_unit=None,
            drug_name=order.drug if order is not None else base.source.drug_name,
        )
        return replace(
            base,
            event=InfusionEventKind.START if started else InfusionEventKind.COMPLETE,
            source=source,
            order_id=order.order_id if order is not None else "",
            drug_code=order.drug_code if order is not None else base.drug_code,
            parent_order_id=primary_order_id,
        )

    @staticmethod
    def _bolus_report(
        base: InfusionEventReport, event_type: str, data: Mapping[str, Any], parent_order_id: str
    ) -> InfusionEventReport:
        mode = (
            ProgramDeliveryMode.LOADING_DOSE if data.get("kind") == "loading" else ProgramDeliveryMode.BOLUS
        )
        if event_type == _E.BOLUS_STARTED:
            source = replace(
                base.source,
                delivery_mode=mode,
                rate_ml_per_h=decimal_or_none(data.get("rate_ml_per_h")),
                vtbi_ml=decimal_or_none(data.get("volume_ml")),
                dose_rate=decimal_or_none(data.get("dose")),
                dose_unit=_unit(data.get("dose_unit")),
            )
            return replace(base, source=source, parent_order_id=parent_order_id)
        kind = InfusionEventKind.COMPLETE if event_type == _E.BOLUS_COMPLETED else InfusionEventKind.STOP
        delivered = data.get("volume_ml") if event_type == _E.BOLUS_COMPLETED else data.get("delivered_ml")
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
        if event.type == _E.ALARM_SILENCED:
            names = [str(a) for a in data.get("alarms") or []]
            phases = [
                (name, AlarmPhase.CONTINUE, AlarmState.ACTIVE, InactivationState.AUDIO_PAUSED)
                for name in names
            ]
        elif event.type == _E.ALARM_RAISED:
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
        if event.type == _E.ALARM_RAISED:
            return event
        candidates = repo.latest_event(session, pump.id, None, _E.ALARM_RAISED, before_id=event.id, limit=50)
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
