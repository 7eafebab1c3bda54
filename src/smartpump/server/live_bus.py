"""The live messages of every server process on one PostgreSQL database (``SMARTPUMP_LIVE_BUS``).

A replica ingests only its share of the pumps (a shared MQTT subscription), and an API-only replica
ingests none, yet a browser on any of them must see every alarm of its facilities. Each process sends
what its ``LiveHub`` publishes to PostgreSQL's ``NOTIFY`` channel ``smartpump_live`` (from a sender thread
so ingest never waits on it: the messages waiting, in order, packed into as few notifications as
``MAX_PAYLOAD_BYTES`` allows, one statement for them all) and listens on the same channel, publishing into
its own hub what the other processes sent (its own notifications it skips by their origin, unread). A
notification is ``{"o": origin, "m": [message, ...]}``; one message alone, ``{"o", "k", "f", "t", "p"}``
(what earlier versions send), is read too. A message larger than a notification can carry is not
forwarded and is counted in ``too_large`` and logged. A lost database connection is logged and opened again
after ``RETRY_S``: the sender then sends first the group it was sending (a notification is at least once;
the pages read only each pump's newest view, so a repeat changes nothing), and the listener, once it
listens again, ends this process's live streams, whose browsers open new ones that start from every pump's
current view (what was notified while nobody listened is not replayed, so it is read from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final, cast

import psycopg
from sqlalchemy.engine import URL, make_url

from smartpump.server.live import LiveHub, LiveMessage
from smartpump.server.workers import ServiceHealth

if TYPE_CHECKING:
    from smartpump.server.state import ServerState

logger = logging.getLogger(__name__)

CHANNEL: Final = "smartpump_live"
MAX_PAYLOAD_BYTES: Final = 7900
"""PostgreSQL refuses a notification payload of 8,000 bytes or more; this leaves room to spare."""
SEND_GROUP: Final = 500
RETRY_S: Final = 1.0
POLL_S: Final = 0.5


def libpq_dsn(url: str | URL) -> str:
    """The plain PostgreSQL connection string (what psycopg takes) of a SQLAlchemy database URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def encode(message: LiveMessage) -> str:
    """The text of a live message in a notification (the payload's non-JSON values as text, as the stream
    writes them)."""
    return json.dumps(
        {"k": message.kind, "f": message.facility_id, "t": message.ts.isoformat(), "p": message.payload},
        default=str,
        separators=(",", ":"),
    )


def head(origin: str) -> str:
    """How every notification of ``origin`` begins (its messages follow, then ``]}``)."""
    return f'{{"o":{json.dumps(origin)},"m":['


def pack(origin: str, texts: list[str]) -> list[str]:
    """Notifications carrying ``texts`` (each an ``encode``d message that ``fits``), in order, each at most
    ``MAX_PAYLOAD_BYTES``."""
    start = head(origin)
    empty = len(start.encode()) + len("]}")
    notifications: list[str] = []
    group: list[str] = []
    size = empty
    for text in texts:
        size += len(text.encode()) + (1 if group else 0)
        if group and size > MAX_PAYLOAD_BYTES:
            notifications.append(start + ",".join(group) + "]}")
            group, size = [], empty + len(text.encode())
        group.append(text)
    if group:
        notifications.append(start + ",".join(group) + "]}")
    return notifications


def fits(text: str, origin: str) -> bool:
    """Whether one ``encode``d message fits a notification of ``origin`` alone."""
    return len(head(origin).encode()) + len(text.encode()) + len("]}") <= MAX_PAYLOAD_BYTES


def decode(text: str) -> tuple[str, list[LiveMessage]]:
    """The origin and messages of a notification text; ``ValueError`` (or ``KeyError``, ``TypeError``) when
    malformed (a notification with one malformed message is refused whole)."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("a live bus notification is an object")
    items = raw.get("m", [raw])
    if not isinstance(items, list):
        raise ValueError("a live bus notification's messages are a list")
    return str(raw["o"]), [_message(item) for item in items]


def _message(raw: dict[str, object]) -> LiveMessage:
    payload = raw["p"]
    if not isinstance(payload, dict):
        raise ValueError("a live message payload is an object")
    return LiveMessage(
        kind=str(raw["k"]),
        facility_id=int(cast(int, raw["f"])),
        payload=payload,
        ts=datetime.fromisoformat(str(raw["t"])),
    )


class LiveBus:
    """One process's end of the bus: forwards its hub's messages, publishes the others' into it."""

    def __init__(self, dsn: str, hub: LiveHub, *, origin: str | None = None) -> None:
        self.dsn = dsn
        self.hub = hub
        self.origin = origin if origin is not None else uuid.uuid4().hex[:12]
        self._own = head(self.origin)
        self.sent = 0
        """Messages sent (in ``notifications`` notifications)."""
        self.notifications = 0
        self.received = 0
        self.too_large = 0
        self.refused = 0
        self.listens = 0
        """How many times the listener started listening (more than once: it lost its connection)."""
        self._outbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._sending: list[str] = []
        self._lost: dict[str, str] = {}
        """Which connection (``send``, ``listen``) is lost now, with the error."""
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []

    def start_threads(self) -> None:
        """Start sending and listening; returns once the listener is subscribed or failed its first attempt
        (or after 10 s)."""
        self.hub.forward = self._forward
        self._threads = [
            threading.Thread(
                target=self._keep("send", self._send_loop), name="smartpump-live-send", daemon=True
            ),
            threading.Thread(
                target=self._keep("listen", self._listen_loop), name="smartpump-live-listen", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        self._listening.wait(10)

    def stop_threads(self) -> None:
        """Stop both threads (what is still queued is sent first) and detach from the hub."""
        self.hub.forward = None
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    async def start(self, state: ServerState) -> None:
        """The background service: start the threads."""
        await asyncio.to_thread(self.start_threads)

    async def stop(self) -> None:
        """The background service: stop the threads."""
        await asyncio.to_thread(self.stop_threads)

    def _forward(self, message: LiveMessage) -> None:
        text = encode(message)
        if not fits(text, self.origin):
            self.too_large += 1
            logger.warning(
                "live message %s of %d bytes not forwarded to the other replicas", message.kind, len(text)
            )
            return
        self._outbox.put(text)

    def health(self) -> ServiceHealth:
        """``ok`` while both connections are open, else which is lost and why (for ``/health``)."""
        lost = dict(self._lost)
        detail = "; ".join(f"{name} connection lost: {error}" for name, error in sorted(lost.items()))
        return ServiceHealth(name="live_bus", ok=not lost, detail=detail or "ok")

    def _keep(self, name: str, loop: Callable[[], None]) -> Callable[[], None]:
        """``loop`` run again after a lost connection, until stopped (``name``: which, for ``health``)."""

        def run() -> None:
            while not self._stop.is_set():
                try:
                    loop()
                except psycopg.Error as error:
                    self._lost[name] = next(iter(str(error).splitlines()), "") or type(error).__name__
                    logger.warning("live bus %s connection lost (%s); opening it again", name, error)
                    if name == "listen":
                        self._listening.set()
                    self._stop.wait(RETRY_S)

        return run

    def _send_loop(self) -> None:
        with psycopg.connect(
            self.dsn, autocommit=True, application_name=f"smartpump-live-send-{self.origin}"
        ) as connection:
            self._lost.pop("send", None)
            while not (self._stop.is_set() and self._outbox.empty() and not self._sending):
                if not self._sending:
                    try:
                        self._sending = [self._outbox.get(timeout=POLL_S)]
                    except queue.Empty:
                        continue
                    with contextlib.suppress(queue.Empty):
                        while len(self._sending) < SEND_GROUP:
                            self._sending.append(self._outbox.get_nowait())
                notifications = pack(self.origin, self._sending)
                connection.execute(
                    "SELECT pg_notify(%s, text) FROM unnest(%s::text[]) AS text", (CHANNEL, notifications)
                )
                self.sent += len(self._sending)
                self.notifications += len(notifications)
                self._sending = []

    def _listen_loop(self) -> None:
        with psycopg.connect(
            self.dsn, autocommit=True, application_name=f"smartpump-live-listen-{self.origin}"
        ) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._lost.pop("listen", None)
            self.listens += 1
            if self.listens > 1:
                ended = self.hub.end_streams()
                logger.warning(
                    "live bus listening again: %d live streams ended to start again from the current views",
                    ended,
                )
            self._listening.set()
            while not self._stop.is_set():
                for notification in connection.notifies(timeout=POLL_S):
                    self._receive(notification.payload)
                    if self._stop.is_set():
                        break

    def _receive(self, text: str) -> None:
        if text.startswith(self._own):
            return
        try:
            origin, messages = decode(text)
        except (ValueError, KeyError, TypeError) as error:
            self.refused += 1
            logger.warning("refused a malformed live bus message: %s", error)
            return
        if origin == self.origin:
            return
        for message in messages:
            try:
                self.hub.publish(
                    message.facility_id, message.kind, message.payload, ts=message.ts, forwarded=True
                )
            except ValueError as error:
                self.refused += 1
                logger.warning("refused a live bus message: %s", error)
                continue
            self.received += 1
