"""The live bus on the real PostgreSQL: what one server process publishes reaches the others' live streams,
in order, once; what a notification cannot carry, or a malformed one, is refused and counted; a lost
connection loses no message being sent, and one lost while listening restarts the live streams."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine

from smartpump.clock import ManualClock
from smartpump.server.app import create_app
from smartpump.server.live import LiveHub, LiveMessage
from smartpump.server.live_bus import CHANNEL, MAX_PAYLOAD_BYTES, LiveBus, decode, encode, libpq_dsn, pack
from smartpump.server.settings import Settings
from tests.server.conftest import _wipe
from tests.waiting import wait_until

BURST = 3000
AT = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.fixture
def dsn(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the live bus is PostgreSQL's LISTEN/NOTIFY")
    return libpq_dsn(database_url)


@pytest.fixture
def replicas(dsn: str) -> Iterator[tuple[LiveHub, LiveBus, LiveHub, LiveBus]]:
    """Two processes' hubs, each with its end of the bus."""
    first, second = LiveHub(), LiveHub()
    buses = LiveBus(dsn, first, origin="replica-a"), LiveBus(dsn, second, origin="replica-b")
    for bus in buses:
        bus.start_threads()
    yield first, buses[0], second, buses[1]
    for bus in buses:
        bus.stop_threads()


def test_a_burst_published_on_one_replica_reaches_the_other_in_order_and_once(
    replicas: tuple[LiveHub, LiveBus, LiveHub, LiveBus],
) -> None:
    first, first_bus, second, second_bus = replicas
    for n in range(BURST):
        first.publish(7, "alarm.raised", {"pump": f"P-{n % 40}", "alarm": "occlusion.downstream", "n": n})
    wait_until(lambda: second.published == BURST, "the other replica to publish the whole burst")
    assert [m.payload["n"] for m in second.recent()] == list(range(BURST - 200, BURST))
    assert {m.facility_id for m in second.recent()} == {7}
    # the counters are the threads' own, updated just after the message went or was published: wait for them
    wait_until(lambda: (first_bus.sent, second_bus.received) == (BURST, BURST), "the counters to settle")
    assert first_bus.notifications < first_bus.sent, "messages waiting together share a notification"
    second.publish(7, "pump.online", {"pump": "P-1"})
    wait_until(lambda: first.published == BURST + 1, "the answer to come back")
    assert first.recent()[-1].kind == "pump.online"
    wait_until(lambda: first_bus.received >= 1, "the answer to be counted")
    assert first_bus.received == 1, "a replica never gets its own messages back"


def test_a_message_a_notification_cannot_carry_is_counted_not_sent(
    replicas: tuple[LiveHub, LiveBus, LiveHub, LiveBus],
) -> None:
    first, first_bus, second, _ = replicas
    first.publish(1, "pump.view", {"pump": "P-big", "note": "x" * MAX_PAYLOAD_BYTES})
    first.publish(1, "pump.view", {"pump": "P-small"})
    wait_until(lambda: second.published == 1, "the small view to arrive")
    assert second.recent()[0].payload["pump"] == "P-small"
    assert first_bus.too_large == 1
    assert first.published == 2, "the local stream still shows it"


def test_a_malformed_notification_is_refused_and_the_next_one_still_arrives(
    dsn: str, replicas: tuple[LiveHub, LiveBus, LiveHub, LiveBus]
) -> None:
    _, _, second, second_bus = replicas
    with psycopg.connect(dsn, autocommit=True) as connection:
        for text in ("not json", '{"o":"x","k":"no.such.kind","f":1,"t":"2026-12-05T00:00:00+00:00","p":{}}'):
            connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, text))
        valid = '{"o":"x","k":"pump.offline","f":1,"t":"2026-12-05T00:00:00+00:00","p":{"pump":"P-9"}}'
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, valid))
    wait_until(lambda: second.published == 1, "the valid notification to be published")
    assert second_bus.refused == 2
    assert [(m.kind, m.payload) for m in second.recent()] == [("pump.offline", {"pump": "P-9"})]


@given(st.lists(st.text(max_size=3000), max_size=60), st.text(min_size=1, max_size=20))
def test_packed_notifications_carry_every_message_in_order_each_within_the_limit(
    notes: list[str], origin: str
) -> None:
    messages = [
        LiveMessage(kind="pump.view", facility_id=n, payload={"note": note}, ts=AT)
        for n, note in enumerate(notes)
    ]
    texts = [encode(message) for message in messages]
    notifications = pack(origin, texts)
    assert all(len(text.encode()) <= MAX_PAYLOAD_BYTES for text in notifications)
    unpacked = [decode(text) for text in notifications]
    assert {found for found, _ in unpacked} <= {origin}
    assert [m for _, group in unpacked for m in group] == messages
    for (_, group), following in zip(unpacked, notifications[1:], strict=False):
        first_of_next = decode(following)[1][0]
        denser = pack(origin, [encode(m) for m in [*group, first_of_next]])
        assert len(denser) == 2, "a notification is closed only when the next message would not fit"


def test_a_notification_of_many_messages_refuses_only_the_unknown_kind(
    dsn: str, replicas: tuple[LiveHub, LiveBus, LiveHub, LiveBus]
) -> None:
    _, _, second, second_bus = replicas
    notes = [("pump.online", {"pump": "P-1"}), ("no.such.kind", {}), ("pump.offline", {"pump": "P-2"})]
    items = [{"k": kind, "f": 1, "t": AT.isoformat(), "p": payload} for kind, payload in notes]
    text = json.dumps({"o": "x", "m": items})
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, text))
    wait_until(lambda: second.published == 2, "the two known messages to be published")
    assert [m.kind for m in second.recent()] == ["pump.online", "pump.offline"]
    assert second_bus.refused == 1


def _terminate(dsn: str, application_name: str) -> None:
    """Cut the database connection of that name to this test's database (as a restarted PostgreSQL or a
    network cut would; the parallel test processes' replicas have the same names on their own databases)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        cut = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (application_name,),
        ).fetchall()
    assert cut == [(True,)], f"one connection named {application_name}"


def test_a_group_being_sent_when_the_connection_is_lost_is_sent_on_the_next(
    dsn: str, replicas: tuple[LiveHub, LiveBus, LiveHub, LiveBus]
) -> None:
    first, first_bus, second, _ = replicas
    _terminate(dsn, "smartpump-live-send-replica-a")
    first.publish(3, "alarm.raised", {"pump": "P-1", "alarm": "air_in_line.single"})
    wait_until(lambda: second.published == 1, "the alarm to arrive over the sender's new connection")
    assert second.recent()[0].payload["pump"] == "P-1"
    wait_until(lambda: first_bus.sent == 1, "the sender to count it")


def test_a_listener_that_lost_its_connection_ends_the_live_streams_and_listens_again(
    dsn: str, replicas: tuple[LiveHub, LiveBus, LiveHub, LiveBus]
) -> None:
    first, _, second, second_bus = replicas
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()

    async def read_until_ended() -> list[list[LiveMessage]]:
        return [batch async for batch in second.subscribe(None)]

    try:
        stream = asyncio.run_coroutine_threadsafe(read_until_ended(), loop)
        wait_until(lambda: second.subscribers == 1, "a live stream on the listening replica")
        _terminate(dsn, "smartpump-live-listen-replica-b")
        wait_until(lambda: second_bus.listens == 2, "the listener to listen again")
        assert second_bus.health().ok
        assert stream.result(timeout=30) == [[]], "the stream ended (its browser opens a new one)"
        assert second.subscribers == 0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(30)
        loop.close()
    first.publish(3, "pump.online", {"pump": "P-2"})
    wait_until(lambda: second.published == 1, "messages to flow again")


def test_a_connection_that_cannot_be_opened_shows_in_health(dsn: str) -> None:
    bus = LiveBus("host=127.0.0.1 port=1 user=postgres dbname=nowhere connect_timeout=2", LiveHub())
    bus.start_threads()
    try:
        wait_until(lambda: len(bus.health().detail.split("; ")) == 2, "both connections to have failed")
        health = bus.health()
    finally:
        bus.stop_threads()
    assert (health.name, health.ok) == ("live_bus", False)
    assert health.detail.startswith("listen connection lost: ")
    assert "; send connection lost: " in health.detail


def test_the_live_bus_needs_postgresql() -> None:
    with pytest.raises(ValidationError, match="SMARTPUMP_LIVE_BUS needs a PostgreSQL"):
        Settings(database_url="sqlite:///./var/x.db", live_bus=True)


def test_a_server_with_the_live_bus_reports_it_in_health(
    dsn: str, settings: Settings, clock: ManualClock, engine: Engine
) -> None:
    app = create_app(settings.model_copy(update={"live_bus": True}), clock=clock, engine=engine)
    try:
        with TestClient(app) as client:
            services = client.get("/api/v1/health").json()["services"]
    finally:
        _wipe(engine)
    assert services["live_bus"] == "ok"
