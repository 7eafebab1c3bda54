"""The server's ingest over the real broker (SMARTPUMP_TEST_MQTT_URL) keeps going: an anonymous 2 KB message
nesting 1,000 arrays is refused and logged while /health stays ok and later batches are stored; an MQTT
network thread that ended is started again by the ingest worker, counted, and ingest goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import Engine, select

from smartpump.clock import ManualClock, WallClock
from smartpump.pump.events import EventLog
from smartpump.server.app import create_app
from smartpump.server.db.models import Event, Facility, Pump
from smartpump.server.settings import Settings
from smartpump.server.workers import IngestWorker
from smartpump.transport.messages import Envelope, EventRecord, Kind, Topics, ack_of, events_message
from smartpump.transport.mqtt import MqttSettings, MqttTransport
from tests.integration.mqtt_broker import BROKER_URL, reachable_broker
from tests.server.conftest import (  # noqa: F401  (fixtures)
    START,
    TestClient,
    _wipe,
    clock,
    database_url,
    engine,
    settings,
)
from tests.unit.transport.helpers import vitals_every_minute
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt

WAIT_S = 10.0


class Rig:
    """A running server ingesting over MQTT under a fresh topic prefix, and one registered pump."""

    def __init__(self, client: TestClient, mqtt: MqttSettings, serial: str) -> None:
        self.client = client
        self.mqtt = mqtt
        self.serial = serial
        self.state = client.app.state.smartpump  # type: ignore[attr-defined]
        worker = self.state.background[0]
        assert isinstance(worker, IngestWorker) and isinstance(worker.transport, MqttTransport)
        self.worker = worker
        self.server: MqttTransport = worker.transport
        assert self.server.wait_ready(WAIT_S), "server did not connect to the broker"
        with self.state.sessions() as session:
            facility = Facility(code="north", name="north hospital", created_at=START)
            session.add(facility)
            session.flush()
            session.add(
                Pump(
                    facility_id=facility.id,
                    serial=serial,
                    model="lvp",
                    firmware="1.0.0",
                    status="in_service",
                    created_at=START,
                )
            )
            session.commit()
        self.acked = 0
        self.pump = MqttTransport.for_pump(serial, mqtt, client_id=f"pump-{uuid.uuid4().hex[:10]}")
        self.pump.start(self._received, lambda up: None)
        assert self.pump.wait_ready(WAIT_S), "pump did not connect"
        self.log = EventLog(serial)
        self.clock = ManualClock()

    def _received(self, envelope: Envelope) -> None:
        if envelope.kind is Kind.ACK:
            self.acked = max(self.acked, ack_of(envelope))

    def batch(self, minutes: int) -> Envelope:
        """The pump's next ``minutes`` of vitals as one batch."""
        first = len(self.log) + 1
        vitals_every_minute(self.log, self.clock, minutes)
        return events_message(self.serial, [EventRecord.from_event(e) for e in list(self.log)[first - 1 :]])

    def stored(self) -> list[int]:
        """Seqs stored for the pump."""
        with self.state.sessions() as session:
            query = select(Event.seq).join(Pump, Pump.id == Event.pump_id).where(Pump.serial == self.serial)
            return sorted(session.scalars(query))

    def health(self) -> dict[str, Any]:
        """``GET /api/v1/health``."""
        body: dict[str, Any] = self.client.get("/api/v1/health").json()
        return body


@pytest.fixture
def rig(settings: Settings, engine: Engine) -> Iterator[Rig]:  # noqa: F811
    mqtt = reachable_broker(topics=Topics(f"smartpump-test/{uuid.uuid4().hex[:12]}/v1"))
    configured = settings.model_copy(update={"mqtt_url": BROKER_URL, "mqtt_topic_prefix": mqtt.topics.prefix})
    app = create_app(configured, clock=WallClock(), engine=engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            built = Rig(client, mqtt, "mq-1")
            yield built
            built.pump.close()
    finally:
        _wipe(engine)


def _anonymous_publish(mqtt: MqttSettings, topic: str, payload: bytes) -> None:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"anonymous-{uuid.uuid4().hex[:10]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.connect(mqtt.host, mqtt.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def test_an_anonymous_deep_message_is_refused_and_ingest_goes_on(rig: Rig) -> None:
    deep = (
        b'{"v":1,"kind":"events","pump":"mq-1","body":{"events":[{"v":1,"pump":"mq-1","seq":1,'
        b'"ts":"2026-03-02T08:00:00+00:00","channel":null,"type":"vitals.recorded","data":{"x":'
        + b"[" * 1000
        + b"]" * 1000
        + b"}}]}}"
    )
    assert len(deep) < 2500
    _anonymous_publish(rig.mqtt, rig.mqtt.topics.events("mq-1"), deep)
    wait_until(lambda: rig.server.rejected == 1, "the deep message to be refused")
    assert rig.stored() == []

    assert rig.pump.send(rig.batch(3))

    wait_until(lambda: rig.acked == 3, "the later batch to be acked")
    assert rig.stored() == [1, 2, 3]
    wait_until(lambda: rig.health()["services"] == {"ingest": "ok"}, "ingest to report ok")
    assert rig.health()["status"] == "ok"


def test_an_ended_network_thread_is_started_again_by_the_worker(rig: Rig) -> None:
    rig.server._client.loop_stop()  # the thread ends, as an escaping callback exception would end it

    wait_until(lambda: rig.server.revivals == 1 and rig.server.alive, "the worker to start the thread again")
    assert 'smartpump_worker_restarts_total{worker="mqtt"} 1.0' in rig.client.get("/metrics").text
    assert rig.pump.send(rig.batch(2))
    wait_until(lambda: rig.acked == 2, "a batch after the restart to be acked")
    assert rig.stored() == [1, 2]
    wait_until(lambda: rig.health()["services"] == {"ingest": "ok"}, "ingest to report ok")
