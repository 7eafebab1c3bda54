"""Time for the core: the Clock protocol, its virtual implementation and the one wall clock.

The core never reads the wall clock itself; it is handed a Clock. ``ManualClock`` serves tests and
the discrete-event simulation (virtual time); ``WallClock`` is what the edges (server, CLI) hand in.
This module is the only place in the package that reads the system time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["EPOCH", "Clock", "ManualClock", "WallClock"]

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """A source of time: monotonic seconds for durations and UTC datetimes for timestamps."""

    def monotonic_s(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def now(self) -> datetime:
        """The current UTC time (timezone-aware)."""
        ...


class ManualClock:
    """A clock that moves only when told to: tests and virtual-time simulation."""

    def __init__(self, start: datetime = EPOCH) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._start = start
        self._elapsed_s = 0.0

    def monotonic_s(self) -> float:
        """Seconds elapsed since the clock was made."""
        return self._elapsed_s

    def now(self) -> datetime:
        """Start time plus the elapsed virtual seconds."""
        return self._start + timedelta(seconds=self._elapsed_s)

    def advance(self, seconds: float) -> None:
        """Move time forward; refuses to go backwards."""
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        self._elapsed_s += seconds

    def advance_to(self, monotonic_s: float) -> None:
        """Move time forward to an absolute monotonic reading (no-op if already there)."""
        if monotonic_s < self._elapsed_s:
            raise ValueError("a clock never goes backwards")
        self._elapsed_s = monotonic_s


class WallClock:
    """The real clock, for the edges: the system's monotonic counter and UTC now."""

    def monotonic_s(self) -> float:
        """Seconds on the process's monotonic clock."""
        return time.monotonic()

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)
