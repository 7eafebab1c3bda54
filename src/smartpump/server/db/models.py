"""Database rows (SQLAlchemy 2 ORM only): facilities own pumps, grants, libraries and their records.

These classes are neither domain objects nor API schemas; they meet those only in ``server/``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from smartpump.library.model import LibraryStatus
from smartpump.server.db.base import Base
from smartpump.server.db.types import enum_column
from smartpump.server.vocabulary import ChangeRequestStatus, FaultStatus, GrantStatus, PumpStatus


class Facility(Base):
    """A hospital of the health system; owns pumps, role grants, libraries."""

    __tablename__ = "facilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str]
    created_at: Mapped[datetime]


class User(Base):
    """A person or API client who logs in; roles come from grants."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(default="")
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]


class RoleGrant(Base):
    """A role held in one facility, or in every facility when ``facility_id`` is NULL.

    ``status`` is ``active`` or ``pending`` (a privileged grant waiting for a second admin).
    """

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    status: Mapped[GrantStatus] = mapped_column(enum_column(GrantStatus, 16))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class AccessToken(Base):
    """A bearer session: only an HMAC digest of the token is stored."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditRecord(Base):
    """One append-only audit record, chained to its predecessor by ``prev_hash``."""

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    ts: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(128))
    facility_id: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain head (single row, id 1): appenders lock it, the verifier compares it to the tail."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class Pump(Base):
    """A pump of the fleet registry."""

    __tablename__ = "pumps"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(64))
    firmware: Mapped[str] = mapped_column(String(64))
    installed_library_version: Mapped[int | None]
    library_sha256: Mapped[str | None] = mapped_column(String(64))
    configuration_version: Mapped[int | None]
    care_area: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(128))
    last_seen: Mapped[datetime | None]
    battery_percent: Mapped[int | None]
    battery_health_percent: Mapped[int | None]
    status: Mapped[PumpStatus] = mapped_column(enum_column(PumpStatus, 32))
    inspection_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ChannelState(Base):
    """The latest known state of one pump channel; ``remaining_ml``/``remaining_min`` as the pump's heartbeat
    reported them at ``reported_at`` (server time; None since an event changed the channel)."""

    __tablename__ = "channel_states"
    __table_args__ = (UniqueConstraint("pump_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(32))
    drug: Mapped[str | None] = mapped_column(String(128))
    dose: Mapped[str | None] = mapped_column(String(40))
    dose_unit: Mapped[str | None] = mapped_column(String(32))
    rate_ml_per_h: Mapped[Decimal | None]
    volume_infused_ml: Mapped[Decimal | None]
    vtbi_ml: Mapped[Decimal | None]
    updated_at: Mapped[datetime]
    remaining_ml: Mapped[Decimal | None]
    remaining_min: Mapped[Decimal | None]
    reported_at: Mapped[datetime | None]


class Event(Base):
    """One infusion event as the pump sent it; stored exactly once per (pump, seq)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("pump_id", "seq"),
        Index("ix_events_pump_ts", "pump_id", "ts"),
        Index(
            "ix_events_patient_id",
            "patient_id",
            postgresql_where=text("patient_id IS NOT NULL"),
            sqlite_where=text("patient_id IS NOT NULL"),
        ),
        Index(
            "ix_events_order_id",
            "order_id",
            postgresql_where=text("order_id IS NOT NULL"),
            sqlite_where=text("order_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime]
    schema_version: Mapped[int]
    channel: Mapped[str | None] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(64), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)


class MaintenanceSchedule(Base):
    """A preventive-maintenance interval for one pump model in one facility."""

    __tablename__ = "maintenance_schedules"
    __table_args__ = (UniqueConstraint("facility_id", "model", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    model: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    interval_days: Mapped[int]


class MaintenanceRecord(Base):
    """Work done on a pump: cleaning, battery check, tubing check, service, software/library update."""

    __tablename__ = "maintenance_records"
    __table_args__ = (Index("ix_maintenance_records_pump_kind", "pump_id", "kind", "performed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"))
    kind: Mapped[str] = mapped_column(String(32))
    performed_at: Mapped[datetime]
    performed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    result: Mapped[str] = mapped_column(String(16))
    battery_health_percent: Mapped[int | None]
    from_version: Mapped[str | None] = mapped_column(String(64))
    to_version: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")


class FaultReport(Base):
    """A reported fault or damage (cracked screen, repeated alarms, poor battery...)."""

    __tablename__ = "fault_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[FaultStatus] = mapped_column(enum_column(FaultStatus, 16))
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reported_at: Mapped[datetime]
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)


class Recall(Base):
    """A manufacturer recall or field action affecting a pump model (optionally one firmware)."""

    __tablename__ = "recalls"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str]
    model: Mapped[str] = mapped_column(String(64))
    firmware: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RecallAction(Base):
    """A recall completed on one pump."""

    __tablename__ = "recall_actions"
    __table_args__ = (UniqueConstraint("recall_id", "pump_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recall_id: Mapped[int] = mapped_column(ForeignKey("recalls.id"))
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"))
    completed_at: Mapped[datetime]
    completed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notes: Mapped[str] = mapped_column(Text, default="")


class LibraryVersion(Base):
    """One version of a facility's drug library: its canonical JSON document and lifecycle state."""

    __tablename__ = "library_versions"
    __table_args__ = (UniqueConstraint("facility_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    name: Mapped[str]
    version: Mapped[int]
    status: Mapped[LibraryStatus] = mapped_column(enum_column(LibraryStatus, 16))
    document: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("library_versions.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    retired_at: Mapped[datetime | None]
    signed_document: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(64))
    is_emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency_reason: Mapped[str | None] = mapped_column(Text)


class LibraryContributor(Base):
    """A user who authored or edited a library version (none of them may approve or release it)."""

    __tablename__ = "library_contributors"
    __table_args__ = (UniqueConstraint("library_version_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    library_version_id: Mapped[int] = mapped_column(ForeignKey("library_versions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class LibraryApproval(Base):
    """An approval of a library version, bound to the content hash it approved."""

    __tablename__ = "library_approvals"
    __table_args__ = (UniqueConstraint("library_version_id", "approver_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    library_version_id: Mapped[int] = mapped_column(ForeignKey("library_versions.id"), index=True)
    approver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[datetime]
    is_emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(String(32), server_default="pharmacy_approver")


class ChangeRequest(Base):
    """A requested library change with its reason, and the decision on it."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    library_version_id: Mapped[int | None] = mapped_column(ForeignKey("library_versions.id"))
    title: Mapped[str]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[ChangeRequestStatus] = mapped_column(enum_column(ChangeRequestStatus, 16))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16), server_default="medium")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("library_versions.id"))


class ReleasePolicy(Base):
    """A facility's rule for releasing a library: how many distinct approvers, and which roles must be
    among them (role values, comma-separated; a role listed twice needs two approvers in it)."""

    __tablename__ = "release_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), unique=True)
    min_approvers: Mapped[int]
    required_roles: Mapped[str] = mapped_column(String(256))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime]
