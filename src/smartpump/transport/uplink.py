"""The pump side of the link: events go into the durable outbox, batches go out when the link is up.

Therapy code only appends (``take``/``record``: one local write, never the network). ``step`` sends
the next batch after the last acknowledged seq, one batch in flight at a time; a batch not acked
within ``ack_timeout_s`` is sent again, each further time after twice the previous wait (``ack_wait_s``,
at most ``MAX_ACK_BACKOFF`` times the timeout), so a server that falls behind is not buried under the
fleet's resends; after a reconnect everything unacked is resent in order.
Commands arriving on the link are verified here; refusals are answered and reported to the pump.
An ack is believed only up to the highest seq this uplink has sent: an ack of events never sent (forged,
or from a server that never saw them) is refused (``uplink.ack_unsent``) and deletes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from smartpump.clock import Clock
from smartpump.errors import SignatureError, SmartpumpError
from smartpump.library.keys import TrustStore
from smartpump.pump.events import PumpEvent
from smartpump.transport.base import Transport
from smartpump.transport.commands import Command, CommandLedger, SignedCommand, verify_command
from smartpump.transport.messages import (
    MAX_BATCH_EVENTS,
    Envelope,
    Kind,
    MessageError,
    ack_of,
    command_result_message,
    events_message,
    hello_message,
)
from smartpump.transport.outbox import Outbox, OutboxError

COMMAND_COUNTER: Final = "command"
ACK_UNSENT: Final = "uplink.ack_unsent"
MAX_ACK_BACKOFF: Final = 8
"""A batch still unacknowledged is resent at most every 8 ack timeouts."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRefusal:
    """A command the pump refused: which one (as far as it could be read), the code and the reason."""

    command: str
    nonce: str
    code: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandPolicy:
    """How the pump checks commands and whom it tells: the keys it trusts now (asked at each command, since
    a ``trust.install`` changes them) and the two pump callbacks."""

    trust: Callable[[], TrustStore]
    on_command: Callable[[Command], None]
    on_refused: Callable[[CommandRefusal], None]


@dataclass(slots=True)
class UplinkStats:
    """Counters for the fleet view: batches sent and resent, acks, bad acks, commands."""

    batches_sent: int = 0
    batches_resent: int = 0
    acks: int = 0
    bad_acks: int = 0
    commands_accepted: int = 0
    commands_refused: int = 0
    heartbeats_sent: int = 0


def ack_wait_s(ack_timeout_s: float, resends: int) -> float:
    """How long a batch already resent ``resends`` times waits for its ack before it is sent again: the
    timeout doubled per resend, at most ``MAX_ACK_BACKOFF`` timeouts."""
    return ack_timeout_s * min(1 << min(resends, 30), MAX_ACK_BACKOFF)


class Uplink:
    """Moves one pump's events from its outbox to the server over a ``Transport``."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        transport: Transport,
        clock: Clock,
        batch_size: int = 200,
        ack_timeout_s: float = 30.0,
        commands: CommandPolicy | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be within 1-{MAX_BATCH_EVENTS}, got {batch_size}")
        self.pump = outbox.pump
        self._outbox = outbox
        self._transport = transport
        self._clock = clock
        self._batch_size = batch_size
        self._ack_timeout_s = ack_timeout_s
        self._commands = commands
        self._ledger = CommandLedger(last_counter=outbox.load_counter(COMMAND_COUNTER))
        self._lock = threading.RLock()
        self._in_flight_upto: int | None = None
        self._resends = 0
        self._sent_upto = outbox.acked_seq
        self._sent_at_s = 0.0
        self.stats = UplinkStats()

    def start(self) -> None:
        """Begin connecting; returns at once."""
        self._transport.start(self._on_message, self._on_connection)

    def record(self, event: PumpEvent) -> None:
        """Keep one new event in the outbox (a local write; never waits for the network)."""
        self._outbox.append(event)

    def take(self, events: Iterable[PumpEvent]) -> int:
        """Keep every event not yet kept (seq above the outbox's last seq); returns how many were new."""
        last = self._outbox.last_seq
        fresh = [e for e in events if e.seq > last]
        for event in fresh:
            self._outbox.append(event)
        return len(fresh)

    @property
    def backlog(self) -> int:
        """Events kept and not yet acknowledged."""
        return len(self._outbox)

    def step(self) -> bool:
        """Send the next batch if the link is up and none is waiting for its ack; True if one was sent."""
        with self._lock:
            if not self._transport.connected:
                return False
            now = self._clock.monotonic_s()
            resend = self._in_flight_upto is not None
            if resend and now - self._sent_at_s < ack_wait_s(self._ack_timeout_s, self._resends):
                return False
            acked = self._outbox.acked_seq
            batch = self._outbox.pending(acked, self._batch_size)
            if not batch:
                self._in_flight_upto = None
                return False
            if not self._transport.send(events_message(self.pump, batch)):
                return False
            if resend:
                self.stats.batches_resent += 1
                self._resends += 1
            else:
                self._resends = 0
            self.stats.batches_sent += 1
            self._in_flight_upto = batch[-1].seq
            self._sent_upto = max(self._sent_upto, batch[-1].seq)
            self._sent_at_s = now
            return True

    def heartbeat(self, envelope: Envelope) -> bool:
        """Send a status heartbeat now if the link is up (never kept: the next one replaces a lost one)."""
        if envelope.kind is not Kind.HEARTBEAT:
            raise MessageError(f"expected a heartbeat, got {envelope.kind.value}", code="message.kind")
        with self._lock:
            if not self._transport.connected:
                return False
            sent = self._transport.send(envelope)
        if sent:
            self.stats.heartbeats_sent += 1
        return sent

    def run(self, stop: threading.Event, *, interval_s: float = 1.0) -> None:
        """The comms thread's loop (not therapy's): ``step`` every ``interval_s`` until ``stop`` is set."""
        while not stop.wait(interval_s):
            self.step()

    def _on_connection(self, up: bool) -> None:
        with self._lock:
            self._in_flight_upto = None
            if not up:
                return
            hello = hello_message(
                self.pump, next_seq=self._outbox.last_seq + 1, acked_seq=self._outbox.acked_seq
            )
            self._transport.send(hello)
        self.step()

    def _on_message(self, envelope: Envelope) -> None:
        if envelope.pump != self.pump:
            return
        if envelope.kind is Kind.ACK:
            self._on_ack(ack_of(envelope))
        elif envelope.kind is Kind.COMMAND:
            self._on_command(envelope)

    def _on_ack(self, upto_seq: int) -> None:
        with self._lock:
            if upto_seq > self._sent_upto:
                self.stats.bad_acks += 1
                log.warning(
                    "pump %s refused an ack of seq %d: it has sent only up to %d (%s)",
                    self.pump,
                    upto_seq,
                    self._sent_upto,
                    ACK_UNSENT,
                )
                return
            try:
                self._outbox.acknowledge(upto_seq)
            except OutboxError:
                self.stats.bad_acks += 1
                return
            self.stats.acks += 1
            if self._in_flight_upto is not None and upto_seq >= self._in_flight_upto:
                self._in_flight_upto = None
        self.step()

    def _on_command(self, envelope: Envelope) -> None:
        raw = envelope.body["signed"]
        name, nonce = _label(raw)
        policy = self._commands
        if policy is None:
            self._refuse(None, name, nonce, "command.unsupported", "this pump takes no remote commands")
            return
        try:
            with self._lock:
                signed = SignedCommand.from_dict(raw)
                name, nonce = signed.command.command, signed.command.nonce
                command = verify_command(signed, policy.trust(), self.pump, self._clock.now(), self._ledger)
                self._outbox.save_counter(COMMAND_COUNTER, self._ledger.last_counter)
        except SignatureError as error:
            self._refuse(policy, name, nonce, error.code, error.message)
            return
        try:
            policy.on_command(command)
        except SmartpumpError as error:
            self._result(name, nonce, error.code, error.message)
            self.stats.commands_refused += 1
            return
        self.stats.commands_accepted += 1
        self._result(name, nonce, None, None)

    def _refuse(self, policy: CommandPolicy | None, name: str, nonce: str, code: str, reason: str) -> None:
        self.stats.commands_refused += 1
        if policy is not None:
            policy.on_refused(CommandRefusal(command=name, nonce=nonce, code=code, reason=reason))
        self._result(name, nonce, code, reason)

    def _result(self, name: str, nonce: str, code: str | None, reason: str | None) -> None:
        message = command_result_message(
            self.pump, nonce=nonce, command=name, ok=code is None, code=code, reason=reason
        )
        self._transport.send(message)


def _label(raw: object) -> tuple[str, str]:
    """The command name and nonce of a document, as far as they can be read (for the refusal)."""
    body = raw.get("command") if isinstance(raw, dict) else None
    if not isinstance(body, dict):
        return "unknown", "unknown"
    name, nonce = body.get("command"), body.get("nonce")
    return (
        name if isinstance(name, str) and name else "unknown",
        nonce if isinstance(nonce, str) and nonce else "unknown",
    )
