"""MQTT 5 transport (paho-mqtt 2.x): QoS 1, persistent pump sessions, last will, shared subscriptions.

Acks go at QoS 0: an ack is itself the answer to a QoS 1 batch, idempotent and cumulative, and the pump
resends a batch whose ack it did not get (stored once). At QoS 1 each ack waited in paho's window of
messages in flight for a PUBACK that queues behind everything the broker has for the server: with the
server a few seconds behind, acks left at 20 per backlog and the pumps' resends deepened the backlog.
The server's window for its other QoS 1 messages (commands) is ``SERVER_MAX_INFLIGHT``. The network thread
reads up to ``READ_BURST`` packets each time the socket is readable (``BurstReadingClient``).

A pump endpoint keeps its session (clean_start False, session expiry) so commands queued while it was
offline arrive on reconnect; the broker publishes its retained ``offline`` status when it dies. Server
replicas share ``$share/<group>/.../pumps/+/events`` so each batch goes to one of them.
``IngestSubscriber`` acks a batch only after the injected commit callback returned True.

No received message can stop the network thread: a message that fails to decode is counted in
``rejected`` and logged with its code, and a handler that raises is logged and counted in
``handler_failures``; paho is told to suppress callback exceptions as well. Should the thread still end,
``alive`` turns False and ``revive`` starts it again (the server's ingest worker watches it). A publish
the broker refuses (its ACL: not this client's topic) is logged and counted in ``refused_publishes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from smartpump.transport.base import ConnectionHandler, MessageHandler, Transport
from smartpump.transport.messages import (
    DOWNLINK_KINDS,
    UPLINK_KINDS,
    Envelope,
    EventRecord,
    Kind,
    MessageError,
    PumpState,
    Topics,
    ack_message,
    decode,
    events_of,
    pump_id,
    status_message,
)

log = logging.getLogger(__name__)

_new_properties: Final[Callable[[int], Properties]] = Properties  # paho leaves Properties.__init__ untyped

QOS: Final = 1
ACK_QOS: Final = 0
SERVER_MAX_INFLIGHT: Final = 1000
"""QoS 1 messages a server replica has in flight at once (paho's default is 20): it commands thousands of
pumps, and each window waits a round trip through the broker."""
READ_BURST: Final = 500
"""Packets the network thread reads per wake-up (then only what is buffered); then it writes (acks)."""
RECV_BYTES: Final = 65536
"""Bytes one ``recv`` of the network thread asks for."""
DEFAULT_PORT: Final = 1883
DEFAULT_TLS_PORT: Final = 8883


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsOptions:
    """TLS for the broker link (TLS 1.2 or newer): trusted CA file, and a client certificate if used."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the broker's certificate and name."""
        context = ssl.create_default_context(cafile=self.ca_certs)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.certfile is not None:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """Where the broker is and how to reach it; credentials and TLS are passed in, never built in."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None
    tls: TlsOptions | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    topics: Topics = field(default_factory=Topics)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MqttSettings:
        """Settings from ``mqtt://[user:password@]host[:port]`` or ``mqtts://`` (TLS with system CAs)."""
        parts = urlsplit(url)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(f"not an mqtt:// or mqtts:// URL: {url!r}")
        secure = parts.scheme == "mqtts"
        options.setdefault("tls", TlsOptions() if secure else None)
        return cls(
            host=parts.hostname,
            port=parts.port or (DEFAULT_TLS_PORT if secure else DEFAULT_PORT),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **options,
        )


class BurstReadingClient(paho.Client):
    """paho's client with few system calls per message: large reads and writes, wake-ups only when needed.

    paho reads each packet with three or four ``recv`` calls, writes each packet with its own ``send``,
    and wakes its network thread with one more ``send`` per packet queued. Every call releases the
    interpreter lock, and getting it back waits for any busy thread of the process (up to the switch
    interval, 5 ms): a server replica whose ingest thread was busy received a few hundred messages a
    second. Here one ``recv`` of up to ``RECV_BYTES`` feeds paho's packet reader from memory, a wake-up
    reads up to ``READ_BURST`` packets and then only what is already in memory (nothing waits in memory
    while ``select`` sleeps), everything queued goes out in one ``send``, and the network thread is woken
    only by the first packet another thread queues while none waits.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rx_sock: object = None
        self._rx = b""
        self._rx_at = 0
        self._rx_refill = True
        self._tx_sock: object = None
        self._tx = bytearray()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read and handle packets until none is waiting (at most ``READ_BURST`` reads of the socket)."""
        packets = 0
        try:
            while True:
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                self._rx_refill = packets < READ_BURST
                rc = self._packet_read()
                if rc > 0:
                    return self._loop_rc_handle(rc)
                if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
                packets += 1
        finally:
            self._rx_refill = True

    def want_write(self) -> bool:
        """Packets queued or bytes not yet sent."""
        return super().want_write() or (bool(self._tx) and self._sock is self._tx_sock)

    def _sock_recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes from the buffer, refilled from the socket when empty (and allowed)."""
        if self._sock is not self._rx_sock:
            self._rx_sock, self._rx, self._rx_at = self._sock, b"", 0
        if self._rx_at >= len(self._rx):
            if not self._rx_refill:
                raise BlockingIOError
            chunk = super()._sock_recv(RECV_BYTES)
            if not chunk:
                return chunk
            self._rx, self._rx_at = chunk, 0
        start = self._rx_at
        self._rx_at = min(start + bufsize, len(self._rx))
        return self._rx[start : self._rx_at]

    def _sock_send(self, buf: bytes | bytearray) -> int:
        """Take a packet's bytes into the send buffer (``_packet_write`` sends the buffer)."""
        if self._sock is None:
            raise ConnectionError("no socket")
        if self._sock is not self._tx_sock:
            self._tx_sock, self._tx = self._sock, bytearray()
        self._tx += buf
        return len(buf)

    def _packet_write(self) -> MQTTErrorCode:
        """Move every queued packet into the send buffer, then send as much of it as the socket takes."""
        rc = super()._packet_write()
        if rc > 0:
            return rc
        return self._flush()

    def _flush(self) -> MQTTErrorCode:
        while self._tx and self._sock is not None and self._sock is self._tx_sock:
            try:
                sent = super()._sock_send(self._tx)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as error:
                log.warning("mqtt send failed for %s: %s", self._client_id, error)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if sent <= 0:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            del self._tx[:sent]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_close(self) -> None:
        """Send what the buffer holds if the socket takes it now (a DISCONNECT is in it), then close."""
        self._flush()
        super()._sock_close()

    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: paho.MQTTMessageInfo | None = None,
    ) -> MQTTErrorCode:
        """Queue a packet; wake the network thread only when another thread queues the first one."""
        if self._thread is None:
            return super()._packet_queue(command, packet, mid, qos, info)
        self._out_packet.append(
            {
                "command": command,
                "mid": mid,
                "qos": qos,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": info,
            }
        )
        wake = self._sockpairW
        if wake is not None and threading.current_thread() is not self._thread and len(self._out_packet) == 1:
            with contextlib.suppress(BlockingIOError):
                wake.send(b"0")
        return MQTTErrorCode.MQTT_ERR_SUCCESS


@dataclass(frozen=True, slots=True)
class _Role:
    name: str
    sends: frozenset[Kind]
    subscriptions: tuple[str, ...]
    clean_start: bool
    will: Envelope | None
    max_inflight: int = 20


class MqttTransport:
    """A ``Transport`` over an MQTT 5 broker; build one with ``for_pump`` or ``for_server``."""

    def __init__(self, settings: MqttSettings, client_id: str, role: _Role) -> None:
        self.settings = settings
        self.client_id = client_id
        self._role = role
        self._on_message: MessageHandler | None = None
        self._on_connection: ConnectionHandler | None = None
        self._connected = False
        self._ready = threading.Event()
        self._pending_subscribe: int | None = None
        self._rejected = 0
        self._started = False
        self.handler_failures = 0
        self.refused_publishes = 0
        self.revivals = 0
        self._lock = threading.Lock()
        self._client = BurstReadingClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            self._client.tls_set_context(settings.tls.context())
        if role.will is not None:
            topic = settings.topics.for_message(role.will)
            self._client.will_set(topic, role.will.encode(), qos=QOS, retain=True)
        self._client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        self._client.max_inflight_messages_set(role.max_inflight)
        self._client.suppress_exceptions = True
        self._client.on_connect = self._handle_connect
        self._client.on_subscribe = self._handle_subscribe
        self._client.on_publish = self._handle_publish
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message

    @classmethod
    def for_pump(cls, pump: str, settings: MqttSettings, *, client_id: str | None = None) -> MqttTransport:
        """A pump endpoint: persistent session, last will ``offline`` on its status topic."""
        pump = pump_id(pump)
        topics = settings.topics
        role = _Role(
            name=pump,
            sends=UPLINK_KINDS,
            subscriptions=(topics.ack(pump), topics.commands(pump)),
            clean_start=False,
            will=status_message(pump, PumpState.OFFLINE),
        )
        return cls(settings, client_id or f"smartpump-pump-{pump}", role)

    @classmethod
    def for_server(
        cls,
        settings: MqttSettings,
        *,
        client_id: str,
        group: str = "smartpump-ingest",
        persistent: bool = False,
    ) -> MqttTransport:
        """A server replica: shares every pump's events and results with the replicas of ``group``."""
        topics = settings.topics
        role = _Role(
            name="server",
            sends=DOWNLINK_KINDS,
            subscriptions=(
                topics.shared(group, "events"),
                topics.shared(group, "results"),
                topics.shared(group, "heartbeat"),
                topics.all_pumps("status"),
            ),
            clean_start=not persistent,
            will=None,
            max_inflight=SERVER_MAX_INFLIGHT,
        )
        return cls(settings, client_id, role)

    @property
    def connected(self) -> bool:
        """Connected and subscribed."""
        return self._connected

    @property
    def rejected(self) -> int:
        """Received messages dropped as malformed."""
        return self._rejected

    @property
    def alive(self) -> bool:
        """Started and its network thread running (False before ``start`` and after ``close``)."""
        thread = getattr(self._client, "_thread", None)  # paho keeps its loop thread here, unexposed
        return self._started and isinstance(thread, threading.Thread) and thread.is_alive()

    def revive(self) -> None:
        """Start the network thread again after it ended (it reconnects with backoff); counted."""
        self.revivals += 1
        log.error("mqtt network thread of %s ended; starting it again", self.client_id)
        self._client.loop_stop()
        self._client._reset_sockets(sockpair_only=True)  # loop_start opens a new wake-up pair, closes none
        self._client.loop_start()

    def start(self, on_message: MessageHandler, on_connection: ConnectionHandler) -> None:
        """Register callbacks and connect in the background (paho's network thread, with backoff)."""
        self._on_message = on_message
        self._on_connection = on_connection
        properties = _new_properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0 if self._role.clean_start else self.settings.session_expiry_s
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=self._role.clean_start,
            properties=properties,
        )
        self._client.loop_start()
        self._started = True

    def wait_ready(self, timeout_s: float) -> bool:
        """Block (outside therapy code: tests, server start-up) until connected and subscribed."""
        return self._ready.wait(timeout_s)

    def send(self, envelope: Envelope) -> bool:
        """Publish (acks at QoS 0, the rest at QoS 1); False when not connected (paho's own queue is not
        relied on)."""
        if envelope.kind not in self._role.sends:
            raise MessageError(
                f"{self._role.name} may not send {envelope.kind.value} messages", code="message.direction"
            )
        if self._role.name != "server" and envelope.pump != self._role.name:
            raise MessageError(
                f"pump {self._role.name!r} may not send as {envelope.pump!r}", code="message.pump_mismatch"
            )
        if not self._connected:
            return False
        info = self._client.publish(
            self.settings.topics.for_message(envelope),
            envelope.encode(),
            qos=ACK_QOS if envelope.kind is Kind.ACK else QOS,
            retain=envelope.kind is Kind.STATUS,
        )
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def close(self) -> None:
        """Publish ``offline`` (a pump), disconnect cleanly (the session is kept) and stop the thread."""
        if self._role.will is not None and self._connected:
            info = self._client.publish(
                self.settings.topics.for_message(self._role.will),
                self._role.will.encode(),
                qos=QOS,
                retain=True,
            )
            info.wait_for_publish(timeout=2.0)
        self._started = False
        self._client.disconnect()
        self._client.loop_stop()
        self._set_connected(False)

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("mqtt connect refused for %s: %s", self.client_id, reason_code)
            return
        result, mid = client.subscribe([(topic, QOS) for topic in self._role.subscriptions])
        if result is not MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("mqtt subscribe failed for %s: %s", self.client_id, result)
            return
        self._pending_subscribe = mid

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid != self._pending_subscribe:
            return
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            log.warning("mqtt subscription refused for %s: %s", self.client_id, ", ".join(failed))
            return
        if self._role.will is not None:
            online = status_message(self._role.name, PumpState.ONLINE)
            client.publish(self.settings.topics.for_message(online), online.encode(), qos=QOS, retain=True)
        self._set_connected(True)

    def _handle_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.refused_publishes += 1
            log.warning(
                "the broker refused a publish of %s: %s (mqtt.publish_refused)", self.client_id, reason_code
            )

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._set_connected(False)

    def _handle_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            envelope = decode(bytes(message.payload))
            if self.settings.topics.pump_of(message.topic) != envelope.pump:
                raise MessageError(
                    f"message of pump {envelope.pump!r} on {message.topic!r}", code="message.pump_mismatch"
                )
        except MessageError as error:
            self._rejected += 1
            log.warning(
                "dropped a malformed message on %s: %s (%s)", message.topic, error.message, error.code
            )
            return
        except Exception:
            self._rejected += 1
            log.exception("dropped an unreadable message on %s (message.unreadable)", message.topic)
            return
        if self._on_message is None:
            return
        try:
            self._on_message(envelope)
        except Exception:
            self.handler_failures += 1
            log.exception("handling a %s message of pump %s failed", envelope.kind.value, envelope.pump)

    def _set_connected(self, up: bool) -> None:
        with self._lock:
            changed = up != self._connected
            self._connected = up
            if up:
                self._ready.set()
            else:
                self._ready.clear()
        if changed and self._on_connection is not None:
            self._on_connection(up)


Commit = Callable[[str, tuple[EventRecord, ...]], "bool | Awaitable[bool]"]


class IngestSubscriber:
    """Server side: hands each received batch to ``commit`` and acks it only once commit returned True.

    ``commit(pump, records)`` may be sync or async; it must be idempotent by (pump, seq) because
    delivery is at least once. An async commit runs on ``loop`` when given, else in a fresh loop.
    Every other message (hello, status, command results) goes to ``on_other``.
    """

    def __init__(
        self,
        transport: Transport,
        commit: Commit,
        *,
        on_other: MessageHandler | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        commit_timeout_s: float = 30.0,
    ) -> None:
        self._transport = transport
        self._commit = commit
        self._on_other = on_other
        self._loop = loop
        self._timeout_s = commit_timeout_s
        self.committed_batches = 0
        self.failed_batches = 0

    def start(self, on_connection: ConnectionHandler | None = None) -> None:
        """Start the transport with this subscriber as its message handler."""
        self._transport.start(self.handle, on_connection or _ignore)

    def handle(self, envelope: Envelope) -> None:
        """Commit a batch and ack it, or pass any other message on."""
        if envelope.kind is not Kind.EVENTS:
            if self._on_other is not None:
                self._on_other(envelope)
            return
        records = events_of(envelope)
        try:
            committed = self._run(self._commit(envelope.pump, records))
        except Exception:
            log.exception("commit of %d events of pump %s failed; not acked", len(records), envelope.pump)
            committed = False
        if not committed:
            self.failed_batches += 1
            return
        self.committed_batches += 1
        self._transport.send(ack_message(envelope.pump, records[-1].seq))

    def _run(self, result: bool | Awaitable[bool]) -> bool:
        if not inspect.isawaitable(result):
            return result is True
        if self._loop is not None:
            future = asyncio.run_coroutine_threadsafe(_awaited(result), self._loop)
            return future.result(timeout=self._timeout_s) is True
        return asyncio.run(_awaited(result)) is True


async def _awaited(value: Awaitable[bool]) -> bool:
    return await value


def _ignore(up: bool) -> None:
    """No interest in connection changes."""
