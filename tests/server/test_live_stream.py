"""The live stream over a real HTTP server: it opens with every pump's current view, and a browser that
leaves the dashboard closes it cleanly."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from smartpump.pump.alarms import AlarmId
from smartpump.server.auth import Role
from tests.server.conftest import World
from tests.server.test_fleet_view import SERIAL, paused_past_reminder
from tests.waiting import wait_until

WAIT_S = 30.0


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app behind uvicorn on a free port (its lifespan already runs under the test client)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # log_config=None: uvicorn's records propagate to the root logger, where caplog reads them.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    thread = threading.Thread(target=server.run, name="live-stream-uvicorn", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_S)


@contextmanager
def _stream(base: str, headers: dict[str, str]) -> Iterator[Iterator[str]]:
    """The caller's live stream, opened (200): its text as it arrives."""
    with httpx.stream(
        "GET", f"{base}/ui/stream", headers={**headers, "Accept": "text/event-stream"}, timeout=WAIT_S
    ) as response:
        assert response.status_code == 200
        yield response.iter_text()


def _read(frames: Iterator[str], until: str | None = None) -> str:
    """What the stream sends up to and including the chunk that holds ``until``, or to its end when
    None; within ``WAIT_S`` (the stream's pings end each wait)."""
    deadline = time.monotonic() + WAIT_S
    awaited = "the end" if until is None else repr(until)
    text = ""
    for chunk in frames:
        text += chunk
        if until is not None and until in text:
            return text
        assert time.monotonic() < deadline, f"no {awaited} within {WAIT_S} s; the stream sent {text!r}"
    assert until is None, f"the stream ended before {awaited}; it sent {text!r}"
    return text


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event name, data) of each SSE frame in ``text``."""
    found = []
    for frame in text.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in frame.splitlines() if line.startswith(("event:", "data:"))
        )
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_a_stream_opens_with_every_pumps_current_view_so_a_change_before_it_is_not_lost(
    world: World,
) -> None:
    north, south = world.facility("north"), world.facility("south")
    biomed = world.as_role(Role.BIOMED, north)
    for serial in ("P-2", SERIAL):
        world.pump(biomed, north, serial)
    world.pump(world.as_role(Role.BIOMED, south), south, "S-1")
    # P-1's channel A is paused past its reminder: a change stored with no live message for this stream.
    paused_past_reminder(world)
    headers = world.as_role(Role.NURSE, north, username="nina")
    with served(world.app) as base, _stream(base, headers) as frames:
        opened = _events(_read(frames, "event: live.current"))
    assert [(kind, data.get("pump")) for kind, data in opened] == [
        ("pump.view", SERIAL),
        ("pump.view", "P-2"),
        ("live.current", None),
    ], "every pump of the nurse's facility in serial order, then the marker; none of the other facility"
    assert opened[-1][1] == {"pumps": 2}
    p1 = opened[0][1]
    assert [(a["alarm"], a["priority"]) for a in p1["alarms"]] == [(AlarmId.CHANNEL_PAUSED.value, "medium")]
    assert p1["channels"]["A"]["state"] == "paused"


def test_leaving_the_live_stream_closes_it_without_an_error(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    facility = world.facility()
    headers = world.as_role(Role.NURSE, facility, username="nina")
    live = world.state.live
    caplog.set_level(logging.INFO)
    with served(world.app) as base:
        for visit in range(3):
            with _stream(base, headers) as frames:
                assert ": connected" in _read(frames, "event: live.current")
                assert live.subscribers == 1
                live.publish(facility, "pump.online", {"pump": "P-1"})
                assert "event: pump.online" in next(frames)
            wait_until(lambda: live.subscribers == 0, f"visit {visit} to unsubscribe after leaving")
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [r.getMessage() for r in problems] == []


def test_a_stream_the_hub_ends_closes_so_the_browser_opens_a_new_one(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    facility = world.facility()
    headers = world.as_role(Role.NURSE, facility, username="nina")
    live = world.state.live
    with served(world.app) as base, _stream(base, headers) as frames:
        _read(frames, "event: live.current")
        live.publish(facility, "pump.online", {"pump": "P-1"})
        assert live.end_streams() == 1
        rest = _read(frames)
    assert "event: pump.online" in rest, "what it held is sent before it ends"
    assert live.subscribers == 0
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [r.getMessage() for r in problems] == []


def test_open_live_streams_hold_no_database_connection(world: World) -> None:
    # issue 15: 15 open live-dashboard streams held the pool (5+10) and every database request waited
    facility = world.facility()
    headers = world.as_role(Role.NURSE, facility, username="nina")
    live, engine = world.state.live, world.state.engine
    streams = 20
    opened = threading.Barrier(streams + 1, timeout=WAIT_S)
    leave = threading.Event()

    def watch(base: str) -> None:
        with _stream(base, headers) as frames:
            assert ": connected" in _read(frames, "event: live.current")
            opened.wait()
            leave.wait(WAIT_S)

    with served(world.app) as base:
        watchers = [threading.Thread(target=watch, args=(base,), daemon=True) for _ in range(streams)]
        for watcher in watchers:
            watcher.start()
        opened.wait()
        assert live.subscribers == streams
        assert engine.pool.checkedout() == 0, "each stream returned its starting views' connection"
        answered = httpx.get(f"{base}/api/v1/pumps", headers=headers, timeout=WAIT_S)
        assert answered.status_code == 200
        leave.set()
        for watcher in watchers:
            watcher.join(WAIT_S)
    wait_until(lambda: live.subscribers == 0, "every stream to end")
