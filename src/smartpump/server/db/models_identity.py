"""Rows of device identity on the link: pumps held in quarantine, and events whose seq another event
holds already (kept for investigation, never dropped as duplicates)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartpump.server.db.base import Base


class QuarantinedPump(Base):
    """A pump that spoke without being admitted: unknown to the fleet registry, or refused by the device
    registry; nothing it sent is stored or acked until a biomed admits (registers) it, and never after a
    biomed rejects it."""

    __tablename__ = "quarantined_pumps"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(40))
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    messages: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(BigInteger)
    admitted_at: Mapped[datetime | None]
    admitted_by: Mapped[str | None] = mapped_column(String(64))
    rejected_at: Mapped[datetime | None]
    rejected_by: Mapped[str | None] = mapped_column(String(64))


class SeqConflict(Base):
    """An event received for a (pump, seq) the store holds with other content: one of the two is not the
    pump's, so both are kept (this one here) for a biomed to investigate."""

    __tablename__ = "seq_conflicts"
    __table_args__ = (UniqueConstraint("pump_id", "seq", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    record: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[datetime]
