"""Rows of the fleet view: each pump's reported status (from its heartbeat) and the alarms it shows now."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartpump.server.db.base import Base


class PumpView(Base):
    """What the server holds of a pump's own status: the last heartbeat (server receipt time, the pump's
    clock and their skew, the interval it promises), battery, library identity, configuration, and
    ``applied_seq``, the last event the view accounts for (heartbeat or event, whichever came later)."""

    __tablename__ = "pump_views"

    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"), primary_key=True)
    applied_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat_at: Mapped[datetime | None]
    pump_clock: Mapped[datetime | None]
    skew_s: Mapped[Decimal | None] = mapped_column(Numeric(14, 3))
    interval_s: Mapped[int | None] = mapped_column(Integer)
    battery_percent: Mapped[int | None] = mapped_column(Integer)
    on_ac: Mapped[bool | None] = mapped_column(Boolean)
    library_version: Mapped[int | None] = mapped_column(BigInteger)
    library_sha256: Mapped[str | None] = mapped_column(String(64))
    configuration_version: Mapped[int | None] = mapped_column(BigInteger)


class ActiveAlarm(Base):
    """One alarm a pump shows now (``channel`` "" for the whole pump), with its current priority; ``since``
    is the pump's time it was raised (or the heartbeat's, when the heartbeat told first)."""

    __tablename__ = "active_alarms"
    __table_args__ = (UniqueConstraint("pump_id", "channel", "alarm"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    alarm: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    since: Mapped[datetime]
