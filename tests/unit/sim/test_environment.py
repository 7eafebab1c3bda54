"""The discrete-event scheduler: time order, run(until), and wall-clock pacing with an injected sleep."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smartpump.sim.environment import Environment, WallPacing


def test_actions_run_in_time_order_and_ties_in_scheduling_order() -> None:
    env = Environment()
    seen: list[tuple[float, str]] = []

    def note(name: str) -> Callable[[], None]:
        return lambda: seen.append((env.now_s, name))

    for at, name in ((5.0, "late"), (1.0, "first"), (1.0, "second"), (3.0, "middle")):
        env.schedule(at, note(name))
    env.run()
    assert seen == [(1.0, "first"), (1.0, "second"), (3.0, "middle"), (5.0, "late")]


def test_run_until_stops_at_the_horizon_and_moves_the_clock_there() -> None:
    env = Environment()
    ran: list[float] = []
    env.schedule(10.0, lambda: ran.append(env.now_s))
    env.schedule(30.0, lambda: ran.append(env.now_s))
    env.run(20.0)
    assert ran == [10.0] and env.now_s == 20.0 and env.peek() == 30.0


def test_an_action_can_schedule_more_work() -> None:
    env = Environment()
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(env.now_s)
        env.schedule_in(60.0, tick)

    env.schedule(0.0, tick)
    env.run(300.0)
    assert ticks == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]


def test_scheduling_in_the_past_is_refused() -> None:
    env = Environment()
    env.run(100.0)
    with pytest.raises(ValueError):
        env.schedule(50.0, lambda: None)


class FakeWall:
    """A wall clock that only moves when slept on."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_wall_pacing_sleeps_virtual_time_divided_by_the_speed() -> None:
    wall = FakeWall()
    env = Environment(pacing=WallPacing(speed=60.0, sleep=wall.sleep, monotonic=wall.monotonic))
    env.schedule(0.0, lambda: None)
    env.schedule(600.0, lambda: None)
    env.schedule(1200.0, lambda: None)
    env.run()
    assert wall.slept == pytest.approx([10.0, 10.0])
    assert env.now_s == 1200.0


def test_wall_pacing_does_not_sleep_when_behind() -> None:
    wall = FakeWall()
    pacing = WallPacing(speed=1.0, sleep=wall.sleep, monotonic=wall.monotonic)
    pacing.wait_until(0.0)
    wall.t += 50.0
    assert pacing.wait_until(10.0) == 0.0 and wall.slept == []


def test_speed_must_be_positive() -> None:
    wall = FakeWall()
    with pytest.raises(ValueError):
        WallPacing(speed=0.0, sleep=wall.sleep, monotonic=wall.monotonic)
