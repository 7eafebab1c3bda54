"""An asyncio MLLP server: decode, parse, de-duplicate by MSH-10, hand to the injected handler, answer.

A duplicate control ID (same sender, same MSH-10) is answered with the original reply and never
reaches the handler twice. Malformed input gets AE/AR; a handler failure gets AE; nothing crashes
the server. Bounded: at most ``max_connections`` open connections (more are closed at once), an idle
connection is closed after ``idle_timeout_s``, refusals are logged at most ``refusal_logs_per_minute``
times per peer host (the rest counted). Senders are known: with ``allowed_senders`` only those
sending applications (MSH-3, optionally with their facility MSH-4) are answered, others get AR
``hl7.sender_not_allowed`` and reach nothing; over TLS with client certificates MSH-3 must be the
certificate's common name, so the sender the audit records is the one that authenticated.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from smartpump.clock import Clock
from smartpump.interop.hl7v2.ack import (
    AckCode,
    ErrorDetail,
    SalvagedHeader,
    ack_code_for_error,
    ack_code_of,
    build_ack,
    error_detail_for,
    salvage_header,
)
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, decode, parse
from smartpump.interop.hl7v2.mllp import MAX_MESSAGE_BYTES, MllpStream

Handler = Callable[[Message], Awaitable[Message]]
"""Answers one parsed inbound message with its acknowledgement (ACK, RRG^O16...)."""
DEFAULT_DEDUP_SIZE: Final = 10_000
DEFAULT_MAX_CONNECTIONS: Final = 64
DEFAULT_IDLE_TIMEOUT_S: Final = 120.0
DEFAULT_REFUSAL_LOGS_PER_MINUTE: Final = 10


@dataclass(frozen=True, slots=True)
class Sender:
    """An allowed sending application (MSH-3) and, when given, its facility (MSH-4)."""

    application: str
    facility: str | None = None

    @classmethod
    def parse(cls, text: str) -> Sender:
        """``APP`` or ``APP/FACILITY`` (the form of the ``SMARTPUMP_HL7_ALLOWED_SENDERS`` list)."""
        application, _, facility = text.strip().partition("/")
        if not application.strip():
            raise ValueError(f"an allowed HL7 sender needs an application name, got {text!r}")
        return cls(application.strip(), facility.strip() or None)

    def allows(self, application: str, facility: str) -> bool:
        """True when a message from MSH-3 ``application`` and MSH-4 ``facility`` is this sender's."""
        same_facility = self.facility is None or self.facility.casefold() == facility.casefold()
        return self.application.casefold() == application.casefold() and same_facility


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One handled message, for logs: peer, type, control ID, answer code, duplicate or not."""

    peer: str
    message_type: str
    control_id: str
    ack_code: str
    is_duplicate: bool
    error: str = ""


def new_control_id() -> str:
    """A fresh MSH-10 for a message we originate (20 hex characters)."""
    return uuid.uuid4().hex[:20]


def check_inbound(message: Message) -> None:
    """What every message we act on must have: MSH-9 and a non-empty MSH-10.

    Raises:
        Hl7ParseError: ``hl7.no_control_id`` or ``hl7.unsupported_type``.
    """
    if not message.control_id:
        raise Hl7ParseError("MSH-10 (message control ID) is empty", code="hl7.no_control_id")
    if not message.message_type[0]:
        raise Hl7ParseError("MSH-9 (message type) is empty", code="hl7.unsupported_type")


class Hl7Listener:
    """The MLLP server; ``handler`` decides what each message means (injected by the service)."""

    def __init__(
        self,
        handler: Handler,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        dedup_size: int = DEFAULT_DEDUP_SIZE,
        on_exchange: Callable[[Exchange], None] | None = None,
        allowed_senders: frozenset[Sender] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        refusal_logs_per_minute: int = DEFAULT_REFUSAL_LOGS_PER_MINUTE,
    ) -> None:
        self._handler = handler
        self._clock = clock
        self.host = host
        self.port = port
        self._max = max_message_bytes
        self._dedup_size = dedup_size
        self._answered: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._on_exchange = on_exchange
        self._server: asyncio.Server | None = None
        self._lock = asyncio.Lock()
        self._connections: set[asyncio.Task[None]] = set()
        self._allowed = allowed_senders
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s
        self._refusal_logs_per_minute = refusal_logs_per_minute
        self._refusal_logs: dict[tuple[str, str], int] = {}
        self.refused_connections = 0
        self.idle_closed = 0
        self.unlogged_refusals = 0

    async def start(self) -> tuple[str, int]:
        """Bind and listen; returns the bound (host, port) (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self._ssl)
        bound = self._server.sockets[0].getsockname()
        self.port = int(bound[1])
        return str(bound[0]), self.port

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop accepting and close the listening socket."""
        if self._server is not None:
            self._server.close()
            connections = list(self._connections)
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        stream = MllpStream(reader, writer, self._max)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        identity = _certificate_name(writer.get_extra_info("peercert"))
        try:
            if len(self._connections) > self._max_connections:
                self.refused_connections += 1
                self._refusal(peer, "mllp.too_many_connections", f"more than {self._max_connections} open")
                return
            while True:
                try:
                    received = await asyncio.wait_for(stream.receive(), timeout=self._idle_timeout_s)
                except TimeoutError:
                    self.idle_closed += 1
                    self._refusal(peer, "mllp.idle", f"nothing received for {self._idle_timeout_s:g} s")
                    return
                if received is None:
                    return
                reply = await self.answer(
                    received.payload, oversize=received.oversize, peer=peer, identity=identity
                )
                await stream.send(reply.encode("utf-8"))
        except (ConnectionError, OSError, asyncio.CancelledError):
            # a peer that goes away, or the listener closing, ends this connection only
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def answer(
        self, payload: bytes, *, oversize: bool = False, peer: str = "", identity: str | None = None
    ) -> str:
        """The reply text for one received payload (also usable without a socket); ``identity`` is the
        common name of the peer's TLS client certificate, when it presented one."""
        now = self._clock.now()
        if oversize:
            error = Hl7ParseError(f"message exceeds {self._max} bytes", code="mllp.too_large")
            return self._error_reply(None, "", error, now, peer)
        try:
            text = decode(payload)
            message = parse(text)
            check_inbound(message)
        except Hl7ParseError as error:
            salvaged = salvage_header(payload.decode("latin-1"))
            return self._error_reply(None, salvaged.control_id, error, now, peer, salvaged)
        refusal = self._sender_refusal(message, identity)
        if refusal is not None:
            return self._error_reply(message, message.control_id, refusal, now, peer)
        key = (message.msh.value(3).strip(), message.control_id)
        async with self._lock:
            previous = self._answered.get(key)
            if previous is not None:
                self._answered.move_to_end(key)
                self._log(peer, message, previous, duplicate=True)
                return previous
            try:
                reply = (await self._handler(message)).to_er7()
            except Hl7ParseError as error:
                return self._error_reply(message, message.control_id, error, now, peer)
            except Exception as error:  # the handler is outside our control: answer AE, stay up
                detail = ErrorDetail(text=f"{type(error).__name__}: {error}")
                reply = build_ack(
                    message, AckCode.AE, control_id=new_control_id(), timestamp=now, errors=(detail,)
                ).to_er7()
                self._log(peer, message, reply, duplicate=False, error=detail.text)
                return reply
            self._answered[key] = reply
            while len(self._answered) > self._dedup_size:
                self._answered.popitem(last=False)
        self._log(peer, message, reply, duplicate=False)
        return reply

    def _sender_refusal(self, message: Message, identity: str | None) -> Hl7ParseError | None:
        """Why this sender may not be answered (None when it may)."""
        application, facility = message.msh.value(3, 1).strip(), message.msh.value(4, 1).strip()
        if identity is not None and application.casefold() != identity.casefold():
            return Hl7ParseError(
                f"MSH-3 {application!r} is not the sender that authenticated ({identity!r})",
                code="hl7.sender_not_allowed",
            )
        if self._allowed is not None and not any(s.allows(application, facility) for s in self._allowed):
            return Hl7ParseError(
                f"sender {application!r} of facility {facility!r} is not on the allow-list",
                code="hl7.sender_not_allowed",
            )
        return None

    def _refusal(self, peer: str, code: str, text: str) -> None:
        """Log a refused connection or message, at most ``refusal_logs_per_minute`` per peer host."""
        if self._on_exchange is None or not self._may_log(peer):
            return
        self._on_exchange(
            Exchange(
                peer=peer,
                message_type="?",
                control_id="",
                ack_code="",
                is_duplicate=False,
                error=f"{code}: {text}",
            )
        )

    def _may_log(self, peer: str) -> bool:
        minute = self._clock.now().strftime("%Y%m%d%H%M")
        key = (peer.rpartition(":")[0] or peer, minute)
        if len(self._refusal_logs) > self._dedup_size:
            self._refusal_logs.clear()
        count = self._refusal_logs.get(key, 0) + 1
        self._refusal_logs[key] = count
        if count > self._refusal_logs_per_minute:
            self.unlogged_refusals += 1
            return False
        return True

    def _error_reply(
        self,
        message: Message | None,
        control_id: str,
        error: Hl7ParseError,
        now: datetime,
        peer: str,
        salvaged: SalvagedHeader | None = None,
    ) -> str:
        reply = build_ack(
            message,
            ack_code_for_error(error.code),
            control_id=new_control_id(),
            timestamp=now,
            errors=(error_detail_for(error),),
            acked_control_id=control_id,
            salvaged=salvaged,
        )
        if self._on_exchange is not None and self._may_log(peer):
            self._on_exchange(
                Exchange(
                    peer=peer,
                    message_type=message.type_text if message else "?",
                    control_id=control_id,
                    ack_code=ack_code_for_error(error.code).value,
                    is_duplicate=False,
                    error=f"{error.code}: {error.message}",
                )
            )
        return reply.to_er7()

    def _log(self, peer: str, message: Message, reply: str, *, duplicate: bool, error: str = "") -> None:
        if self._on_exchange is None:
            return
        code = ack_code_of(parse(reply))
        self._on_exchange(
            Exchange(
                peer=peer,
                message_type=message.type_text,
                control_id=message.control_id,
                ack_code=code.value if code else "",
                is_duplicate=duplicate,
                error=error,
            )
        )


def _certificate_name(certificate: object) -> str | None:
    """The common name of a verified TLS peer certificate (``getpeercert()`` form), None without one."""
    if not isinstance(certificate, dict):
        return None
    for rdn in certificate.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


async def accept_all(message: Message, clock: Clock) -> Message:
    """The default answer when no service is plugged in: AA (CA in enhanced mode)."""
    code = AckCode.CA if message.accept_ack_type else AckCode.AA
    return build_ack(message, code, control_id=new_control_id(), timestamp=clock.now())
