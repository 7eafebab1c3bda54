"""The live hub: a reader far behind loses no alarm and ends on each pump's newest snapshot."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

import pytest

from smartpump.server.live import EVENT_BACKLOG, LiveHub, LiveMessage

T = TypeVar("T")
PUMPS = 300
VIEWS = 30_000
ALARM_EVERY = 600


class _Reader:
    """A subscription registered before anything is published (its first, empty batch was read)."""

    def __init__(self, batches: AsyncGenerator[list[LiveMessage]]) -> None:
        self._batches = batches

    @classmethod
    async def of(cls, hub: LiveHub, facility_ids: frozenset[int] | None) -> _Reader:
        batches = hub.subscribe(facility_ids)
        assert await anext(batches) == [], "the first batch says the subscription is registered"
        assert hub.subscribers == 1
        return cls(batches)

    async def next(self) -> list[LiveMessage]:
        return await anext(self._batches)

    async def close(self) -> None:
        await self._batches.aclose()


def _behind(publish: Callable[[LiveHub], T], hub: LiveHub) -> T:
    """Run ``publish`` in another thread while the reader's loop is held (a reader that is behind)."""
    result: list[T] = []
    publisher = threading.Thread(target=lambda: result.append(publish(hub)))
    publisher.start()
    publisher.join()
    return result[0]


def _publish_burst(hub: LiveHub) -> tuple[list[str], dict[str, int]]:
    """30,000 ``pump.view`` snapshots over 300 pumps with an alarm every 600 (50 alarms), from a thread
    other than the reader's; the alarms in order and the last snapshot number of each pump."""
    alarms: list[str] = []
    last: dict[str, int] = {}
    for n in range(VIEWS):
        pump = f"P-{n % PUMPS}"
        hub.publish(1, "pump.view", {"pump": pump, "n": n})
        last[pump] = n
        if n % ALARM_EVERY == 0:
            hub.publish(1, "alarm.raised", {"pump": pump, "alarm": "occlusion.downstream", "n": n})
            alarms.append(f"{pump}#{n}")
    return alarms, last


def test_a_reader_behind_a_burst_gets_every_alarm_in_order_and_each_pumps_newest_view() -> None:
    async def scenario() -> tuple[list[str], dict[str, int], list[str], dict[str, int], int]:
        hub = LiveHub()
        reader = await _Reader.of(hub, None)
        alarms, last = _behind(_publish_burst, hub)
        seen_alarms: list[str] = []
        seen_views: dict[str, int] = {}
        frames = 0
        while len(seen_views) < PUMPS or any(seen_views[p] != n for p, n in last.items()):
            for message in await reader.next():
                frames += 1
                key = f"{message.payload['pump']}#{message.payload['n']}"
                if message.kind == "alarm.raised":
                    seen_alarms.append(key)
                else:
                    seen_views[str(message.payload["pump"])] = int(str(message.payload["n"]))
        await reader.close()
        return alarms, last, seen_alarms, seen_views, frames

    alarms, last, seen_alarms, seen_views, frames = asyncio.run(scenario())
    assert len(alarms) == VIEWS // ALARM_EVERY
    assert seen_alarms == alarms
    assert seen_views == last
    assert frames < VIEWS / 10, "snapshots a reader has not read yet are replaced, not queued"


def test_a_reader_more_than_the_backlog_behind_loses_only_the_oldest_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> list[int]:
        hub = LiveHub()
        reader = await _Reader.of(hub, None)

        def burst(hub: LiveHub) -> None:
            for n in range(EVENT_BACKLOG + 25):
                hub.publish(1, "pump.online", {"pump": f"P-{n}", "n": n})

        _behind(burst, hub)
        seen: list[int] = []
        while not seen or seen[-1] != EVENT_BACKLOG + 24:
            seen.extend(int(str(m.payload["n"])) for m in await reader.next())
        await reader.close()
        return seen

    assert asyncio.run(scenario()) == list(range(25, EVENT_BACKLOG + 25))
    losses = [r.getMessage() for r in caplog.records if "event messages behind" in r.getMessage()]
    assert losses == [f"a live stream reader is {EVENT_BACKLOG} event messages behind: it loses the oldest"]


def test_a_reader_gets_only_its_facilities_and_leaving_unsubscribes() -> None:
    async def scenario() -> tuple[list[object], int]:
        hub = LiveHub()
        reader = await _Reader.of(hub, frozenset({2}))
        hub.publish(1, "alarm.raised", {"pump": "P-other"})
        hub.publish(2, "alarm.raised", {"pump": "P-mine"})
        batch = await reader.next()
        await reader.close()
        return [m.payload["pump"] for m in batch], hub.subscribers

    pumps, subscribers = asyncio.run(scenario())
    assert pumps == ["P-mine"]
    assert subscribers == 0


def test_ending_the_streams_ends_each_after_what_it_holds() -> None:
    async def scenario() -> tuple[list[object], int]:
        hub = LiveHub()
        reader = await _Reader.of(hub, None)
        hub.publish(1, "alarm.raised", {"pump": "P-1"})
        assert hub.end_streams() == 1
        batch = await reader.next()
        with pytest.raises(StopAsyncIteration):
            await reader.next()
        return [m.payload["pump"] for m in batch], hub.subscribers

    assert asyncio.run(scenario()) == (["P-1"], 0)
