"""Rows of the connected fleet: link state and seq gaps per pump, signed commands, deployments, packages,
pump configurations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartpump.server.db.base import Base
from smartpump.server.db.types import enum_column
from smartpump.server.vocabulary import CommandStatus, ConfigurationStatus, DeploymentStatus, PackageStatus


class PumpLink(Base):
    """What ingest knows of a pump's link: online, highest seq stored, events with a skewed clock."""

    __tablename__ = "pump_links"

    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    status_changed_at: Mapped[datetime | None]
    max_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    skewed_events: Mapped[int] = mapped_column(Integer, default=0)
    last_hello_at: Mapped[datetime | None]


class SeqGap(Base):
    """A run of seqs a pump skipped: open until the missing events arrive (explained when shed)."""

    __tablename__ = "seq_gaps"
    __table_args__ = (UniqueConstraint("pump_id", "first_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"), index=True)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    missing: Mapped[int] = mapped_column(BigInteger)
    explained: Mapped[bool] = mapped_column(Boolean, default=False)
    detected_at: Mapped[datetime]


class PumpCommand(Base):
    """A signed command for one pump and what became of it (queued, sent, accepted, refused, expired)."""

    __tablename__ = "pump_commands"
    __table_args__ = (
        UniqueConstraint("pump_id", "counter"),
        Index("ix_pump_commands_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"))
    counter: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    command: Mapped[str] = mapped_column(String(64))
    signed: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    issued_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[CommandStatus] = mapped_column(enum_column(CommandStatus, 16))
    sent_at: Mapped[datetime | None]
    result_at: Mapped[datetime | None]
    result_code: Mapped[str | None] = mapped_column(String(64))
    result_reason: Mapped[str | None] = mapped_column(Text)
    deployment_target_id: Mapped[int | None] = mapped_column(ForeignKey("deployment_targets.id"))


class SoftwarePackage(Base):
    """A pump software package: one version for one model, the SHA-256 and size the server computed from the
    uploaded artefact, and once a second person approved it (``status`` ``approved``) its signature (Ed25519
    over model, version, hash)."""

    __tablename__ = "software_packages"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[PackageStatus] = mapped_column(enum_column(PackageStatus, 16), server_default="pending")
    signed: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None]


class ConfigurationVersion(Base):
    """One version of a facility's service configuration for one pump model (draft, then released: signed
    and immutable); ``settings`` is the canonical settings JSON, ``content_sha256`` covers the document."""

    __tablename__ = "configuration_versions"
    __table_args__ = (UniqueConstraint("facility_id", "model", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    settings: Mapped[str] = mapped_column(Text)
    status: Mapped[ConfigurationStatus] = mapped_column(enum_column(ConfigurationStatus, 16))
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[datetime | None]
    signed_document: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(64))


class Deployment(Base):
    """An offer of a released library, software package or configuration to a group of pumps, in waves."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    library_version_id: Mapped[int | None] = mapped_column(ForeignKey("library_versions.id"))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("software_packages.id"))
    configuration_id: Mapped[int | None] = mapped_column(ForeignKey("configuration_versions.id"))
    target_kind: Mapped[str] = mapped_column(String(16))
    target_value: Mapped[str | None] = mapped_column(String(64))
    waves: Mapped[str] = mapped_column(Text)
    pause_s: Mapped[int] = mapped_column(Integer)
    status: Mapped[DeploymentStatus] = mapped_column(enum_column(DeploymentStatus, 16))
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    next_wave_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class DeploymentTarget(Base):
    """One pump of a deployment: its wave and progress (pending, offered, accepted, activated, refused)."""

    __tablename__ = "deployment_targets"
    __table_args__ = (UniqueConstraint("deployment_id", "pump_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id", ondelete="CASCADE"), index=True)
    wave: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]
