"""Every alarm that leaves the pump's board, or changes priority, does so by an event: folding the
``alarm.*`` events gives the board exactly (ALM lifecycle, issue 14)."""

from __future__ import annotations

from decimal import Decimal

from smartpump.pump import ChannelState, EventType, Pump
from smartpump.pump.alarms import PAUSED_REMINDER_S, AlarmId, EndedBy, Priority
from smartpump.pump.events import EVENT_FIELDS, PumpEvent
from tests.unit.pump.library import basic, make_pump, start

D = Decimal
Board = dict[tuple[str, str | None], str]


def folded(pump: Pump) -> Board:
    """The board a server holds when it folds the pump's alarm events and nothing else."""
    board: Board = {}
    for event in pump.events:
        key = (str(event.data.get("alarm")), event.channel)
        if event.type is EventType.ALARM_RAISED:
            board[key] = str(event.data["priority"])
        elif event.type is EventType.ALARM_ESCALATED:
            assert board[key] == event.data["from_priority"]
            board[key] = str(event.data["to_priority"])
        elif event.type is EventType.ALARM_CLEARED:
            assert board.pop(key) == event.data["priority"]
    return board


def shown(pump: Pump) -> Board:
    """The board as the pump's own status shows it."""
    return {(a.alarm, a.channel): a.priority for a in pump.status().alarms}


def cleared(pump: Pump, alarm: AlarmId) -> PumpEvent:
    return [e for e in pump.events.of_type(EventType.ALARM_CLEARED) if e.data["alarm"] == alarm.value][-1]


def test_a_completing_infusion_ends_its_near_end_alarm_superseded_by_the_complete_alarm() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="10"))
    clock.advance(9 * 60)
    pump.sync()
    assert pump.alarms.is_active(AlarmId.NEAR_END, "A")
    clock.advance(2 * 60)
    pump.sync()
    assert not pump.alarms.is_active(AlarmId.NEAR_END, "A")
    event = cleared(pump, AlarmId.NEAR_END)
    assert set(EVENT_FIELDS[EventType.ALARM_CLEARED]) == set(event.data)
    assert event.data["by"] == EndedBy.SUPERSEDED.value
    assert event.data["superseded_by"] == AlarmId.INFUSION_COMPLETE.value
    assert event.data["priority"] == Priority.LOW.value
    assert event.data["duration_s"] == D(300)
    assert folded(pump) == shown(pump) == {(AlarmId.INFUSION_COMPLETE.value, "A"): "medium"}


def test_stopping_ends_the_complete_alarm_with_the_infusion() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="10"))
    clock.advance(3600)
    pump.stop("A")
    assert cleared(pump, AlarmId.INFUSION_COMPLETE).data["by"] == EndedBy.STOPPED.value
    assert folded(pump) == shown(pump) == {}


def test_a_paused_reminder_escalates_and_the_server_fold_follows_then_resume_ends_it() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="100"))
    pump.pause("A")
    clock.advance(int(PAUSED_REMINDER_S) + 1)
    pump.sync()
    assert folded(pump) == shown(pump) == {(AlarmId.CHANNEL_PAUSED.value, "A"): "low"}
    clock.advance(301)
    pump.sync()
    assert folded(pump) == shown(pump) == {(AlarmId.CHANNEL_PAUSED.value, "A"): "medium"}
    pump.resume("A")
    event = cleared(pump, AlarmId.CHANNEL_PAUSED)
    assert event.data["by"] == EndedBy.RESUMED.value and event.data["priority"] == "medium"
    assert folded(pump) == shown(pump) == {}


def test_stopping_a_paused_channel_ends_its_reminder_as_stopped_not_resumed() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="100"))
    pump.pause("A")
    clock.advance(int(PAUSED_REMINDER_S) + 1)
    pump.stop("A")
    assert cleared(pump, AlarmId.CHANNEL_PAUSED).data["by"] == EndedBy.STOPPED.value
    assert folded(pump) == shown(pump) == {}


def test_a_stopping_alarm_supersedes_the_paused_reminder() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="100"))
    pump.pause("A")
    clock.advance(int(PAUSED_REMINDER_S) + 1)
    pump.open_door("A")
    event = cleared(pump, AlarmId.CHANNEL_PAUSED)
    assert event.data["by"] == EndedBy.SUPERSEDED.value
    assert event.data["superseded_by"] == AlarmId.DOOR_OPEN.value
    assert pump.channel("A").state is ChannelState.ALARM
    assert folded(pump) == shown(pump) == {(AlarmId.DOOR_OPEN.value, "A"): "high"}


def test_operator_clear_and_condition_end_are_events() -> None:
    pump, _ = make_pump()
    start(pump, "A", basic("60", vtbi="100"))
    pump.occlude_upstream("A")
    pump.ac_power(False)
    assert (
        folded(pump)
        == shown(pump)
        == {
            (AlarmId.OCCLUSION_UPSTREAM.value, "A"): "high",
            (AlarmId.AC_LOST.value, None): "low",
        }
    )
    pump.release_upstream("A")
    pump.clear_alarm(AlarmId.OCCLUSION_UPSTREAM, "A")
    pump.ac_power(True)
    assert cleared(pump, AlarmId.OCCLUSION_UPSTREAM).data["by"] == EndedBy.OPERATOR.value
    assert cleared(pump, AlarmId.AC_LOST).data["by"] == EndedBy.CONDITION_ENDED.value
    assert folded(pump) == shown(pump) == {}


def test_a_new_set_ends_the_set_change_reminder() -> None:
    pump, clock = make_pump()
    pump.install_set("A", set_type="primary", lot="L1", line_label=None)
    due_h = pump.channel("A").admin_set.change_due_h  # type: ignore[union-attr]
    clock.advance(int(due_h) * 3600 + 1)
    pump.sync()
    assert pump.alarms.is_active(AlarmId.SET_CHANGE_DUE, "A")
    pump.install_set("A", set_type="primary", lot="L2", line_label=None)
    assert cleared(pump, AlarmId.SET_CHANGE_DUE).data["by"] == EndedBy.SET_CHANGED.value
    assert folded(pump) == shown(pump) == {}
