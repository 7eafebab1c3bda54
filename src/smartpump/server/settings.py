"""Server settings from the environment (``SMARTPUMP_*``); refuses default secrets in production."""

from __future__ import annotations

import secrets
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Final, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS: Final = frozenset({"", "changethis", "change-me", "secret", "smartpump", "development"})
MIN_SECRET_LENGTH: Final = 32


def _loopback() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


class Environment(StrEnum):
    """Where the server runs; production refuses unsafe defaults."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every server setting, read once from ``SMARTPUMP_*`` variables (or given explicitly in tests)."""

    model_config = SettingsConfigDict(env_prefix="SMARTPUMP_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite:///./var/smartpump.db"
    secret_key: SecretStr = SecretStr("")
    signing_keys_dir: Path = Path("./var/keys")
    audit_anchor_dir: Path = Path("./var/audit-anchors")
    audit_checkpoint_interval_s: int = Field(default=60, ge=1)
    admin_password: SecretStr | None = None
    token_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)
    login_max_failures: int = Field(default=5, ge=1)
    login_client_max_failures: int = Field(default=20, ge=1)
    login_account_max_failures: int = Field(default=100, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1)
    login_trusted_networks: list[IPvAnyNetwork] = Field(default_factory=_loopback)
    password_min_length: int = Field(default=12, ge=8)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    review_interval_days: int = Field(default=365, ge=1)
    maintenance_due_soon_days: int = Field(default=14, ge=0)
    alarm_flag_count: int = Field(default=10, ge=1)
    alarm_flag_window_hours: int = Field(default=24, ge=1)
    battery_health_min_percent: int = Field(default=80, ge=0, le=100)
    battery_health_drop_percent: int = Field(default=10, ge=1, le=100)
    log_level: str = "INFO"
    mqtt_url: str | None = None
    mqtt_topic_prefix: str = "smartpump/v1"
    mqtt_client_id: str = "smartpump-server"
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    device_registry: Path | None = None
    ingest_register_facility: str | None = None
    offline_after_s: int = Field(default=300, ge=1)
    live_bus: bool = False
    """Share live messages with the other server processes on the same PostgreSQL database (LISTEN/NOTIFY):
    set it on every replica when there is more than one (``server/live_bus.py``)."""
    ingest_stall_after_s: int = Field(default=60, ge=1)
    ingest_inbox_events: int = Field(default=100_000, ge=1)
    """Events (each message counting one more) received over MQTT and awaiting ingest, beyond which the
    network thread waits and the broker queues for this replica: size it to the backlog the replica's pumps
    can have in flight (one batch each, plus heartbeats), so alarms overtake it (about 1 kB of memory an
    event; docs/deployment.md)."""
    hl7_port: int | None = Field(default=None, ge=1, le=65535)
    hl7_time_zone: str = Field(default="UTC", max_length=64)
    """The facility's IANA time zone (``America/New_York``): HL7 timestamps sent without a UTC offset are
    wall-clock time there. UTC by default."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_concurrent_requests: int = Field(default=32, ge=1, le=10_000)
    queue_wait_s: float = Field(default=2.0, ge=0, le=60)
    max_document_bytes: int = Field(default=21 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=4, le=256)
    max_json_values: int = Field(default=1_000_000, ge=1000)
    metrics_token: SecretStr | None = None
    metrics_public: bool = False
    api_docs_public: bool = False
    demo: bool = False

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        """In production, refuse a placeholder or short secret key; in development, make one up."""
        key = self.secret_key.get_secret_value()
        if self.env is Environment.PRODUCTION:
            if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < MIN_SECRET_LENGTH:
                raise ValueError(
                    "SMARTPUMP_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production"
                )
            if self.ingest_register_facility is not None:
                raise ValueError(
                    "SMARTPUMP_INGEST_REGISTER_FACILITY registers unknown pumps automatically: refused in "
                    "production (unknown pumps are quarantined for a biomed to admit)"
                )
            if self.mqtt_url is not None and (self.mqtt_cert_file is None or self.device_registry is None):
                raise ValueError(
                    "MQTT in production needs the server's client certificate (SMARTPUMP_MQTT_CERT_FILE, "
                    "SMARTPUMP_MQTT_KEY_FILE) and the device registry (SMARTPUMP_DEVICE_REGISTRY)"
                )
            metrics_token = self.metrics_token.get_secret_value() if self.metrics_token else None
            if metrics_token is not None and len(metrics_token) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"SMARTPUMP_METRICS_TOKEN must be a random value of at least {MIN_SECRET_LENGTH} "
                    "characters in production"
                )
        if self.live_bus and not self.database_url.startswith(("postgresql", "postgres://")):
            raise ValueError("SMARTPUMP_LIVE_BUS needs a PostgreSQL SMARTPUMP_DATABASE_URL (LISTEN/NOTIFY)")
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("SMARTPUMP_MQTT_CERT_FILE and SMARTPUMP_MQTT_KEY_FILE are set together")
        if not key and not self.is_production:
            object.__setattr__(self, "secret_key", SecretStr(secrets.token_urlsafe(32)))
        return self

    @field_validator("hl7_time_zone")
    @classmethod
    def _known_time_zone(cls, name: str) -> str:
        """Refuse a time zone the IANA database does not hold, at start-up rather than per message."""
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"SMARTPUMP_HL7_TIME_ZONE {name!r} is not an IANA time zone") from None
        return name

    @property
    def hl7_zone(self) -> ZoneInfo:
        """The facility time zone that inbound HL7 timestamps without an offset are read in."""
        return ZoneInfo(self.hl7_time_zone)

    @property
    def is_production(self) -> bool:
        """True when running with production safeguards."""
        return self.env is Environment.PRODUCTION

    @property
    def docs_open(self) -> bool:
        """Whether ``/openapi.json`` and ``/docs`` are served: in development, or when opened."""
        return not self.is_production or self.api_docs_public
