"""EHR interoperability rows: inbound messages (persistent MSH-10 de-duplication), orders offered to pumps,
the outbound HL7 store-and-forward queue, and the positions of the documentation worker in the event store.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartpump.server.db.base import Base
from smartpump.server.db.types import enum_column
from smartpump.server.vocabulary import OrderStatus


class EhrInbound(Base):
    """One inbound HL7 message we acted on, keyed by (MSH-3 sender, MSH-10), with the reply we gave."""

    __tablename__ = "ehr_inbound"
    __table_args__ = (UniqueConstraint("sender", "control_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sender: Mapped[str] = mapped_column(String(227))
    control_id: Mapped[str] = mapped_column(String(199))
    message_type: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime]
    ack_code: Mapped[str] = mapped_column(String(2), default="")
    reply: Mapped[str] = mapped_column(Text, default="")
    order_id: Mapped[str | None] = mapped_column(String(64))


class EhrOrder(Base):
    """An EHR order (PCD-03 or FHIR MedicationRequest) for one pump channel, offered or refused (PIV code).

    ``status``: ``offered`` (waiting at the pump), ``rejected`` (refused on receipt), then the outcome at the
    pump: ``started`` (``applied`` for a titration, ``delivering`` for a bolus or piggyback) and later
    ``stopped`` / ``completed``, or ``declined`` (by the nurse), ``refused`` (by the pump) or ``expired``.
    ``start_event_id`` / ``end_event_id`` link it to the infusion events it became; ``command_nonce`` to the
    offer command; ``offer_event_id`` is the newest stored event when it was offered (a decline comes
    later); ``outcome_code`` is the pump's code (decline reason, refusal code, ``offer.expired``) and
    ``outcome_reported_at`` when the outcome was queued for the EHR. ``prescriber_id`` / ``prescriber_name``
    are the ordering provider (ORC-12, FHIR ``requester``), empty when the order named none.
    """

    __tablename__ = "ehr_orders"
    __table_args__ = (Index("ix_ehr_orders_pump_channel_status", "pump_id", "channel", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"), index=True)
    pump_id: Mapped[int | None] = mapped_column(ForeignKey("pumps.id"))
    pump_serial: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    parent_order_id: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(8))
    sender: Mapped[str] = mapped_column(String(227))
    control_id: Mapped[str] = mapped_column(String(199))
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    prescriber_id: Mapped[str] = mapped_column(String(64), default="")
    prescriber_name: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus, 16))
    piv_code: Mapped[int | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    drug: Mapped[str] = mapped_column(String(128), default="")
    drug_code: Mapped[str] = mapped_column(String(64), default="")
    program: Mapped[str] = mapped_column(Text, default="{}")
    received_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    start_event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    end_event_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    command_nonce: Mapped[str | None] = mapped_column(String(64))
    offer_event_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome_code: Mapped[str] = mapped_column(String(64), default="")
    outcome_at: Mapped[datetime | None]
    outcome_reported_at: Mapped[datetime | None]


class EhrOutbound(Base):
    """One outbound HL7 message in the store-and-forward queue of a destination (ordered by id).

    ``state``: ``pending``, ``delivered`` (AA/CA) or ``rejected`` (AE/AR/CE/CR, kept for an operator).
    ``source_key`` names what produced it (event id and part), so nothing is documented twice.
    """

    __tablename__ = "ehr_outbound"
    __table_args__ = (
        UniqueConstraint("destination", "control_id"),
        Index("ix_ehr_outbound_destination_state", "destination", "state", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    destination: Mapped[str] = mapped_column(String(128))
    control_id: Mapped[str] = mapped_column(String(64))
    message_type: Mapped[str] = mapped_column(String(16))
    source_key: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str] = mapped_column(Text, default="")
    ack_code: Mapped[str] = mapped_column(String(2), default="")
    done_at: Mapped[datetime | None]


class EhrCursor(Base):
    """How far a worker has read the event store (``events.id``), by worker name."""

    __tablename__ = "ehr_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]
