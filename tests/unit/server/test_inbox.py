"""The ingest worker's inbox: the urgent lane first, groups bounded by messages and events, a put waits at
the weight limit and goes on when a step takes messages, close releases it, wake ends a wait."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from smartpump.server.inbox import Inbox, weight
from smartpump.transport.messages import Envelope, EventRecord, events_message, hello_message
from tests.waiting import wait_until

MOMENT = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def batch(pump: str, count: int) -> Envelope:
    """An events message of ``count`` vitals events."""
    return events_message(
        pump,
        [
            EventRecord(v=1, pump=pump, seq=seq, ts=MOMENT, channel=None, type="vitals.recorded", data={})
            for seq in range(1, count + 1)
        ],
    )


def hello(pump: str) -> Envelope:
    """A message that is not an events batch (a pump saying hello)."""
    return hello_message(pump, next_seq=1, acked_seq=0)


def test_a_message_weighs_its_events_plus_one() -> None:
    assert weight(batch("P-1", 3)) == 4
    assert weight(hello("P-1")) == 1


def test_the_urgent_lane_is_taken_first_and_each_lane_in_arrival_order() -> None:
    inbox = Inbox(None)
    plain = [batch(f"P-{i}", 1) for i in range(3)]
    alarms = [batch(f"A-{i}", 1) for i in range(2)]
    inbox.put(plain[0])
    inbox.put(alarms[0], urgent=True)
    inbox.put(plain[1])
    inbox.put(alarms[1], urgent=True)
    inbox.put(plain[2])

    assert inbox.take(10, 1000) == [*alarms, *plain]
    assert len(inbox) == 0 and inbox.weight == 0


def test_a_group_stops_at_its_messages_or_once_its_events_are_reached_never_splitting_a_batch() -> None:
    inbox = Inbox(None)
    for i in range(5):
        inbox.put(batch(f"P-{i}", 3))

    assert [e.pump for e in inbox.take(2, 1000)] == ["P-0", "P-1"]
    assert [e.pump for e in inbox.take(10, 4)] == ["P-2", "P-3"], (
        "the batch crossing the event limit is taken"
    )
    assert inbox.weight == 4
    assert [e.pump for e in inbox.take(10, 1000)] == ["P-4"]


def test_a_put_waits_at_the_limit_and_goes_in_once_a_step_takes_messages() -> None:
    inbox = Inbox(9)
    inbox.put(batch("P-1", 3))
    inbox.put(batch("P-2", 3))
    done = threading.Event()

    def late() -> None:
        inbox.put(batch("P-3", 1))
        done.set()

    inbox.put(hello("P-0"))
    assert inbox.weight == 9
    thread = threading.Thread(target=late)
    thread.start()
    assert not done.wait(0.05), "a put at the limit does not go in"
    assert len(inbox) == 3

    assert [e.pump for e in inbox.take(1, 1000)] == ["P-1"]
    wait_until(done.is_set, "the waiting put to go in")
    thread.join()
    assert [e.pump for e in inbox.take(10, 1000)] == ["P-2", "P-0", "P-3"]


def test_one_message_heavier_than_the_limit_goes_into_an_inbox_below_it() -> None:
    inbox = Inbox(5)
    assert inbox.put(batch("P-1", 50))
    assert inbox.weight == 51


def test_close_releases_a_waiting_put_and_refuses_later_ones() -> None:
    inbox = Inbox(1)
    inbox.put(hello("P-1"))
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(inbox.put(hello("P-2"))))
    thread.start()
    inbox.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert results == [False]
    assert not inbox.put(hello("P-3"), urgent=True)
    assert [e.pump for e in inbox.take(10, 10)] == ["P-1"]


def test_wait_returns_at_a_message_or_a_wake_and_says_whether_messages_wait() -> None:
    inbox = Inbox(None)
    assert inbox.wait(0.01) is False
    inbox.wake()
    assert inbox.wait(60) is False, "a wake ends the wait at once"
    arrived: list[bool] = []
    thread = threading.Thread(target=lambda: arrived.append(inbox.wait(60)))
    thread.start()
    inbox.put(hello("P-1"), urgent=True)
    thread.join(timeout=10)
    assert arrived == [True]
