"""Background services the app lifespan starts and stops, and the transport ingest worker.

The ingest worker receives every pump's uplink over a ``Transport`` (MQTT when ``SMARTPUMP_MQTT_URL``
is set, the in-process broker otherwise), commits event batches in groups through ``Ingestor`` and acks
each batch only after its commit; it also sends queued commands and launches due deployment waves. A batch
carrying alarm events overtakes the messages waiting in the inbox (an urgent lane drained first,
``server/inbox.py``), and in a group it is committed and published before the heartbeats (applied together)
and the other batches. The inbox holds up to ``ingest_inbox_events`` (each message one more) before the
network thread waits, so a fleet's backlog waits where an alarm overtakes it. ``stop`` and ``poke`` wake
its thread at once, so neither waits for the poll.

The worker is supervised: a step that raises is logged, counted in ``restarts`` and run again after a
backoff that doubles from ``RESTART_MIN_S`` to ``RESTART_MAX_S`` (reset by the next step that completes);
a group commit the store refuses is retried batch by batch, so one batch holds back no other; an MQTT
network thread that ended is started again. ``health`` says what is wrong: the thread down, steps
failing, commits failing, no step completed for ``stall_after_s`` while work waits, the link down.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.device_identity import DeviceGate, IdentityRegistry
from smartpump.server.inbox import Inbox
from smartpump.server.ingest import Batch, Ingestor, carries_alarm
from smartpump.server.services import commands, deployment, quarantine
from smartpump.transport.base import ConnectionHandler, MessageHandler, Transport
from smartpump.transport.heartbeat import Heartbeat, heartbeat_of
from smartpump.transport.inprocess import InProcessBroker, InProcessTransport
from smartpump.transport.messages import Envelope, Kind, MessageError, Topics, ack_message, events_of
from smartpump.transport.mqtt import MqttSettings, MqttTransport, TlsOptions

if TYPE_CHECKING:
    from smartpump.server.settings import Settings
    from smartpump.server.state import ServerState

logger = logging.getLogger("smartpump.server.workers")

MAX_GROUP_MESSAGES: Final = 1000
"""Messages taken from the inbox for one step at most (a heartbeat group costs a few statements whatever its
size, so a long queue is taken in few steps and an alarm in it waits for one step, not for the queue)."""
MAX_GROUP_EVENTS: Final = 20_000
TICK_S: Final = 0.5
QUEUE_POLL_S: Final = 5.0
"""Seconds between two looks at the command queue without a poke: commands queued by another process (the
console's ``smartpump keys publish``, another replica) go out within this time."""
RETRY_PAUSE_S: Final = 1.0
RESTART_MIN_S: Final = 1.0
RESTART_MAX_S: Final = 30.0
DEFAULT_STALL_AFTER_S: Final = 60.0


class BackgroundService(Protocol):
    """Something that runs beside the API for the app's lifetime (ingest, demo fleet, MLLP listener)."""

    async def start(self, state: ServerState) -> None:
        """Begin (returns promptly; long work runs in a thread or a task)."""
        ...

    async def stop(self) -> None:
        """Stop and release everything started."""
        ...


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One background service's state for ``/health``: ok, or what is wrong in a short line."""

    name: str
    ok: bool
    detail: str


@runtime_checkable
class ReportsHealth(Protocol):
    """A background service that can say whether it is working."""

    def health(self) -> ServiceHealth:
        """Its state now."""
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
    """Broker settings from ``SMARTPUMP_MQTT_URL``, the topic prefix and, when set, the CA and the server's
    client certificate (TLS, whatever the URL's scheme)."""
    assert settings.mqtt_url is not None
    topics = Topics(settings.mqtt_topic_prefix)
    if settings.mqtt_ca_file is None and settings.mqtt_cert_file is None:
        return MqttSettings.from_url(settings.mqtt_url, topics=topics)
    tls = TlsOptions(
        ca_certs=None if settings.mqtt_ca_file is None else str(settings.mqtt_ca_file),
        certfile=None if settings.mqtt_cert_file is None else str(settings.mqtt_cert_file),
        keyfile=None if settings.mqtt_key_file is None else str(settings.mqtt_key_file),
    )
    return MqttSettings.from_url(settings.mqtt_url, topics=topics, tls=tls)


def server_transport(settings: Settings, link: InProcessLink) -> Transport:
    """MQTT when configured (a unique client id per process, in the shared ingest group), else in-process."""
    if settings.mqtt_url:
        client_id = f"{settings.mqtt_client_id}-{uuid.uuid4().hex[:8]}"
        return MqttTransport.for_server(mqtt_settings(settings), client_id=client_id)
    return link.server_transport()


class IngestWorker:
    """Receives pump messages, commits event batches (then acks them), sends commands, runs rollouts."""

    def __init__(
        self,
        transport: Transport,
        *,
        link: InProcessLink | None = None,
        tick_s: float = TICK_S,
        stall_after_s: float = DEFAULT_STALL_AFTER_S,
        queue_poll_s: float = QUEUE_POLL_S,
    ) -> None:
        self.transport = transport
        self.queue_poll_s = queue_poll_s
        self._queue_polled_s = time.monotonic()
        self.link = link
        self.tick_s = tick_s
        self.stall_after_s = stall_after_s
        self._inbox = Inbox(None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ingestor: Ingestor | None = None
        self._gate: DeviceGate | None = None
        self._state: ServerState | None = None
        self._outbound_due = threading.Event()
        self._poked = threading.Event()
        self.acks_sent = 0
        self.failed_commits = 0
        self.restarts = 0
        self._backoff_s = RESTART_MIN_S
        self._failure: str | None = None
        self._commit_failure: str | None = None
        self._step_started_s: float | None = None
        self._last_step_s = time.monotonic()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def inbox(self) -> Inbox:
        """The messages received and not processed yet."""
        return self._inbox

    @property
    def gate(self) -> DeviceGate:
        """The device gate (after ``start``)."""
        assert self._gate is not None, "the worker is not started"
        return self._gate

    @property
    def ingestor(self) -> Ingestor:
        """The ingestor (after ``start``)."""
        assert self._ingestor is not None, "the worker is not started"
        return self._ingestor

    async def start(self, state: ServerState) -> None:
        """Connect the transport and start the worker thread."""
        self.attach(state)
        self._thread = threading.Thread(target=self._supervise, name="smartpump-ingest", daemon=True)
        self._thread.start()

    def attach(self, state: ServerState) -> None:
        """Bind to the app state and start receiving (without a thread: tests call ``run_once``)."""
        self._state = state
        self._ingestor = Ingestor(state)
        path = state.settings.device_registry
        self._gate = DeviceGate(None if path is None else IdentityRegistry(path, state.clock), state.clock)
        self._outbound_due.set()
        bounded = isinstance(self.transport, MqttTransport)
        self._inbox = Inbox(state.settings.ingest_inbox_events if bounded else None)
        inbox = self._inbox
        state.metrics.ingest_inbox.set_function(lambda: inbox.weight)
        self.transport.start(self._receive, self._on_connection)

    async def stop(self) -> None:
        """Wake the thread, wait for it to end its step and close the transport."""
        self._stop.set()
        self._inbox.close()
        self._inbox.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.transport.close()

    def poke(self) -> None:
        """Something is waiting to go out (a command, a deployment wave): do the outbound work now."""
        self._outbound_due.set()
        self._poked.set()
        self._inbox.wake()

    def _receive(self, envelope: Envelope) -> None:
        """A message from the transport: a batch carrying alarm events goes to the urgent lane, which the next
        step drains first (it overtakes the messages waiting); waits while the inbox is full."""
        self._inbox.put(envelope, urgent=carries_alarm((envelope.pump, envelope.records)))

    def _on_connection(self, up: bool) -> None:
        if up:
            self._outbound_due.set()
        logger.info("ingest transport %s", "connected" if up else "disconnected")

    def health(self) -> ServiceHealth:
        """``ok``, or every way ingest is not making progress (see the module docstring)."""
        now = time.monotonic()
        problems: list[str] = []
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            problems.append("worker thread down")
        if self._failure is not None:
            problems.append(f"failing ({self.restarts} restarts): {self._failure}")
        if self._commit_failure is not None:
            problems.append(f"commits failing: {self._commit_failure}")
        started = self._step_started_s
        if started is not None and now - started > self.stall_after_s:
            problems.append(f"stalled: one step running for {now - started:.0f} s")
        elif (waiting := len(self._inbox)) and now - self._last_step_s > self.stall_after_s:
            problems.append(f"stalled: {waiting} messages waiting {now - self._last_step_s:.0f} s")
        if self._state is not None:
            if isinstance(self.transport, MqttTransport) and not self.transport.alive:
                problems.append("mqtt network thread down")
            elif not self.transport.connected:
                problems.append("transport disconnected")
        return ServiceHealth("ingest", not problems, "; ".join(problems) or "ok")

    def _supervise(self) -> None:
        """The worker thread: runs the loop; after a failure logs it, counts a restart, waits the backoff
        and runs the loop again (the batches of the failed step were not acked: the pumps resend them)."""
        while not self._stop.is_set():
            try:
                self._run()
            except Exception as error:
                self.restarts += 1
                self._failure = f"{type(error).__name__}: {error}"[:200]
                self._step_started_s = None
                self._outbound_due.set()
                if self._state is not None:
                    self._state.metrics.worker_restarts.labels(worker="ingest").inc()
                logger.exception(
                    "ingest worker failed (restart %d in %.0f s); unacked batches will be resent",
                    self.restarts,
                    self._backoff_s,
                )
                self._stop.wait(self._backoff_s)
                self._backoff_s = min(self._backoff_s * 2, RESTART_MAX_S)

    def _run(self) -> None:
        last_tick = 0.0
        while not self._stop.is_set():
            self._inbox.wait(self.tick_s)
            if self._stop.is_set():
                return
            self._step_started_s = time.monotonic()
            taken = self._drain()
            worked = bool(taken)
            if taken:
                self._process(taken)
            if self._poked.is_set() or time.monotonic() - last_tick >= self.tick_s:
                self._poked.clear()
                last_tick = time.monotonic()
                self._watch_transport()
                worked = self.outbound() or worked
            self._step_done(worked=worked)

    def _step_done(self, *, worked: bool) -> None:
        """A step completed; one that did work (messages, outbound) clears the failure and the backoff."""
        self._step_started_s = None
        self._last_step_s = time.monotonic()
        if worked:
            self._failure = None
            self._backoff_s = RESTART_MIN_S

    def _watch_transport(self) -> None:
        """Start the MQTT network thread again if it ended (after ``attach`` and before ``stop``)."""
        transport, state = self.transport, self._state
        if isinstance(transport, MqttTransport) and state is not None and not self._stop.is_set():
            if transport.alive:
                return
            transport.revive()
            state.metrics.worker_restarts.labels(worker="mqtt").inc()

    def _drain(self) -> list[Envelope]:
        """Up to a group of messages (``MAX_GROUP_MESSAGES``, ``MAX_GROUP_EVENTS``): the urgent lane first,
        then the inbox."""
        return self._inbox.take(MAX_GROUP_MESSAGES, MAX_GROUP_EVENTS)

    def run_once(self) -> int:
        """Process everything received so far and do the outbound work; returns messages processed."""
        processed = 0
        while taken := self._drain():
            self._process(taken)
            processed += len(taken)
        self._watch_transport()
        worked = self.outbound()
        self._step_done(worked=worked or processed > 0)
        return processed

    def _process(self, envelopes: list[Envelope]) -> None:
        """One group: link, hello and command messages as they come; then the batches carrying alarm events
        (committed, acked and their views published first), the group's heartbeats together, the other
        batches."""
        ingestor = self.ingestor
        batches: list[Batch] = []
        heartbeats: list[tuple[str, Heartbeat]] = []
        held: dict[str, quarantine.Held] = {}
        for envelope in envelopes:
            refused = self.gate.refusal(envelope.pump, envelope.kind.value)
            if refused is not None:
                events = len(envelope.body["events"]) if envelope.kind is Kind.EVENTS else 0
                held[envelope.pump] = quarantine.add(held.get(envelope.pump), refused, events)
                continue
            try:
                if envelope.kind is Kind.EVENTS:
                    batches.append((envelope.pump, events_of(envelope)))
                elif envelope.kind is Kind.STATUS:
                    ingestor.link_changed(envelope.pump, envelope.body["state"] == "online")
                elif envelope.kind is Kind.HEARTBEAT:
                    heartbeats.append((envelope.pump, heartbeat_of(envelope)))
                elif envelope.kind is Kind.HELLO:
                    ingestor.hello(envelope.pump, envelope.body["next_seq"], envelope.body["acked_seq"])
                    self._outbound_due.set()
                elif envelope.kind is Kind.COMMAND_RESULT:
                    ingestor.command_result(envelope.pump, envelope.body)
                    self._outbound_due.set()
            except MessageError as error:
                logger.warning("dropped a message of pump %s: %s", envelope.pump, error.message)
        ingestor.hold(held)
        self._store([batch for batch in batches if carries_alarm(batch)])
        ingestor.heartbeats(heartbeats)
        self._store([batch for batch in batches if not carries_alarm(batch)])

    def _store(self, batches: list[Batch]) -> None:
        """Commit batches and ack each one committed."""
        if not batches:
            return
        for (pump, records), committed in zip(batches, self._commit(batches), strict=True):
            if committed and self.transport.send(ack_message(pump, records[-1].seq)):
                self.acks_sent += 1

    def _commit(self, batches: list[Batch]) -> tuple[bool, ...]:
        """Which batches were committed: the group in one transaction, or, when the store refuses it,
        each batch alone, so one batch it cannot store holds back no other (none is acked unstored)."""
        try:
            committed = self.ingestor.commit(batches).committed
        except Exception as error:
            self.failed_commits += 1
            logger.exception("commit of %d batches failed; committing them one by one", len(batches))
            committed = (False,) if len(batches) == 1 else tuple(map(self._commit_alone, batches))
            if not any(committed):
                self._commit_failure = f"{type(error).__name__}: {error}"[:200]
                self._stop.wait(RETRY_PAUSE_S)
                return committed
        self._commit_failure = None
        return committed

    def _commit_alone(self, batch: Batch) -> bool:
        pump, records = batch
        try:
            return self.ingestor.commit([batch]).committed[0]
        except Exception:
            self.failed_commits += 1
            logger.exception(
                "batch of pump %s (seq %d-%d) not stored; not acked", pump, records[0].seq, records[-1].seq
            )
            return False

    def outbound(self) -> bool:
        """Send queued commands and launch due deployment waves (only when something may be due: poked, a
        pump said hello or answered, or ``queue_poll_s`` passed); returns whether it ran."""
        state = self._state
        now_s = time.monotonic()
        if now_s - self._queue_polled_s >= self.queue_poll_s:
            self._queue_polled_s = now_s
            self._outbound_due.set()
        if state is None or not self._outbound_due.is_set():
            return False
        self._outbound_due.clear()
        with unit_of_work(state.ingest_sessions) as session:
            deployment.advance(session, state)
        # one unit per command: a command sent is committed as sent before the next one goes
        for _ in range(commands.DISPATCH_LIMIT):
            with unit_of_work(state.ingest_sessions) as session:
                if not commands.dispatch_next(session, state, self.transport.send):
                    break
        with state.ingest_sessions() as session:
            if commands.queued(session) or deployment.has_pending_waves(session):
                self._outbound_due.set()
        return True
