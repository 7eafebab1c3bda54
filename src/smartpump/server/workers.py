"""Background services the app lifespan starts and stops, and the transport ingest worker.

The ingest worker receives every pump's uplink over a ``Transport`` (MQTT when ``SMARTPUMP_MQTT_URL``
is set, the in-process broker otherwise), commits event batches in groups through ``Ingestor`` and acks
each batch only after its commit; it also sends queued commands and launches due deployment waves.
``stop`` and ``poke`` wake its thread at once (a ``None`` in the inbox), so neither waits for the poll.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from typing import TYPE_CHECKING, Final, Protocol

from smartpump.server.services import commands, deployment
from smartpump.server.services.ingest import Batch, Ingestor
from smartpump.transport.base import ConnectionHandler, MessageHandler, Transport
from smartpump.transport.inprocess import InProcessBroker, InProcessTransport
from smartpump.transport.messages import Envelope, Kind, MessageError, Topics, ack_message, events_of
from smartpump.transport.mqtt import MqttSettings, MqttTransport

if TYPE_CHECKING:
    from smartpump.server.settings import Settings
    from smartpump.server.state import ServerState

logger = logging.getLogger("smartpump.server.workers")

MAX_GROUP_BATCHES: Final = 200
MAX_GROUP_EVENTS: Final = 20_000
TICK_S: Final = 0.5
INBOX_LIMIT: Final = 500  # MQTT messages awaiting commit; beyond it paho waits (back-pressure on the broker)
RETRY_PAUSE_S: Final = 1.0


class BackgroundService(Protocol):
    """Something that runs beside the API for the app's lifetime (ingest, demo fleet, MLLP listener)."""

    async def start(self, state: ServerState) -> None:
        """Begin (returns promptly; long work runs in a thread or a task)."""
        ...

    async def stop(self) -> None:
        """Stop and release everything started."""
        ...


class LockedTransport:
    """A transport whose sends hold a lock (the in-process broker is not thread-safe)."""

    def __init__(self, inner: InProcessTransport, lock: threading.RLock) -> None:
        self.inner = inner
        self._lock = lock

    @property
    def connected(self) -> bool:
        """Whether the inner endpoint is connected."""
        return self.inner.connected

    @property
    def rejected(self) -> int:
        """Malformed messages dropped by the inner endpoint."""
        return self.inner.rejected

    def start(self, on_message: MessageHandler, on_connection: ConnectionHandler) -> None:
        """Start the inner endpoint under the lock."""
        with self._lock:
            self.inner.start(on_message, on_connection)

    def send(self, envelope: Envelope) -> bool:
        """Send under the lock."""
        with self._lock:
            return self.inner.send(envelope)

    def close(self) -> None:
        """Close under the lock."""
        with self._lock:
            self.inner.close()

    def set_link(self, up: bool) -> None:
        """Simulate the network of this endpoint going down or up."""
        with self._lock:
            self.inner.set_link(up)


class InProcessLink:
    """The in-process broker shared by a server and simulated pumps, with the lock that guards it."""

    def __init__(self, broker: InProcessBroker | None = None) -> None:
        self.broker = broker if broker is not None else InProcessBroker()
        self.lock = threading.RLock()

    def server_transport(self) -> LockedTransport:
        """A new server endpoint."""
        with self.lock:
            return LockedTransport(self.broker.server_endpoint(), self.lock)

    def pump_transport(self, pump: str) -> LockedTransport:
        """A new endpoint for one pump."""
        with self.lock:
            return LockedTransport(self.broker.pump_endpoint(pump), self.lock)

    def deliver(self) -> int:
        """Deliver everything deliverable (replies included); returns the rounds run."""
        with self.lock:
            return self.broker.run_until_idle()


def mqtt_settings(settings: Settings) -> MqttSettings:
    """Broker settings from ``SMARTPUMP_MQTT_URL`` and the topic prefix."""
    assert settings.mqtt_url is not None
    return MqttSettings.from_url(settings.mqtt_url, topics=Topics(settings.mqtt_topic_prefix))


def server_transport(settings: Settings, link: InProcessLink) -> Transport:
    """MQTT when configured (a unique client id per process, in the shared ingest group), else in-process."""
    if settings.mqtt_url:
        client_id = f"{settings.mqtt_client_id}-{uuid.uuid4().hex[:8]}"
        return MqttTransport.for_server(mqtt_settings(settings), client_id=client_id)
    return link.server_transport()


class IngestWorker:
    """Receives pump messages, commits event batches (then acks them), sends commands, runs rollouts."""

    def __init__(
        self, transport: Transport, *, link: InProcessLink | None = None, tick_s: float = TICK_S
    ) -> None:
        self.transport = transport
        self.link = link
        self.tick_s = tick_s
        self._inbox: queue.Queue[Envelope | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ingestor: Ingestor | None = None
        self._state: ServerState | None = None
        self._outbound_due = threading.Event()
        self._poked = threading.Event()
        self.acks_sent = 0
        self.failed_commits = 0

    @property
    def ingestor(self) -> Ingestor:
        """The ingestor (after ``start``)."""
        assert self._ingestor is not None, "the worker is not started"
        return self._ingestor

    async def start(self, state: ServerState) -> None:
        """Connect the transport and start the worker thread."""
        self.attach(state)
        self._thread = threading.Thread(target=self._run, name="smartpump-ingest", daemon=True)
        self._thread.start()

    def attach(self, state: ServerState) -> None:
        """Bind to the app state and start receiving (without a thread: tests call ``run_once``)."""
        self._state = state
        self._ingestor = Ingestor(state)
        self._outbound_due.set()
        if isinstance(self.transport, MqttTransport):
            self._inbox = queue.Queue(maxsize=INBOX_LIMIT)
        self.transport.start(self._inbox.put, self._on_connection)

    async def stop(self) -> None:
        """Wake the thread, wait for it to end its step and close the transport."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.transport.close()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def poke(self) -> None:
        """Something is waiting to go out (a command, a deployment wave): do the outbound work now."""
        self._outbound_due.set()
        self._poked.set()
        self._wake()

    def _wake(self) -> None:
        # A full inbox means the thread is busy and looks at the flags before it next waits.
        with contextlib.suppress(queue.Full):
            self._inbox.put_nowait(None)

    def _on_connection(self, up: bool) -> None:
        if up:
            self._outbound_due.set()
        logger.info("ingest transport %s", "connected" if up else "disconnected")

    def _run(self) -> None:
        last_tick = 0.0
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=self.tick_s)
            except queue.Empty:
                first = None
            if self._stop.is_set():
                return
            try:
                if first is not None:
                    self._process([first, *self._drain()])
                if self._poked.is_set() or time.monotonic() - last_tick >= self.tick_s:
                    self._poked.clear()
                    last_tick = time.monotonic()
                    self.outbound()
            except Exception:
                logger.exception("ingest worker step failed; the unacked batches will be resent")
                self._stop.wait(RETRY_PAUSE_S)

    def _drain(self) -> list[Envelope]:
        taken: list[Envelope] = []
        events = 0
        while len(taken) < MAX_GROUP_BATCHES and events < MAX_GROUP_EVENTS:
            try:
                envelope = self._inbox.get_nowait()
            except queue.Empty:
                break
            if envelope is None:
                continue
            taken.append(envelope)
            if envelope.kind is Kind.EVENTS:
                events += len(envelope.body["events"])
        return taken

    def run_once(self) -> int:
        """Process everything received so far and do the outbound work; returns messages processed."""
        processed = 0
        while taken := self._drain():
            self._process(taken)
            processed += len(taken)
        self.outbound()
        return processed

    def _process(self, envelopes: list[Envelope]) -> None:
        ingestor = self.ingestor
        batches: list[Batch] = []
        for envelope in envelopes:
            try:
                if envelope.kind is Kind.EVENTS:
                    batches.append((envelope.pump, events_of(envelope)))
                elif envelope.kind is Kind.STATUS:
                    ingestor.link_changed(envelope.pump, envelope.body["state"] == "online")
                elif envelope.kind is Kind.HELLO:
                    ingestor.hello(envelope.pump, envelope.body["next_seq"], envelope.body["acked_seq"])
                    self._outbound_due.set()
                elif envelope.kind is Kind.COMMAND_RESULT:
                    ingestor.command_result(envelope.pump, envelope.body)
                    self._outbound_due.set()
            except MessageError as error:
                logger.warning("dropped a message of pump %s: %s", envelope.pump, error.message)
        if not batches:
            return
        try:
            result = ingestor.commit(batches)
        except Exception:
            self.failed_commits += 1
            logger.exception("commit of %d batches failed; not acked (the pumps resend)", len(batches))
            self._stop.wait(RETRY_PAUSE_S)
            return
        for (pump, records), committed in zip(batches, result.committed, strict=True):
            if committed and self.transport.send(ack_message(pump, records[-1].seq)):
                self.acks_sent += 1

    def outbound(self) -> None:
        """Send queued commands and launch due deployment waves (only when something may be due)."""
        state = self._state
        if state is None or not self._outbound_due.is_set():
            return
        self._outbound_due.clear()
        with state.sessions() as session:
            deployment.advance(session, state)
            commands.dispatch_pending(session, state, self.transport.send)
        with state.sessions() as session:
            if commands.queued(session) or deployment.has_pending_waves(session):
                self._outbound_due.set()
