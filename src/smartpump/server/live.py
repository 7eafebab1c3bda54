"""Live fleet messages for the UI: ``publish`` from any thread (never blocks), ``subscribe`` from asyncio.

A slow subscriber loses its oldest messages (counted in ``dropped``), never the publisher's time.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator
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
QUEUE_SIZE: Final = 1000
RECENT_SIZE: Final = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveMessage:
    """One live message: what happened (``kind``), in which facility, a PHI-free payload, when."""

    kind: str
    facility_id: int
    payload: dict[str, object]
    ts: datetime


@dataclass(slots=True, kw_only=True)
class _Subscriber:
    facility_ids: frozenset[int] | None
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[LiveMessage] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0

    def offer(self, message: LiveMessage) -> None:
        """Runs on the subscriber's loop: enqueue, dropping the oldest message when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)


class LiveHub:
    """Fan-out of live messages to the subscribers whose facilities they concern."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []
        self._recent: deque[LiveMessage] = deque(maxlen=RECENT_SIZE)
        self.published = 0

    def publish(self, facility_id: int, kind: str, payload: dict[str, object]) -> None:
        """Send a message to every interested subscriber; thread-safe and never blocks."""
        if kind not in KINDS:
            raise ValueError(f"unknown live message kind {kind!r}")
        message = LiveMessage(kind=kind, facility_id=facility_id, payload=payload, ts=datetime.now(UTC))
        with self._lock:
            self.published += 1
            self._recent.append(message)
            targets = [
                s for s in self._subscribers if s.facility_ids is None or facility_id in s.facility_ids
            ]
        for subscriber in targets:
            try:
                subscriber.loop.call_soon_threadsafe(subscriber.offer, message)
            except RuntimeError:
                self._remove(subscriber)

    def recent(self, kind: str | None = None) -> list[LiveMessage]:
        """The last messages published (at most 200), oldest first, optionally of one kind."""
        with self._lock:
            return [m for m in self._recent if kind is None or m.kind == kind]

    async def subscribe(self, facility_ids: frozenset[int] | None) -> AsyncGenerator[LiveMessage]:
        """Messages of these facilities (None: all) from now on, until the consumer stops iterating."""
        subscriber = _Subscriber(facility_ids=facility_ids, loop=asyncio.get_running_loop())
        with self._lock:
            self._subscribers.append(subscriber)
        try:
            while True:
                yield await subscriber.queue.get()
        finally:
            self._remove(subscriber)

    @property
    def subscribers(self) -> int:
        """How many subscribers are listening."""
        with self._lock:
            return len(self._subscribers)

    def _remove(self, subscriber: _Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
