"""Where a backlog waits decides whether an alarm overtakes it (SMARTPUMP_TEST_MQTT_URL, real Mosquitto).

Pumps registered at first contact publish plain event batches through a plain paho client, then one pump
publishes an ``alarm.raised``, while the server's ingest worker is not processing. When the backlog fits
``ingest_inbox_events``, the whole of it is read into the worker's inbox and the alarm is published to the
live stream before any of the batches it arrived behind; when it does not, the network thread waits at
the limit (``smartpump_ingest_inbox_events`` shows it), the rest waits in the broker's first-in-first-out
queue, and the alarm comes only after the batches ahead of it there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import Engine

from smartpump.clock import WallClock
from smartpump.server import workers
from smartpump.server.app import create_app
from smartpump.server.settings import Settings
from smartpump.server.workers import IngestWorker
from smartpump.transport.messages import EventRecord, Topics, events_message
from smartpump.transport.mqtt import MqttSettings, MqttTransport
from tests.integration.mqtt_broker import BROKER_URL, reachable_broker
from tests.server.conftest import (  # noqa: F401  (fixtures)
    TestClient,
    _wipe,
    clock,
    database_url,
    engine,
    settings,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt

PLAIN_PUMPS = 40
EVENTS_EACH = 2
GROUP = 10
MOMENT = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _batch(pump: str, type_: str, count: int) -> bytes:
    records = [
        EventRecord(
            v=1,
            pump=pump,
            seq=seq,
            ts=MOMENT,
            channel="A" if type_ == "alarm.raised" else None,
            type=type_,
            data={"alarm": "occlusion.downstream", "priority": "high"} if type_ == "alarm.raised" else {},
        )
        for seq in range(1, count + 1)
    ]
    return events_message(pump, records).encode()


class Backlog:
    """A server whose ingest worker is attached but not running, under a fresh topic prefix."""

    def __init__(self, base: Settings, bound: Engine, limit: int) -> None:
        self.topics = Topics(f"smartpump-test/{uuid.uuid4().hex[:12]}/v1")
        configured = base.model_copy(
            update={
                "mqtt_url": BROKER_URL,
                "mqtt_topic_prefix": self.topics.prefix,
                "mqtt_client_id": f"server-{uuid.uuid4().hex[:10]}",
                "ingest_register_facility": "north",
                "ingest_inbox_events": limit,
            }
        )
        self.app = create_app(configured, clock=WallClock(), engine=bound)
        self.state = self.app.state.smartpump
        worker = self.state.background[0]
        assert isinstance(worker, IngestWorker) and isinstance(worker.transport, MqttTransport)
        self.worker = worker
        worker.attach(self.state)
        assert worker.transport.wait_ready(10), "server did not connect to the broker"

    def publish_backlog(self) -> None:
        """The plain batches, then the alarm, from one client in that order (QoS 1, each confirmed)."""
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"pumps-{uuid.uuid4().hex[:10]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        broker = MqttSettings.from_url(BROKER_URL)
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            sent = [
                client.publish(
                    self.topics.events(f"BL-{i:03d}"), _batch(f"BL-{i:03d}", "vitals.recorded", 2), 1
                )
                for i in range(PLAIN_PUMPS)
            ]
            sent.append(
                client.publish(self.topics.events("BL-ALARM"), _batch("BL-ALARM", "alarm.raised", 1), 1)
            )
            for info in sent:
                info.wait_for_publish(timeout=10)
        finally:
            client.disconnect()
            client.loop_stop()

    def live_order(self) -> list[tuple[str, str]]:
        """Process everything received and what arrives while doing it; the live messages' (kind, pump)."""
        before = self.state.live.published
        done: list[int] = []
        wait_until(
            lambda: sum(done) == PLAIN_PUMPS + 1,
            "every batch to be processed",
            step=lambda: done.append(self.worker.run_once()),
        )
        published = self.state.live.published - before
        recent = self.state.live.recent()
        assert published <= len(recent), "every message of the run is among the recent ones"
        return [(m.kind, str(m.payload["pump"])) for m in recent[len(recent) - published :]]

    def close(self) -> None:
        self.worker.inbox.close()
        self.worker.transport.close()
        self.state.ingest_engine.dispose()


@pytest.fixture
def backlog_of(settings: Settings, engine: Engine) -> Iterator[Callable[[int], Backlog]]:  # noqa: F811
    """Makes a ``Backlog`` server with this inbox limit; closes them all and wipes the database after."""
    reachable_broker()
    made: list[Backlog] = []

    def make(limit: int) -> Backlog:
        made.append(Backlog(settings, engine, limit))
        return made[-1]

    try:
        yield make
    finally:
        for one in made:
            one.close()
        _wipe(engine)


def _first_plain(order: list[tuple[str, str]]) -> int:
    return min(i for i, (kind, pump) in enumerate(order) if kind == "pump.status" and pump != "BL-ALARM")


def test_a_backlog_within_the_inbox_is_overtaken_by_the_alarm_behind_it(
    backlog_of: Callable[[int], Backlog], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "MAX_GROUP_MESSAGES", GROUP)
    run = backlog_of(1000)
    run.publish_backlog()
    wait_until(lambda: len(run.worker.inbox) == PLAIN_PUMPS + 1, "the whole backlog to be read")

    order = run.live_order()

    assert order.index(("alarm.raised", "BL-ALARM")) < _first_plain(order)
    assert sum(kind == "pump.status" for kind, _ in order) == PLAIN_PUMPS + 1


def test_a_backlog_beyond_the_inbox_waits_in_the_broker_ahead_of_the_alarm(
    backlog_of: Callable[[int], Backlog], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "MAX_GROUP_MESSAGES", GROUP)
    limit = 30
    run = backlog_of(limit)
    run.publish_backlog()
    wait_until(lambda: run.worker.inbox.weight >= limit, "the inbox to reach its limit")
    assert len(run.worker.inbox) < PLAIN_PUMPS, "the network thread waits: the rest is in the broker"
    gauge = [
        line
        for line in run.state.metrics.render().decode().splitlines()
        if line.startswith("smartpump_ingest")
    ]
    assert gauge == [f"smartpump_ingest_inbox_events {run.worker.inbox.weight:.1f}"]

    order = run.live_order()

    assert order.index(("alarm.raised", "BL-ALARM")) > _first_plain(order)
    assert sum(kind == "pump.status" for kind, _ in order) == PLAIN_PUMPS + 1
