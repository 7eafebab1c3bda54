"""Live fleet messages for the UI: ``publish`` from any thread (never blocks), ``subscribe`` from asyncio.

A subscriber gets every event message (alarms raised, escalated and cleared, presence, deployment
progress) in order, and of each pump's state snapshots (``pump.view``, ``pump.status``) the newest one
not yet read: a snapshot replaces the one it supersedes, so a slow reader (a browser behind thousands of
pumps' traffic) falls behind in snapshots, never in alarms. Only a reader more than ``EVENT_BACKLOG``
event messages behind loses its oldest ones (counted in ``dropped``, logged at the first); the publisher
never waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from smartpump.pump.events import EventType

KINDS: Final = frozenset(
    {
        "pump.status",
        EventType.ALARM_RAISED,
        EventType.ALARM_CLEARED,
        EventType.ALARM_ESCALATED,
        "pump.view",
        "pump.offline",
        "pump.online",
        "deployment.progress",
    }
)
SNAPSHOT_KINDS: Final = frozenset({"pump.view", "pump.status"})
"""Kinds whose newest message per pump says all the earlier ones did (keyed by ``payload["pump"]``)."""
EVENT_BACKLOG: Final = 10_000
RECENT_SIZE: Final = 200

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveMessage:
    """One live message: what happened (``kind``), in which facility, a PHI-free payload, when."""

    kind: str
    facility_id: int
    payload: dict[str, object]
    ts: datetime


@dataclass(slots=True, kw_only=True)
class _Subscriber:
    """What one reader has not read yet: event messages in order, the newest snapshot per pump."""

    facility_ids: frozenset[int] | None
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: deque[LiveMessage] = field(default_factory=deque)
    snapshots: dict[tuple[str, object], LiveMessage] = field(default_factory=dict)
    signalled: bool = False
    dropped: int = 0
    ending: bool = False

    def put(self, message: LiveMessage) -> bool:
        """Hold the message (any thread); True when the reader must be woken for it."""
        with self.lock:
            if message.kind in SNAPSHOT_KINDS:
                self.snapshots[(message.kind, message.payload.get("pump"))] = message
            else:
                if len(self.events) >= EVENT_BACKLOG:
                    self.events.popleft()
                    self.dropped += 1
                    if self.dropped == 1:
                        logger.warning(
                            "a live stream reader is %d event messages behind: it loses the oldest",
                            EVENT_BACKLOG,
                        )
                self.events.append(message)
            wake, self.signalled = not self.signalled, True
            return wake

    def take(self) -> list[LiveMessage]:
        """Everything held, event messages first (in order), then the snapshots; empties the holder."""
        with self.lock:
            batch = [*self.events, *self.snapshots.values()]
            self.events.clear()
            self.snapshots.clear()
            self.signalled = False
            return batch


class LiveHub:
    """Fan-out of live messages to the subscribers whose facilities they concern."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []
        self._recent: deque[LiveMessage] = deque(maxlen=RECENT_SIZE)
        self.published = 0
        self.forward: Callable[[LiveMessage], None] | None = None
        """Where this process's own messages also go (the live bus to the other replicas), if anywhere."""

    def publish(
        self,
        facility_id: int,
        kind: str,
        payload: dict[str, object],
        *,
        ts: datetime | None = None,
        forwarded: bool = False,
    ) -> None:
        """Send a message to every interested subscriber, and unless it was ``forwarded`` from another
        process, to ``forward`` (the live bus); thread-safe and never blocks."""
        if kind not in KINDS:
            raise ValueError(f"unknown live message kind {kind!r}")
        message = LiveMessage(
            kind=kind,
            facility_id=facility_id,
            payload=payload,
            ts=ts if ts is not None else datetime.now(UTC),
        )
        with self._lock:
            self.published += 1
            self._recent.append(message)
            targets = [
                s for s in self._subscribers if s.facility_ids is None or facility_id in s.facility_ids
            ]
        forward = self.forward
        if forward is not None and not forwarded:
            forward(message)
        for subscriber in targets:
            if subscriber.put(message):
                self._wake(subscriber)

    def recent(self, kind: str | None = None) -> list[LiveMessage]:
        """The last messages published (at most 200), oldest first, optionally of one kind."""
        with self._lock:
            return [m for m in self._recent if kind is None or m.kind == kind]

    async def subscribe(self, facility_ids: frozenset[int] | None) -> AsyncGenerator[list[LiveMessage]]:
        """Batches of the messages of these facilities (None: all) until the consumer stops iterating: first
        an empty batch once the subscription is registered (every message published after it arrives),
        then each batch what arrived since the last was taken (events in order, then the newest snapshot
        per pump)."""
        subscriber = _Subscriber(facility_ids=facility_ids, loop=asyncio.get_running_loop())
        with self._lock:
            self._subscribers.append(subscriber)
        try:
            yield []
            while True:
                await subscriber.wake.wait()
                subscriber.wake.clear()
                batch = subscriber.take()
                if batch:
                    yield batch
                if subscriber.ending:
                    return
        finally:
            self._remove(subscriber)

    def end_streams(self) -> int:
        """End every subscription after what it holds (its reader opens a new one, which starts from the
        current views: for when messages may have been missed); how many were ended."""
        with self._lock:
            ending = list(self._subscribers)
        for subscriber in ending:
            with subscriber.lock:
                subscriber.ending = True
            self._wake(subscriber)
        return len(ending)

    @property
    def subscribers(self) -> int:
        """How many subscribers are listening."""
        with self._lock:
            return len(self._subscribers)

    def _wake(self, subscriber: _Subscriber) -> None:
        """Wake the subscriber's reader on its own loop (any thread); a subscriber whose loop is closed is
        removed."""
        try:
            subscriber.loop.call_soon_threadsafe(subscriber.wake.set)
        except RuntimeError:
            self._remove(subscriber)

    def _remove(self, subscriber: _Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
