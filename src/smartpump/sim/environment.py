"""A discrete-event scheduler over a virtual clock: a priority queue of (time, seq, action).

``run(until)`` plays actions in time order (ties in scheduling order) and moves the ManualClock to
each action's time. With ``WallPacing`` the same processes run in wall time for a demo: before each
action the environment sleeps until ``(virtual - start) / speed`` wall seconds have passed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from smartpump.clock import ManualClock

Action = Callable[[], None]


@dataclass(slots=True, kw_only=True)
class WallPacing:
    """Wall-clock pacing: ``speed`` virtual seconds per wall second, with injected sleep and clock."""

    speed: float
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]
    _origin: tuple[float, float] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"the speed factor must be positive, got {self.speed}")

    def anchor(self, virtual_s: float) -> None:
        """Tie ``virtual_s`` to the wall clock's present: earlier virtual times run at once, later ones at
        ``speed``."""
        self._origin = (self.monotonic(), virtual_s)

    def wait_until(self, virtual_s: float) -> float:
        """Sleep until the wall clock catches up with ``virtual_s``; returns the seconds slept."""
        if self._origin is None:
            self._origin = (self.monotonic(), virtual_s)
        wall_origin, virtual_origin = self._origin
        delay = wall_origin + (virtual_s - virtual_origin) / self.speed - self.monotonic()
        if delay <= 0:
            return 0.0
        self.sleep(delay)
        return delay


class Environment:
    """The simulation's time and agenda; every process schedules plain callables on it."""

    def __init__(self, clock: ManualClock | None = None, *, pacing: WallPacing | None = None) -> None:
        self.clock = clock if clock is not None else ManualClock()
        self.pacing = pacing
        self._queue: list[tuple[float, int, Action]] = []
        self._seq = itertools.count()
        self.actions_run = 0

    @property
    def now_s(self) -> float:
        """The current virtual time in monotonic seconds."""
        return self.clock.monotonic_s()

    def schedule(self, at_s: float, action: Action) -> None:
        """Run ``action`` at absolute virtual time ``at_s``; refuses a time in the past."""
        if at_s < self.now_s:
            raise ValueError(f"cannot schedule at {at_s} s, the time is already {self.now_s} s")
        heapq.heappush(self._queue, (at_s, next(self._seq), action))

    def schedule_in(self, delay_s: float, action: Action) -> None:
        """Run ``action`` after ``delay_s`` virtual seconds."""
        self.schedule(self.now_s + delay_s, action)

    def peek(self) -> float | None:
        """Time of the next scheduled action, or None when the agenda is empty."""
        return self._queue[0][0] if self._queue else None

    def step(self) -> None:
        """Advance the clock to the next action and run it."""
        at_s, _, action = heapq.heappop(self._queue)
        if self.pacing is not None:
            self.pacing.wait_until(at_s)
        self.clock.advance_to(at_s)
        self.actions_run += 1
        action()

    def run(self, until_s: float | None = None) -> None:
        """Run actions up to and including ``until_s`` (or until none is left), then set the clock there."""
        queue = self._queue
        while queue and (until_s is None or queue[0][0] <= until_s):
            self.step()
        if until_s is not None and until_s > self.now_s:
            if self.pacing is not None:
                self.pacing.wait_until(until_s)
            self.clock.advance_to(until_s)
