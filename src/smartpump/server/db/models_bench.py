"""Rows of the biomed's bench: one flow-accuracy test per performance-check maintenance record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smartpump.server.db.base import Base


class BenchTest(Base):
    """An IEC 60601-2-24 accuracy test: the figures a fleet query needs, and the whole report as JSON."""

    __tablename__ = "bench_tests"
    __table_args__ = (Index("ix_bench_tests_pump_performed", "pump_id", "performed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("maintenance_records.id"), unique=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"))
    performed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    set_name: Mapped[str] = mapped_column(String(64))
    rate_ml_per_h: Mapped[float] = mapped_column(Float)
    tolerance_percent: Mapped[float] = mapped_column(Float)
    mean_error_percent: Mapped[float] = mapped_column(Float)
    short_window_spread_percent: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[str] = mapped_column(Text)
