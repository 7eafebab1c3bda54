"""The ingest worker's inbox: messages received and not yet processed, in two lanes (urgent first).

Its size is counted in weight: an events message weighs its events plus one, any other message one. A
``put`` that finds the inbox at its limit waits (back-pressure: the MQTT network thread stops reading and
the broker queues for the server, first in first out); a message that finds it below the limit goes in
whatever its weight, so one heavier than the limit never waits forever. Sized to what the fleet can have
in flight (one batch per pump awaiting its ack, and the heartbeats), the backlog waits here, where an urgent
message overtakes it, and not in the broker's queue, where it cannot.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from smartpump.transport.messages import Envelope, Kind


def weight(envelope: Envelope) -> int:
    """What a message counts toward the limit: its events plus one (an events message), else one."""
    return 1 + (len(envelope.body["events"]) if envelope.kind is Kind.EVENTS else 0)


class Inbox:
    """Two first-in-first-out lanes sharing one weight limit (None: unbounded); thread-safe."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._lanes: tuple[deque[Envelope], deque[Envelope]] = (deque(), deque())
        self._weight = 0
        self._woken = False
        self._closed = False
        self._changed = threading.Condition()

    def __len__(self) -> int:
        with self._changed:
            return len(self._lanes[0]) + len(self._lanes[1])

    @property
    def weight(self) -> int:
        """The weight waiting in both lanes."""
        with self._changed:
            return self._weight

    def put(self, envelope: Envelope, *, urgent: bool = False) -> bool:
        """Queue a message (``urgent``: in the lane taken first), waiting while the inbox is at its limit;
        False when the inbox was closed (the message is dropped: unacked, its pump sends it again)."""
        with self._changed:
            while self.limit is not None and self._weight >= self.limit and not self._closed:
                self._changed.wait()
            if self._closed:
                return False
            self._lanes[0 if urgent else 1].append(envelope)
            self._weight += weight(envelope)
            self._changed.notify_all()
            return True

    def wake(self) -> None:
        """Make the current or next ``wait`` return at once."""
        with self._changed:
            self._woken = True
            self._changed.notify_all()

    def close(self) -> None:
        """Release every waiting ``put`` and refuse further ones (the worker is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a message or a ``wake``; returns whether messages wait."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not self._woken and not (self._lanes[0] or self._lanes[1]):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            self._woken = False
            return bool(self._lanes[0] or self._lanes[1])

    def take(self, max_messages: int, max_events: int) -> list[Envelope]:
        """Up to ``max_messages`` messages, the urgent lane first, stopping once ``max_events`` events are
        taken (the message that crosses it is taken: a batch is never split)."""
        taken: list[Envelope] = []
        events = 0
        with self._changed:
            for lane in self._lanes:
                while lane and len(taken) < max_messages and events < max_events:
                    envelope = lane.popleft()
                    taken.append(envelope)
                    counted = weight(envelope)
                    self._weight -= counted
                    events += counted - 1
            if taken:
                self._changed.notify_all()
        return taken
