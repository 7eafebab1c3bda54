"""Patient association rows: who each pump is for over time, and the patient context an EHR order carried.

Patient identifiers and names are PHI: they are read through role- and facility-checked, audited routes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smartpump.server.db.base import Base


class PumpPatient(Base):
    """One association of a pump with a patient; the newest ``recorded_at`` (then ``id``) is the current one.

    ``source``: ``scan`` / ``entry`` (front panel, from the pump's ``patient.associated``), ``server`` (API)
    or ``order`` (an EHR order's patient context for a pump that had none). ``event_id`` names the pump
    event it was read from.
    """

    __tablename__ = "pump_patients"
    __table_args__ = (Index("ix_pump_patients_pump_recorded", "pump_id", "recorded_at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"))
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    authority: Mapped[str] = mapped_column(String(64), default="")
    id_type: Mapped[str] = mapped_column(String(8), default="MR")
    family_name: Mapped[str] = mapped_column(String(64), default="")
    given_name: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime]
    event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)


class EhrOrderPatient(Base):
    """The patient context an EHR order carried (PID-3 authority and type, PID-5 name), for documentation."""

    __tablename__ = "ehr_order_patients"

    order_row_id: Mapped[int] = mapped_column(ForeignKey("ehr_orders.id"), primary_key=True)
    authority: Mapped[str] = mapped_column(String(64), default="")
    id_type: Mapped[str] = mapped_column(String(8), default="")
    family_name: Mapped[str] = mapped_column(String(64), default="")
    given_name: Mapped[str] = mapped_column(String(64), default="")
