"""An in-process broker and its transports: the embedded default and the test double for MQTT.

Messages cross the broker as encoded bytes (the same schema as on MQTT). Faults (drop, duplicate,
reorder, delay) are drawn from one seeded generator, so a run is reproducible; nothing moves until
``deliver`` is called, which makes the timing explicit in tests and in the simulation.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Final

from smartpump.clock import Clock
from smartpump.transport.base import ConnectionHandler, MessageHandler
from smartpump.transport.messages import (
    DOWNLINK_KINDS,
    UPLINK_KINDS,
    Envelope,
    Kind,
    MessageError,
    PumpState,
    decode,
    pump_id,
    status_message,
)

SERVER: Final = "server"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Per-message fault probabilities (0-1), a fixed delay in clock seconds, and the seed."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault probability {name} must be within 0-1, got {value}")
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s}")


@dataclass(slots=True, kw_only=True)
class _Queued:
    due_s: float
    target: str
    raw: bytes


@dataclass(slots=True)
class BrokerStats:
    """What the broker did: messages accepted, delivered, dropped and duplicated by faults."""

    accepted: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0


class InProcessBroker:
    """Routes pump uplink messages to the server endpoints (split between them, like a shared
    subscription) and server messages to the addressed pump, queueing them while it is offline."""

    def __init__(self, *, faults: Faults | None = None, clock: Clock | None = None) -> None:
        self.faults = faults or Faults()
        if self.faults.delay_s and clock is None:
            raise ValueError("a delay fault needs a clock")
        self._clock = clock
        self._rng = random.Random(self.faults.seed)
        self._queue: list[_Queued] = []
        self._pumps: dict[str, InProcessTransport] = {}
        self._servers: list[InProcessTransport] = []
        self._next_server = 0
        self._status: dict[str, PumpState] = {}
        self.stats = BrokerStats()

    def pump_endpoint(self, pump: str) -> InProcessTransport:
        """A new transport for one pump (replaces an earlier one for the same id, as after a restart)."""
        endpoint = InProcessTransport(self, pump_id(pump))
        self._pumps[endpoint.name] = endpoint
        return endpoint

    def server_endpoint(self) -> InProcessTransport:
        """A new server replica's transport; uplink messages are split round-robin between replicas."""
        endpoint = InProcessTransport(self, SERVER)
        self._servers.append(endpoint)
        return endpoint

    def status(self, pump: str) -> PumpState | None:
        """The retained link status of a pump (``offline`` is the last will), None if never seen."""
        return self._status.get(pump)

    @property
    def in_flight(self) -> int:
        """Messages accepted and not yet delivered."""
        return len(self._queue)

    def deliver(self) -> int:
        """Deliver every message that is due and whose receiver is online; returns how many."""
        now = self._now()
        due = [q for q in self._queue if q.due_s <= now and self._receiver(q.target, peek=True) is not None]
        if not due:
            return 0
        for q in due:
            self._queue.remove(q)
        for i in range(len(due) - 1):
            if self._rng.random() < self.faults.reorder:
                due[i], due[i + 1] = due[i + 1], due[i]
        for q in due:
            receiver = self._receiver(q.target, peek=False)
            if receiver is None:
                self._queue.append(q)
                continue
            self.stats.delivered += 1
            receiver.receive(q.raw)
        return len(due)

    def run_until_idle(self, *, max_rounds: int = 10_000) -> int:
        """Deliver repeatedly (replies included) until nothing is deliverable; returns the rounds run."""
        for rounds in range(max_rounds):
            if self.deliver() == 0:
                return rounds
        raise RuntimeError(f"broker still busy after {max_rounds} rounds")

    def publish(self, sender: InProcessTransport, envelope: Envelope) -> bool:
        """Accept a message from an endpoint, applying the fault plan; False when the sender is offline."""
        if not sender.connected:
            return False
        raw = envelope.encode()
        if envelope.kind is Kind.STATUS:
            self._status[envelope.pump] = PumpState(envelope.body["state"])
        target = SERVER if sender.name != SERVER else envelope.pump
        self.stats.accepted += 1
        if self._rng.random() < self.faults.drop:
            self.stats.dropped += 1
            return True
        copies = 1
        if self._rng.random() < self.faults.duplicate:
            self.stats.duplicated += 1
            copies = 2
        due_s = self._now() + self.faults.delay_s
        self._queue.extend(_Queued(due_s=due_s, target=target, raw=raw) for _ in range(copies))
        return True

    def link_changed(self, endpoint: InProcessTransport, up: bool) -> None:
        """Record a pump's link change; losing it publishes its last will (retained ``offline``)."""
        if endpoint.name != SERVER and not up:
            self._status[endpoint.name] = PumpState.OFFLINE

    def _receiver(self, target: str, *, peek: bool) -> InProcessTransport | None:
        if target != SERVER:
            pump = self._pumps.get(target)
            return pump if pump is not None and pump.connected else None
        online = [s for s in self._servers if s.connected]
        if not online:
            return None
        if peek:
            return online[0]
        chosen = online[self._next_server % len(online)]
        self._next_server += 1
        return chosen

    def _now(self) -> float:
        return self._clock.monotonic_s() if self._clock is not None else 0.0


@dataclass(slots=True)
class _Handlers:
    on_message: MessageHandler | None = None
    on_connection: ConnectionHandler | None = None


class InProcessTransport:
    """One endpoint on an ``InProcessBroker``; ``set_link`` simulates the network going down and up."""

    def __init__(self, broker: InProcessBroker, name: str) -> None:
        self._broker = broker
        self.name = name
        self._connected = False
        self._started = False
        self._link_up = True
        self._handlers = _Handlers()
        self._rejected = 0

    @property
    def connected(self) -> bool:
        """Whether the endpoint is started, not closed, and its link is up."""
        return self._connected

    @property
    def rejected(self) -> int:
        """How many received messages failed to decode or validate."""
        return self._rejected

    def start(self, on_message: MessageHandler, on_connection: ConnectionHandler) -> None:
        """Register callbacks and connect at once if the link is up."""
        self._handlers = _Handlers(on_message=on_message, on_connection=on_connection)
        self._started = True
        self._update()

    def send(self, envelope: Envelope) -> bool:
        """Hand a message to the broker; False while disconnected."""
        allowed = DOWNLINK_KINDS if self.name == SERVER else UPLINK_KINDS
        if envelope.kind not in allowed:
            raise MessageError(
                f"{self.name} may not send {envelope.kind.value} messages", code="message.direction"
            )
        if self.name != SERVER and envelope.pump != self.name:
            raise MessageError(
                f"pump {self.name!r} may not send as {envelope.pump!r}", code="message.pump_mismatch"
            )
        return self._broker.publish(self, envelope)

    def close(self) -> None:
        """Disconnect for good."""
        self._started = False
        self._update()

    def set_link(self, up: bool) -> None:
        """Simulate the network: down drops the connection (last will), up reconnects."""
        self._link_up = up
        self._update()

    def receive(self, raw: bytes) -> None:
        """Called by the broker with one message's bytes; malformed ones are counted and dropped."""
        try:
            envelope = decode(raw)
        except MessageError as error:
            self._rejected += 1
            log.warning("%s dropped a malformed message: %s (%s)", self.name, error.message, error.code)
            return
        if self._handlers.on_message is not None:
            self._handlers.on_message(envelope)

    def _update(self) -> None:
        up = self._started and self._link_up
        if up == self._connected:
            return
        self._connected = up
        self._broker.link_changed(self, up)
        if up and self.name != SERVER:
            self._broker.publish(self, status_message(self.name, PumpState.ONLINE))
        if self._handlers.on_connection is not None:
            self._handlers.on_connection(up)
