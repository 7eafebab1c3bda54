"""Patient association on the server: who each pump is for, from the pump's own ``patient.associated`` events,
the API and an EHR order's patient context; and the patient an outbound HL7 message names.

The pump's events are the truth: an API association is recorded and sent to the pump as a signed
``patient.associate`` command, whose ``patient.associated`` event then confirms it. An order's PID context
(assigning authority, identifier type, name) is kept with the order; a pump with no association takes the
order's patient (source ``order``), for the record and the documentation only: the pump itself still
refuses an order for a patient it is not associated with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.errors import PumpError
from smartpump.interop.hl7v2.pcd03 import InfusionOrder
from smartpump.interop.hl7v2.reports import PatientContext
from smartpump.pump.channel import ChannelState as PumpChannelState
from smartpump.pump.events import EventType
from smartpump.pump.patient import AssociationSource, PatientIdentity, identity_from
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models import ChannelState, Event, Pump
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.models_patients import EhrOrderPatient, PumpPatient
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.services import fleet
from smartpump.server.services.commands import issue_command
from smartpump.server.services.context import CommandContext
from smartpump.transport.commands import ASSOCIATE_PATIENT
from smartpump.transport.messages import EventRecord

ASSOCIATED_TYPE: Final = EventType.PATIENT_ASSOCIATED
PUMP_ACTOR: Final = "pump"
SOURCES: Final = frozenset(s.value for s in AssociationSource)
ORDER_ID_TYPE: Final = "MR"
"""PID-3.5 assumed for an order whose PID-3 names no identifier type (HL7 table 0203, medical record)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Association:
    """A pump's current patient as the API and pages show it."""

    pump: str
    patient_id: str
    authority: str
    id_type: str
    family_name: str
    given_name: str
    source: str
    actor: str
    recorded_at: datetime

    @property
    def display_name(self) -> str:
        """``FAMILY, Given`` (or the part known; empty when no name is known)."""
        return ", ".join(p for p in (self.family_name.upper(), self.given_name) if p)


def current(session: Session, pump_id: int) -> PumpPatient | None:
    """The pump's newest association, or None."""
    return session.scalars(
        select(PumpPatient)
        .where(PumpPatient.pump_id == pump_id)
        .order_by(PumpPatient.recorded_at.desc(), PumpPatient.id.desc())
        .limit(1)
    ).first()


def current_of(session: Session, pump_ids: Sequence[int]) -> dict[int, PumpPatient]:
    """The newest association of each of many pumps (for dashboard tiles)."""
    found: dict[int, PumpPatient] = {}
    if not pump_ids:
        return found
    rows = session.scalars(
        select(PumpPatient)
        .where(PumpPatient.pump_id.in_(pump_ids))
        .order_by(PumpPatient.pump_id, PumpPatient.recorded_at.desc(), PumpPatient.id.desc())
    )
    for row in rows:
        found.setdefault(row.pump_id, row)
    return found


THERAPY_STATES: Final = frozenset({PumpChannelState.RUNNING, PumpChannelState.PAUSED, PumpChannelState.KVO})
"""Channel states in which a pump holds a therapy it reports in its periodic status (PCD-01)."""


def pumps_with_patient_and_therapy(session: Session) -> list[int]:
    """Ids of pumps with an associated patient and at least one channel holding a therapy."""
    busy = select(ChannelState.pump_id).where(ChannelState.state.in_(THERAPY_STATES)).distinct()
    associated = select(PumpPatient.pump_id).where(PumpPatient.pump_id.in_(busy)).distinct()
    return sorted(session.scalars(associated))


def association_of(pump: Pump, row: PumpPatient) -> Association:
    """A stored association as the API shows it."""
    return Association(
        pump=pump.serial,
        patient_id=row.patient_id,
        authority=row.authority,
        id_type=row.id_type,
        family_name=row.family_name,
        given_name=row.given_name,
        source=row.source,
        actor=row.actor,
        recorded_at=row.recorded_at,
    )


def _record(
    session: Session,
    pump_id: int,
    identity: PatientIdentity,
    *,
    source: str,
    actor: str,
    recorded_at: datetime,
    event_id: int | None = None,
) -> PumpPatient:
    row = PumpPatient(
        pump_id=pump_id,
        patient_id=identity.patient_id,
        authority=identity.authority,
        id_type=identity.id_type,
        family_name=identity.family_name,
        given_name=identity.given_name,
        source=source,
        actor=actor[:64],
        recorded_at=recorded_at,
        event_id=event_id,
    )
    session.add(row)
    session.flush()
    return row


def on_events(session: Session, pump_id: int, records: Sequence[EventRecord]) -> int:
    """Record the associations a pump reported (its stored ``patient.associated`` events), once each;
    returns how many. A malformed event stays stored but is not applied."""
    applied = 0
    for record in records:
        if record.type != ASSOCIATED_TYPE:
            continue
        event_id = session.scalar(select(Event.id).where(Event.pump_id == pump_id, Event.seq == record.seq))
        if event_id is not None and session.scalar(
            select(PumpPatient.id).where(PumpPatient.event_id == event_id)
        ):
            continue
        try:
            identity = identity_from(record.data)
        except PumpError:
            continue
        source = str(record.data.get("source") or AssociationSource.ENTRY.value)
        _record(
            session,
            pump_id,
            identity,
            source=source if source in SOURCES else AssociationSource.ENTRY.value,
            actor=PUMP_ACTOR,
            recorded_at=record.ts,
            event_id=event_id,
        )
        applied += 1
    return applied


def associate(
    session: Session, state: CommandContext, access: Access, serial: str, data: Mapping[str, Any]
) -> Association:
    """Associate a patient with a pump through the API: recorded, audited, sent to the pump.

    Raises:
        NotFoundError: ``pump.not_found`` (absent or outside the caller's facilities).
        InvalidInputError: ``patient.invalid`` for a malformed identity.
    """
    pump = fleet.get_pump(session, access, serial)
    try:
        identity = identity_from(data)
    except PumpError as error:
        raise InvalidInputError(error.message, code="patient.invalid") from None
    actor = access.principal.username
    row = _record(
        session,
        pump.id,
        identity,
        source=AssociationSource.SERVER.value,
        actor=actor,
        recorded_at=state.clock.now(),
    )
    audit.append(
        session,
        state.clock,
        actor=actor,
        action="patient.associate",
        object_type="pump",
        object_id=pump.serial,
        facility_id=pump.facility_id,
        details={"patient_id": identity.patient_id, "authority": identity.authority},
    )
    issue_command(
        session,
        state,
        pump_serial=pump.serial,
        command=ASSOCIATE_PATIENT,
        args={
            "patient_id": identity.patient_id,
            "authority": identity.authority,
            "id_type": identity.id_type,
            "family_name": identity.family_name,
            "given_name": identity.given_name,
        },
        actor=actor,
    )
    return association_of(pump, row)


def read(session: Session, state: CommandContext, access: Access, serial: str) -> Association:
    """The pump's current patient (an audited PHI read).

    Raises:
        NotFoundError: ``pump.not_found``, or ``patient.not_associated`` when the pump has none.
    """
    pump = fleet.get_pump(session, access, serial)
    row = current(session, pump.id)
    if row is None:
        raise NotFoundError(f"pump {serial!r} has no patient associated", code="patient.not_associated")
    audit.append(
        session,
        state.clock,
        actor=access.principal.username,
        action="patient.read",
        object_type="pump",
        object_id=pump.serial,
        facility_id=pump.facility_id,
        details={"patient_id": row.patient_id},
    )
    return association_of(pump, row)


def record_order_patient(session: Session, row: EhrOrder, order: InfusionOrder, now: datetime) -> None:
    """Keep an order's PID context; a pump with no association takes its patient (source ``order``)."""
    session.flush()
    session.add(
        EhrOrderPatient(
            order_row_id=row.id,
            authority=order.patient_id_authority[:64],
            id_type=(order.patient_id_type or ORDER_ID_TYPE)[:8],
            family_name=order.patient_family_name[:64],
            given_name=order.patient_given_name[:64],
        )
    )
    if row.pump_id is None or not order.patient_id or current(session, row.pump_id) is not None:
        return
    try:
        identity = PatientIdentity(
            patient_id=order.patient_id[:64],
            authority=order.patient_id_authority[:64],
            id_type=order.patient_id_type or ORDER_ID_TYPE,
            family_name=order.patient_family_name[:64],
            given_name=order.patient_given_name[:64],
        )
    except PumpError:
        return
    _record(
        session,
        row.pump_id,
        identity,
        source=AssociationSource.ORDER.value,
        actor=row.sender[:64],
        recorded_at=now,
    )


def _context(identity: PumpPatient | EhrOrderPatient, patient_id: str) -> PatientContext:
    return PatientContext(
        patient_id=patient_id,
        authority=identity.authority,
        id_type=identity.id_type or ORDER_ID_TYPE,
        family_name=identity.family_name,
        given_name=identity.given_name,
    )


def patient_context(
    session: Session, pump_id: int, *, at: datetime, order: EhrOrder | None
) -> PatientContext | None:
    """The patient an outbound message about a pump names: for a message about an order, the order's own
    patient as the EHR sent it (PID-3 authority and type, PID-5 name; the pump's association fills them in
    for an order without that context); else the pump's association as recorded by ``at``; None when no
    patient is known."""
    association = session.scalars(
        select(PumpPatient)
        .where(PumpPatient.pump_id == pump_id, PumpPatient.recorded_at <= at)
        .order_by(PumpPatient.recorded_at.desc(), PumpPatient.id.desc())
        .limit(1)
    ).first()
    if order is None or not order.patient_id:
        return None if association is None else _context(association, association.patient_id)
    context = session.get(EhrOrderPatient, order.id)
    if context is None and association is not None and association.patient_id == order.patient_id:
        return _context(association, order.patient_id)
    return order_patient(session, order)


def order_patient(session: Session, order: EhrOrder) -> PatientContext:
    """The patient as the order named it: PID-3 ID, assigning authority and identifier type (``MR`` when the
    order named none), PID-5 name."""
    context = session.get(EhrOrderPatient, order.id)
    if context is not None:
        return _context(context, order.patient_id)
    return PatientContext(patient_id=order.patient_id, id_type=ORDER_ID_TYPE)
