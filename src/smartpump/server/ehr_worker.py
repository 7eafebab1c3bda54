"""The EHR background services: the MLLP listener for PCD-03 orders, and the outbound documentation sender.

Both follow ``workers.BackgroundService`` and are added to ``state.background`` by ``install`` when
``SMARTPUMP_HL7_PORT`` is set (the sender only when an EHR destination ``SMARTPUMP_EHR_HOST`` is set too).
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session, sessionmaker

from smartpump.clock import Clock
from smartpump.interop.hl7v2.listener import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    Exchange,
    Hl7Listener,
    Sender,
)
from smartpump.interop.hl7v2.message import decode
from smartpump.interop.hl7v2.mllp import DEFAULT_PORT, MllpClient
from smartpump.interop.hl7v2.outbox import Backoff, DrainResult
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services.ehr import (
    DEFAULT_BACKOFF,
    Attempt,
    AutoDocumentation,
    EhrConfig,
    OrderListener,
    pending,
    send_next,
)
from smartpump.server.services.ehr import Sender as OutboundSender
from smartpump.server.state import ServerState
from smartpump.server.workers import BackgroundService

logger = logging.getLogger("smartpump.server.ehr")
SEND_TIMEOUT_S: Final = 10.0
DEFAULT_CONFIG: Final = EhrConfig()


class EhrSettings(BaseSettings):
    """EHR settings (``SMARTPUMP_*``) beside ``Settings.hl7_port``: the EHR's address, limits, intervals."""

    model_config = SettingsConfigDict(env_prefix="SMARTPUMP_", extra="ignore", frozen=True)

    hl7_host: str = "127.0.0.1"
    hl7_allowed_senders: str = Field(default="", max_length=4096)
    hl7_tls_cert_file: Path | None = None
    hl7_tls_key_file: Path | None = None
    hl7_tls_client_ca_file: Path | None = None
    hl7_max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, ge=1, le=10_000)
    hl7_idle_timeout_s: float = Field(default=DEFAULT_IDLE_TIMEOUT_S, gt=0, le=86_400)
    ehr_host: str | None = None
    ehr_port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    ehr_status_interval_s: int = Field(default=300, ge=0)
    ehr_max_order_age_min: int = Field(default=30, ge=1)
    ehr_offer_expires_s: int = Field(default=600, ge=10, le=86_400)
    ehr_poll_s: float = Field(default=1.0, gt=0)

    def senders(self) -> frozenset[Sender] | None:
        """The allow-list (``APP`` or ``APP/FACILITY``, comma separated); None when none is set."""
        listed = [item for item in self.hl7_allowed_senders.split(",") if item.strip()]
        return frozenset(Sender.parse(item) for item in listed) if listed else None

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS for the MLLP listener when a certificate is set; with a client CA, client certificates
        are required and verified against it."""
        if self.hl7_tls_cert_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.hl7_tls_cert_file, self.hl7_tls_key_file)
        if self.hl7_tls_client_ca_file is not None:
            context.load_verify_locations(self.hl7_tls_client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def config(self) -> EhrConfig:
        """The service configuration these settings describe."""
        interval = self.ehr_status_interval_s
        return EhrConfig(
            max_order_age=timedelta(minutes=self.ehr_max_order_age_min),
            offer_expires_in_s=self.ehr_offer_expires_s,
            status_interval=timedelta(seconds=interval) if interval else None,
        )


class Hl7ListenerService:
    """The MLLP listener (``interop.hl7v2.listener``) answering PCD-03 orders through ``OrderListener``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        config: EhrConfig = DEFAULT_CONFIG,
        settings: EhrSettings | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._config = config
        self._settings = settings if settings is not None else EhrSettings()
        self._listener: Hl7Listener | None = None

    async def start(self, state: ServerState) -> None:
        """Bind and serve (port 0 picks a free port, then ``port`` holds it)."""
        handler = OrderListener(state, self._config)
        ehr = self._settings
        self._listener = Hl7Listener(
            handler.handle,
            state.clock,
            host=self.host,
            port=self.port,
            on_exchange=_log_exchange,
            allowed_senders=ehr.senders(),
            ssl_context=ehr.ssl_context(),
            max_connections=ehr.hl7_max_connections,
            idle_timeout_s=ehr.hl7_idle_timeout_s,
        )
        _, self.port = await self._listener.start()
        logger.info("listening for HL7 over MLLP", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        """Close the listening socket and the open connections."""
        if self._listener is not None:
            await self._listener.close()
            self._listener = None


def _log_exchange(exchange: Exchange) -> None:
    logger.info(
        "hl7 exchange",
        extra={
            "peer": exchange.peer,
            "message_type": exchange.message_type,
            "control_id": exchange.control_id,
            "ack_code": exchange.ack_code,
            "duplicate": exchange.is_duplicate,
            "error": exchange.error,
        },
    )


def drain(
    sessions: sessionmaker[Session],
    clock: Clock,
    destination: str,
    send: OutboundSender,
    *,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> DrainResult:
    """Send a destination's due messages in order, each in a unit of work of its own (one delivered is
    committed as delivered before the next is sent, so a crash never resends it); a failed attempt ends
    the pass, since nothing behind it may go first."""
    done = dict.fromkeys(Attempt, 0)
    while True:
        with unit_of_work(sessions) as session:
            attempt = send_next(session, clock, destination, send, backoff=backoff)
        if attempt is None:
            break
        done[attempt] += 1
        if attempt is Attempt.FAILED:
            break
    with sessions() as session:
        waiting = pending(session, destination)
    return DrainResult(
        delivered=done[Attempt.DELIVERED],
        rejected=done[Attempt.REJECTED],
        failed=done[Attempt.FAILED],
        pending=waiting,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """What one pass of the sender did: messages queued by documentation, and the drain outcome."""

    queued: int
    drained: DrainResult


class EhrOutboundService:
    """Documents new pump events and delivers the queue to the EHR over MLLP, in order, with backoff."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        config: EhrConfig = DEFAULT_CONFIG,
        poll_s: float = 1.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self.destination = f"{host}:{port}"
        self._client = MllpClient(host, port, timeout_s=timeout_s)
        self._config = config
        self._poll_s = poll_s
        self._backoff = backoff
        self._documentation: AutoDocumentation | None = None
        self._state: ServerState | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, state: ServerState) -> None:
        """Bind to the app state without a thread (tests call ``run_once``)."""
        self._state = state
        self._documentation = AutoDocumentation(
            state=state, destination=self.destination, config=self._config
        )

    async def start(self, state: ServerState) -> None:
        """Bind to the app state and start the sender thread."""
        self.attach(state)
        self._thread = threading.Thread(target=self._run, name="smartpump-ehr-sender", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread and close the connection to the EHR."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=SEND_TIMEOUT_S + 5)
        self._client.close()

    def poke(self) -> None:
        """Run a pass now rather than at the next poll."""
        self._wake.set()

    def run_once(self) -> SendResult:
        """Queue messages for new events, then send what is due."""
        assert self._state is not None and self._documentation is not None, "the sender is not attached"
        queued = self._documentation.run_once()
        result = drain(
            self._state.sessions, self._state.clock, self.destination, self._send, backoff=self._backoff
        )
        return SendResult(queued=queued, drained=result)

    def _send(self, text: str) -> str:
        return decode(self._client.send(text.encode("utf-8")))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                logger.exception("EHR sender pass failed; retrying")
            self._wake.wait(self._poll_s)
            self._wake.clear()


def install(state: ServerState, settings: EhrSettings | None = None) -> list[BackgroundService]:
    """Add the EHR services to ``state.background`` when ``Settings.hl7_port`` is set; returns those added."""
    port = state.settings.hl7_port
    if port is None:
        return []
    ehr = settings if settings is not None else EhrSettings()
    if state.settings.is_production and ehr.senders() is None:
        raise ValueError(
            "SMARTPUMP_HL7_ALLOWED_SENDERS is required in production: the MLLP listener answers known "
            "senders only"
        )
    config = ehr.config()
    added: list[BackgroundService] = [
        Hl7ListenerService(host=ehr.hl7_host, port=port, config=config, settings=ehr)
    ]
    if ehr.ehr_host:
        added.append(
            EhrOutboundService(host=ehr.ehr_host, port=ehr.ehr_port, config=config, poll_s=ehr.ehr_poll_s)
        )
    state.background.extend(added)
    return added
