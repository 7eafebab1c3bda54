"""The live stream over a real HTTP server: a browser that leaves the dashboard closes it cleanly."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from smartpump.server.auth import Role
from tests.server.conftest import World
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


def test_leaving_the_live_stream_closes_it_without_an_error(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    facility = world.facility()
    headers = world.as_role(Role.NURSE, facility, username="nina")
    live = world.state.live
    caplog.set_level(logging.INFO)
    with served(world.app) as base:
        for visit in range(3):
            with httpx.stream(
                "GET",
                f"{base}/ui/stream",
                headers={**headers, "Accept": "text/event-stream"},
                timeout=WAIT_S,
            ) as response:
                assert response.status_code == 200
                frames = response.iter_text()
                assert ": connected" in next(frames)
                wait_until(lambda: live.subscribers == 1, f"visit {visit} to subscribe")
                live.publish(facility, "pump.online", {"pump": "P-1"})
                assert "event: pump.online" in next(frames)
            wait_until(lambda: live.subscribers == 0, f"visit {visit} to unsubscribe after leaving")
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
        with httpx.stream(
            "GET", f"{base}/ui/stream", headers={**headers, "Accept": "text/event-stream"}, timeout=WAIT_S
        ) as response:
            assert response.status_code == 200
            frames = response.iter_text()  # kept: dropping the iterator closes the response
            assert ": connected" in next(frames)
            opened.wait()
            leave.wait(WAIT_S)

    with served(world.app) as base:
        watchers = [threading.Thread(target=watch, args=(base,), daemon=True) for _ in range(streams)]
        for watcher in watchers:
            watcher.start()
        opened.wait()
        wait_until(lambda: live.subscribers == streams, "every stream to subscribe")
        assert engine.pool.checkedout() == 0
        answered = httpx.get(f"{base}/api/v1/pumps", headers=headers, timeout=WAIT_S)
        assert answered.status_code == 200
        leave.set()
        for watcher in watchers:
            watcher.join(WAIT_S)
    wait_until(lambda: live.subscribers == 0, "every stream to end")
