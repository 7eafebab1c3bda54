"""SAF-CLK-01: wall-clock jumps (+-1 h, to 1970, a local-time RTC crossing DST) leave volume totals
unchanged, because delivery integrates on the monotonic clock; each jump is logged as clock.changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from smartpump.clock import EPOCH, ManualClock
from smartpump.pump import EventType, Pump
from tests.unit.pump.library import basic, pump_library, start

D = Decimal
EPOCH_1970 = datetime(1970, 1, 1, tzinfo=UTC)


class JumpingClock:
    """A monotonic clock that advances steadily and a wall clock that can be set to anything."""

    def __init__(self) -> None:
        self.steady = ManualClock()
        self.offset = timedelta(0)

    def monotonic_s(self) -> float:
        return self.steady.monotonic_s()

    def now(self) -> datetime:
        return self.steady.now() + self.offset

    def set_wall(self, when: datetime) -> None:
        self.offset = when - self.steady.now()


class BerlinRtcClock(JumpingClock):
    """An RTC kept in Europe/Berlin local time but read as UTC (a common misconfiguration)."""

    def now(self) -> datetime:
        local = self.steady.now().astimezone(ZoneInfo("Europe/Berlin"))
        return local.replace(tzinfo=UTC)


def _infuse(clock: JumpingClock, wall_changes: list[datetime | None]) -> Pump:
    """120 mL/h for 100 mL; every 5 min the wall clock is set (None: left alone)."""
    pump = Pump("pump-1", "lvp-4", clock, library=pump_library())
    pump.select_care_area("icu")
    start(pump, "A", basic("120", vtbi="100"))
    for change in wall_changes:
        clock.steady.advance(300)
        if change is not None:
            clock.set_wall(change)
        pump.sync()
    return pump


def _totals(pump: Pump) -> tuple[Decimal, Decimal]:
    therapy = pump.channel("A").therapy
    assert therapy is not None
    return therapy.infused_ml, therapy.kvo_ml


JUMPS = {
    "back_1h": [None, EPOCH - timedelta(hours=1) + timedelta(seconds=600), None, None, None, None],
    "forward_1h": [None, None, EPOCH + timedelta(hours=1, seconds=900), None, None, None],
    "to_1970": [EPOCH_1970, None, None, None, None, None],
    "back_and_forth": [EPOCH_1970, EPOCH + timedelta(days=30), EPOCH - timedelta(days=1), None, None, None],
}


@pytest.mark.parametrize("name", sorted(JUMPS))
def test_wall_clock_jumps_do_not_change_volume_totals(name: str) -> None:
    reference = _infuse(JumpingClock(), [None] * 6)
    jumped = _infuse(JumpingClock(), JUMPS[name])
    assert _totals(jumped) == _totals(reference)
    assert _totals(reference)[0] == D(60)
    completed = [e.type for e in jumped.events if e.type is not EventType.CLOCK_CHANGED]
    assert completed == [e.type for e in reference.events]


def test_each_jump_is_logged_with_its_size() -> None:
    clock = JumpingClock()
    pump = _infuse(clock, [None, EPOCH - timedelta(hours=1) + timedelta(seconds=600), EPOCH_1970])
    changes = pump.events.of_type(EventType.CLOCK_CHANGED)
    assert [c.data["jump_s"] for c in changes] == [
        D(-3600),
        D(int((EPOCH_1970 - (EPOCH + timedelta(seconds=900) - timedelta(hours=1))).total_seconds())),
    ]
    assert changes[0].data["clock_utc"] == (EPOCH - timedelta(hours=1) + timedelta(seconds=600)).isoformat()
    assert changes[0].data["expected_utc"] == (EPOCH + timedelta(seconds=600)).isoformat()
    assert changes[0].ts == EPOCH - timedelta(hours=1) + timedelta(seconds=600)
    assert changes[1].ts == EPOCH_1970


def test_a_steady_clock_logs_no_change() -> None:
    assert _infuse(JumpingClock(), [None] * 6).events.of_type(EventType.CLOCK_CHANGED) == []


def test_a_local_time_rtc_crossing_dst_logs_one_hour_and_keeps_totals() -> None:
    clock = BerlinRtcClock()
    clock.steady = ManualClock(start=datetime(2026, 3, 29, 0, 40, tzinfo=UTC))
    pump = _infuse(clock, [None] * 6)
    changes = pump.events.of_type(EventType.CLOCK_CHANGED)
    assert [c.data["jump_s"] for c in changes] == [D(3600)]
    assert _totals(pump) == _totals(_infuse(JumpingClock(), [None] * 6))
