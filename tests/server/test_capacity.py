"""Capacity by design (issue 15, item 4): a burst of concurrent requests from one account degrades to
503 ``server.busy`` with ``Retry-After``, never to a 500 or a stall; the health check still answers."""

from __future__ import annotations

import threading
import time
import warnings
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import Engine

from smartpump.clock import ManualClock
from smartpump.server.app import create_app
from smartpump.server.auth import Role
from smartpump.server.settings import Settings
from tests.server.conftest import World, _wipe
from tests.server.test_live_stream import WAIT_S, served

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BURST = 60


def test_a_burst_beyond_the_request_slots_gets_503_with_retry_after_and_never_500(
    settings: Settings, clock: ManualClock, engine: Engine
) -> None:
    app = create_app(
        settings.model_copy(update={"max_concurrent_requests": 2, "queue_wait_s": 0.0}),
        clock=clock,
        engine=engine,
    )
    try:
        statuses, answers, elapsed, health = _burst(app, clock)
    finally:
        _wipe(engine)  # this test builds its own app on the shared engine: leave the database empty
    assert len(answers) == BURST
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= 1 and statuses[503] >= 1, statuses
    assert all(retry == "1" and code == "server.busy" for status, retry, code in answers if status == 503)
    assert elapsed < WAIT_S
    assert health.status_code == 200, health.text  # asked during the burst, never queued behind it


def _burst(
    app: Any, clock: ManualClock
) -> tuple[Counter[int], list[tuple[int, str | None, Any]], float, httpx.Response]:
    """BURST simultaneous viewer requests against the served app, with a health check among them."""
    with TestClient(app, raise_server_exceptions=False) as client:
        world = World(app, client, clock)
        facility = world.facility()
        headers = world.as_role(Role.VIEWER, facility, username="vera")
        answers: list[tuple[int, str | None, Any]] = []
        lock = threading.Lock()
        start = threading.Barrier(BURST + 1, timeout=WAIT_S)
        health: list[httpx.Response] = []

        def check_health(base: str) -> None:
            start.wait()
            health.append(httpx.get(f"{base}/api/v1/health", timeout=WAIT_S))

        def ask(base: str) -> None:
            start.wait()
            response = httpx.get(f"{base}/api/v1/pumps", headers=headers, timeout=WAIT_S)
            body = response.json()
            code = body["error"]["code"] if response.status_code != 200 else None
            with lock:
                answers.append((response.status_code, response.headers.get("retry-after"), code))

        with served(app) as base:
            began = time.monotonic()
            askers = [threading.Thread(target=ask, args=(base,), daemon=True) for _ in range(BURST)]
            askers.append(threading.Thread(target=check_health, args=(base,), daemon=True))
            for asker in askers:
                asker.start()
            for asker in askers:
                asker.join(WAIT_S)
            elapsed = time.monotonic() - began
    [during] = health
    return Counter(status for status, _, _ in answers), answers, elapsed, during


STREAMS = 60


def test_live_streams_opening_at_once_are_counted_until_they_stream_and_then_hold_no_slot(
    settings: Settings, clock: ManualClock, engine: Engine
) -> None:
    app = create_app(
        settings.model_copy(update={"max_concurrent_requests": 2, "queue_wait_s": 0.0}),
        clock=clock,
        engine=engine,
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            world = World(app, client, clock)
            headers = world.as_role(Role.NURSE, world.facility(), username="nina")
            with served(app) as base:
                statuses, elapsed, during = _streams(base, headers)
    finally:
        _wipe(engine)
    assert set(statuses) <= {200, 503}, statuses  # never a 500 or a timeout
    assert statuses[503] >= 1, statuses  # opening a stream takes a request slot
    assert statuses[200] >= 1, statuses
    assert elapsed < WAIT_S
    assert during.status_code == 200, during.text  # the open streams hold no slot


def _streams(base: str, headers: dict[str, str]) -> tuple[Counter[int], float, httpx.Response]:
    """STREAMS streams opened at once and kept open; an API request once every opening is answered."""
    opened: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(STREAMS + 1, timeout=WAIT_S)
    answered = threading.Barrier(STREAMS + 1, timeout=WAIT_S)
    close = threading.Event()

    def hold() -> None:
        start.wait()
        try:
            with httpx.stream(
                "GET", f"{base}/ui/stream", headers={**headers, "Accept": "text/event-stream"}, timeout=WAIT_S
            ) as response:
                with lock:
                    opened.append(response.status_code)
                answered.wait()
                close.wait(WAIT_S)
        except httpx.HTTPError:
            with lock:
                opened.append(0)
            answered.wait()

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(STREAMS)]
    for holder in holders:
        holder.start()
    began = time.monotonic()
    start.wait()
    answered.wait()
    elapsed = time.monotonic() - began
    during = httpx.get(f"{base}/api/v1/pumps", headers=headers, timeout=WAIT_S)
    close.set()
    for holder in holders:
        holder.join(WAIT_S)
    return Counter(opened), elapsed, during
