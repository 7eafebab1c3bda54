"""Alarm signals as data (ALM-02), short conditions completing their burst (ALM-04) and presentation of an
alarm flood (ALM-05), against IEC 60601-1-8 as summarised in security-reliability.md section 5.1."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from smartpump.pump import ALARMS, AlarmId, Priority
from smartpump.pump.alarms import SIGNALS, AlarmBoard, AlarmSpec
from tests.unit.pump.library import basic, make_pump, start

D = Decimal
H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW

# 60601-1-8 Tables 2 and 3 (security-reliability.md section 5.1): colour, flash Hz, duty %, pulses,
# inter-burst interval in seconds (None: no repeat allowed).
VISUAL = {
    H: ({"red"}, D("1.4"), D("2.8")),
    M: ({"yellow"}, D("0.4"), D("0.8")),
    L: ({"cyan", "yellow"}, None, None),
}
PULSES = {H: (10, 10), M: (3, 3), L: (1, 2)}
INTER_BURST = {H: (D("2.5"), D(15)), M: (D("2.5"), D(30))}


@pytest.mark.parametrize("priority", list(Priority))
def test_visual_signal_is_within_table_2(priority: Priority) -> None:
    signal = SIGNALS[priority]
    colours, low_hz, high_hz = VISUAL[priority]
    assert signal.colour in colours
    if low_hz is None or high_hz is None:
        assert signal.flash_hz is None and signal.duty_percent == 100
    else:
        assert signal.flash_hz is not None and low_hz <= signal.flash_hz <= high_hz
        assert D(20) <= signal.duty_percent <= D(60)


@pytest.mark.parametrize("priority", list(Priority))
def test_auditory_burst_is_within_table_3(priority: Priority) -> None:
    signal = SIGNALS[priority]
    fewest, most = PULSES[priority]
    assert fewest <= signal.pulses_per_burst <= most
    if priority is L:
        assert signal.inter_burst_s is None or signal.inter_burst_s > 15
    else:
        low, high = INTER_BURST[priority]
        assert signal.inter_burst_s is not None and low <= signal.inter_burst_s <= high
    assert signal.burst_s == (
        signal.pulses_per_burst * signal.pulse_s + (signal.pulses_per_burst - 1) * signal.pulse_spacing_s
    )


def test_minimum_sound_is_half_a_burst_for_high_and_one_burst_for_medium() -> None:
    assert SIGNALS[H].min_audible_s * 2 >= SIGNALS[H].burst_s
    assert SIGNALS[M].min_audible_s >= SIGNALS[M].burst_s


def _board_with_short_high() -> AlarmBoard:
    short = AlarmSpec(
        id=AlarmId.SYSTEM_FAILURE,
        priority=H,
        latching=False,
        stops_delivery=False,
        message_key="m",
        rationale="r",
    )
    return AlarmBoard(catalog={**ALARMS, AlarmId.SYSTEM_FAILURE: short})


def test_a_100_ms_high_condition_sounds_at_least_half_a_burst() -> None:
    board = _board_with_short_high()
    board.raise_(AlarmId.SYSTEM_FAILURE, None, D(10), None, None)
    assert board.condition_ended(AlarmId.SYSTEM_FAILURE, None, D("10.1"))
    half_burst = SIGNALS[H].burst_s / 2
    for offset in (D("0.1"), D("0.5"), half_burst - D("0.001")):
        assert board.sounding(D(10) + offset) is H
    assert not board.audible(D(10) + half_burst)
    assert board.log[0].cleared_at_s == D("10.1")


def test_an_operator_audio_pause_ends_the_short_burst_at_once() -> None:
    board = _board_with_short_high()
    board.raise_(AlarmId.SYSTEM_FAILURE, None, D(10), None, None)
    board.condition_ended(AlarmId.SYSTEM_FAILURE, None, D("10.1"))
    board.pause_audio(D("10.2") + 120)
    assert not board.audible(D("10.2"))


def test_a_100_ms_medium_condition_on_the_pump_completes_one_burst() -> None:
    pump, clock = make_pump(battery_charge_min=D(20))
    pump.ac_power(False)
    raised_at = pump.now_s
    assert pump.alarms.is_active(AlarmId.BATTERY_LOW, None)
    clock.advance(0.1)
    pump.ac_power(True)
    assert not pump.alarms.is_active(AlarmId.BATTERY_LOW, None)
    burst = SIGNALS[M].burst_s
    assert pump.alarms.sounding(raised_at + D("0.1")) is M
    assert pump.alarms.sounding(raised_at + burst - D("0.001")) is M
    assert not pump.alarms.audible(raised_at + burst)
    clock.advance(0.5)
    assert pump.status().audible is True
    clock.advance(0.5)
    assert pump.status().audible is False
    record = next(r for r in pump.alarm_log() if r.id is AlarmId.BATTERY_LOW)
    assert record.cleared_at_s == raised_at + D("0.1")


def test_a_100_ms_latching_high_condition_sounds_until_the_operator_resets_it() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100"))
    pump.open_door("A")
    clock.advance(0.1)
    pump.close_door("A")
    clock.advance(600)
    assert pump.status().audible is True
    pump.clear_alarm(AlarmId.DOOR_OPEN, "A")
    assert pump.status().audible is False


FLOOD = [
    (alarm, channel)
    for alarm in (
        AlarmId.OCCLUSION_UPSTREAM,
        AlarmId.DOOR_OPEN,
        AlarmId.NEAR_END,
        AlarmId.INFUSION_COMPLETE,
        AlarmId.INFILTRATION,
    )
    for channel in ("A", "B", "C", "D")
]


def _flood(order: list[tuple[AlarmId, str]]) -> AlarmBoard:
    board = AlarmBoard()
    for alarm, channel in order:
        board.raise_(alarm, channel, D(5), None, None)
    return board


def test_an_alarm_flood_lists_all_twenty_highest_first_in_a_deterministic_order() -> None:
    assert len(FLOOD) == 20
    reference = [(a.id, a.channel) for a in _flood(FLOOD).presented()]
    rng = random.Random(1)
    for _ in range(10):
        shuffled = FLOOD[:]
        rng.shuffle(shuffled)
        assert [(a.id, a.channel) for a in _flood(shuffled).presented()] == reference
    assert sorted(reference) == sorted(FLOOD)
    priorities = [ALARMS[alarm].priority.rank for alarm, _ in reference]
    assert priorities == sorted(priorities, reverse=True)
    assert reference[0] == (AlarmId.DOOR_OPEN, "A")


def test_an_older_alarm_of_the_same_priority_is_presented_before_a_newer_one() -> None:
    board = AlarmBoard()
    board.raise_(AlarmId.OCCLUSION_UPSTREAM, "D", D(1), None, None)
    board.raise_(AlarmId.DOOR_OPEN, "A", D(2), None, None)
    board.raise_(AlarmId.BATTERY_LOW, None, D(0), None, None)
    assert [a.id for a in board.presented()] == [
        AlarmId.OCCLUSION_UPSTREAM,
        AlarmId.DOOR_OPEN,
        AlarmId.BATTERY_LOW,
    ]
    highest = board.highest()
    assert highest is not None and highest.id is AlarmId.OCCLUSION_UPSTREAM


def test_the_pump_status_presents_a_flood_highest_first() -> None:
    pump, _ = make_pump()
    for cid in "ABCD":
        start(pump, cid, basic("50"))
    for cid in "ABCD":
        pump.resistance_reading(cid, D(1))
    for cid in "DCBA":
        pump.open_door(cid)
        pump.occlude_upstream(cid)
    pump.ac_power(False)
    shown = pump.status().alarms
    assert len(shown) == len(pump.alarms.active) == 9
    assert [a.priority for a in shown[:8]] == ["high"] * 8 and shown[8].alarm == "power.ac_lost"
