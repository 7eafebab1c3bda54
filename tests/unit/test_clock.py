"""ManualClock: time moves only when told, never backwards, always timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartpump.clock import EPOCH, Clock, ManualClock


def test_manual_clock_starts_at_the_epoch() -> None:
    clock = ManualClock()
    assert clock.now() == EPOCH
    assert clock.monotonic_s() == 0.0


def test_manual_clock_advances() -> None:
    clock = ManualClock()
    clock.advance(90)
    assert clock.monotonic_s() == 90
    assert clock.now() == EPOCH + timedelta(seconds=90)


def test_manual_clock_advance_to_absolute_reading() -> None:
    clock = ManualClock()
    clock.advance_to(30)
    clock.advance_to(30)
    assert clock.monotonic_s() == 30


def test_manual_clock_refuses_to_go_backwards() -> None:
    clock = ManualClock()
    clock.advance(10)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.advance_to(5)
    assert clock.monotonic_s() == 10


def test_manual_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError):
        ManualClock(datetime(2026, 1, 1))


def test_manual_clock_keeps_a_given_start_and_zone() -> None:
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    clock = ManualClock(start)
    clock.advance(3600)
    assert clock.now() == start + timedelta(hours=1)
    assert clock.now().tzinfo is UTC


def test_manual_clock_satisfies_the_clock_protocol() -> None:
    clock: Clock = ManualClock()
    assert clock.now().tzinfo is not None
