"""Device identity on the real link: a second Mosquitto runs the project's own TLS + ACL configuration
(``smartpump pki broker-config``; `.ci/run` starts it and exports SMARTPUMP_TEST_MQTT_TLS_URL, the PKI
directory SMARTPUMP_TEST_MQTT_TLS_PKI and the broker log SMARTPUMP_TEST_MQTT_TLS_LOG). Every forgery of
issue 15 is tried against it and against a server ingesting over it: an anonymous client, a pump
publishing as another, a wildcard subscription, a client-id takeover, forged acks, forged next-seq events,
a revoked certificate. Each is refused (by the broker or the server) and logged; nothing is stored and
nothing is acked. Skipped only when the variables are absent and CI is not true.
"""

from __future__ import annotations

import os
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine, select

from smartpump.clock import WallClock
from smartpump.server.app import create_app
from smartpump.server.broker_probe import publish_as
from smartpump.server.db.models import Event, Facility, Pump
from smartpump.server.db.models_identity import QuarantinedPump, SeqConflict
from smartpump.server.pki import DevicePki
from smartpump.server.settings import Settings
from smartpump.server.workers import IngestWorker
from smartpump.transport.heartbeat import Heartbeat, heartbeat_message
from smartpump.transport.messages import (
    Envelope,
    EventRecord,
    Kind,
    Topics,
    ack_message,
    ack_of,
    events_message,
)
from smartpump.transport.mqtt import MqttSettings, MqttTransport, TlsOptions
from tests.server.conftest import (  # noqa: F401  (fixtures)
    START,
    TestClient,
    _wipe,
    clock,
    database_url,
    engine,
    settings,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt

TLS_URL = os.environ.get("SMARTPUMP_TEST_MQTT_TLS_URL")
PKI_DIR = os.environ.get("SMARTPUMP_TEST_MQTT_TLS_PKI")
BROKER_LOG = os.environ.get("SMARTPUMP_TEST_MQTT_TLS_LOG")
IN_CI = os.environ.get("CI") == "true"
SERVER_IDENTITY = f"ci-{os.environ['PYTEST_XDIST_WORKER']}" if "PYTEST_XDIST_WORKER" in os.environ else "ci"
"""This test process's server identity (.ci/run issues ``ci`` and ``ci-gw0`` to ``ci-gw7``): the broker
takes the certificate's CN as the client id, so servers of parallel tests sharing one would disconnect
each other."""
NOT_AUTHORIZED = 135


@pytest.fixture(scope="module")
def pki() -> DevicePki:
    """The PKI the TLS broker trusts (tests enrol their own pumps in it)."""
    if not TLS_URL or not PKI_DIR:
        if IN_CI:
            pytest.fail("CI=true but SMARTPUMP_TEST_MQTT_TLS_URL / SMARTPUMP_TEST_MQTT_TLS_PKI are not set")
        pytest.skip(
            "no TLS broker: set SMARTPUMP_TEST_MQTT_TLS_URL and SMARTPUMP_TEST_MQTT_TLS_PKI (.ci/run does)"
        )
    server = Path(PKI_DIR) / "servers" / f"{SERVER_IDENTITY}.crt"
    if not server.exists():
        pytest.fail(
            f"no server identity {SERVER_IDENTITY!r} in {PKI_DIR}: issue it with `smartpump pki server`"
        )
    return DevicePki(Path(PKI_DIR), WallClock())


def _tls(pki: DevicePki, folder: str, name: str) -> TlsOptions:
    return TlsOptions(
        ca_certs=str(pki.ca_cert_path),
        certfile=str(pki.directory / folder / f"{name}.crt"),
        keyfile=str(pki.directory / folder / f"{name}.key"),
    )


@dataclass
class RawClient:
    """A bare MQTT 5 client (what an attacker holding some certificate, or none, would run)."""

    client: paho.Client
    acks: dict[int, int] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    granted: list[int] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish with QoS 1 and return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.acks, f"the PUBACK of {topic}")
        return self.acks[info.mid]

    def subscribe(self, *topics: str) -> list[int]:
        """Subscribe and return the granted reason codes."""
        self.subscribed.clear()
        self.client.subscribe([(t, 1) for t in topics])
        wait_until(self.subscribed.is_set, "the SUBACK")
        return self.granted

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _raw(url: str, tls: TlsOptions | None, client_id: str) -> RawClient:
    broker = MqttSettings.from_url(url)
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    raw = RawClient(client)

    def on_connect(c: paho.Client, u: Any, f: Any, code: ReasonCode, p: Properties | None) -> None:
        if not code.is_failure:
            raw.connected.set()

    def on_publish(c: paho.Client, u: Any, mid: int, code: ReasonCode, p: Properties | None) -> None:
        raw.acks[mid] = code.value

    def on_subscribe(c: paho.Client, u: Any, mid: int, codes: list[ReasonCode], p: Properties | None) -> None:
        raw.granted = [code.value for code in codes]
        raw.subscribed.set()

    def on_message(c: paho.Client, u: Any, message: paho.MQTTMessage) -> None:
        raw.received.append((message.topic, bytes(message.payload)))

    client.on_connect, client.on_publish = on_connect, on_publish
    client.on_subscribe, client.on_message = on_subscribe, on_message
    if tls is not None:
        client.tls_set_context(tls.context())
    client.connect(broker.host, broker.port)
    client.loop_start()
    wait_until(raw.connected.is_set, f"{client_id} to connect")
    return raw


def _attempt(tls: TlsOptions | None) -> str:
    """Try to connect: ``connected`` once the broker accepts, ``refused`` once it (or TLS) turns us away."""
    broker = MqttSettings.from_url(TLS_URL or "")
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"attempt-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    outcome: list[str] = []

    def on_connect(c: paho.Client, u: Any, f: Any, code: ReasonCode, p: Properties | None) -> None:
        outcome.append("refused" if code.is_failure else "connected")

    def on_disconnect(c: paho.Client, u: Any, f: Any, code: ReasonCode, p: Properties | None) -> None:
        outcome.append("refused")

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    if tls is not None:
        client.tls_set_context(tls.context())
    try:
        client.connect(broker.host, broker.port)
    except (ssl.SSLError, OSError):
        return "refused"
    client.loop_start()
    try:
        wait_until(lambda: bool(outcome), "the broker to accept or refuse the connection")
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0]


@dataclass
class PumpEnd:
    """A pump's own transport, the acks it received and how often its link went down."""

    transport: MqttTransport
    acks: list[int] = field(default_factory=list)
    drops: list[bool] = field(default_factory=list)

    def received(self, envelope: Envelope) -> None:
        """Keep the acks."""
        if envelope.kind is Kind.ACK:
            self.acks.append(ack_of(envelope))

    def link(self, up: bool) -> None:
        """Count the drops."""
        if not up:
            self.drops.append(up)

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()


class Site:
    """A server ingesting over the TLS broker with its own certificate, its device registry the PKI's."""

    def __init__(self, client: TestClient, pki: DevicePki, topics: Topics) -> None:
        self.client = client
        self.pki = pki
        self.topics = topics
        self.state = client.app.state.smartpump  # type: ignore[attr-defined]
        worker = self.state.background[0]
        assert isinstance(worker, IngestWorker) and isinstance(worker.transport, MqttTransport)
        self.worker = worker
        self.server: MqttTransport = worker.transport
        wait_until(lambda: self.server.wait_ready(0.05), "the server to connect over TLS")
        with self.state.sessions() as session:
            facility = Facility(code="north", name="north hospital", created_at=START)
            session.add(facility)
            session.commit()
            self.facility_id = facility.id
        self.opened: list[PumpEnd | RawClient] = []

    def pump_serial(self, *, register: bool = True, enrol: bool = True) -> str:
        """A fresh serial, enrolled in the PKI and registered in the fleet unless told otherwise."""
        serial = f"tls-{uuid.uuid4().hex[:10]}"
        if enrol:
            self.pki.enrol_pump(serial)
        if register:
            with self.state.sessions() as session:
                session.add(
                    Pump(
                        facility_id=self.facility_id,
                        serial=serial,
                        model="lvp",
                        firmware="1.0.0",
                        status="in_service",
                        created_at=START,
                    )
                )
                session.commit()
        return serial

    def pump(self, serial: str) -> PumpEnd:
        """The pump's own transport over TLS with its certificate, connected."""
        link = MqttSettings.from_url(TLS_URL or "", topics=self.topics, tls=_tls(self.pki, "pumps", serial))
        end = PumpEnd(MqttTransport.for_pump(serial, link))
        end.transport.start(end.received, end.link)
        wait_until(lambda: end.transport.wait_ready(0.05), f"pump {serial} to connect over TLS")
        self.opened.append(end)
        return end

    def raw(self, tls: TlsOptions | None, client_id: str | None = None) -> RawClient:
        """A bare client on the TLS broker."""
        raw = _raw(TLS_URL or "", tls, client_id or f"raw-{uuid.uuid4().hex[:8]}")
        self.opened.append(raw)
        return raw

    def stored(self, serial: str) -> list[int]:
        """Seqs stored for a pump."""
        with self.state.sessions() as session:
            query = select(Event.seq).join(Pump, Pump.id == Event.pump_id).where(Pump.serial == serial)
            return sorted(session.scalars(query))

    def battery(self, serial: str) -> int | None:
        """The battery the server shows for a pump."""
        with self.state.sessions() as session:
            battery: int | None = session.scalar(select(Pump.battery_percent).where(Pump.serial == serial))
            return battery

    def held(self) -> dict[str, str]:
        """Quarantined serials and their reasons."""
        with self.state.sessions() as session:
            return {q.serial: q.reason for q in session.scalars(select(QuarantinedPump))}

    def close(self) -> None:
        """Close every client this site opened."""
        for opened in self.opened:
            opened.close()


@pytest.fixture
def site(pki: DevicePki, settings: Settings, engine: Engine) -> Iterator[Site]:  # noqa: F811
    topics = Topics(f"smartpump-test/{uuid.uuid4().hex[:12]}/v1")
    server_dir = pki.directory / "servers"
    configured = settings.model_copy(
        update={
            "mqtt_url": TLS_URL,
            "mqtt_topic_prefix": topics.prefix,
            "mqtt_ca_file": pki.ca_cert_path,
            "mqtt_cert_file": server_dir / f"{SERVER_IDENTITY}.crt",
            "mqtt_key_file": server_dir / f"{SERVER_IDENTITY}.key",
            "device_registry": pki.registry_path,
        }
    )
    app = create_app(configured, clock=WallClock(), engine=engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            built = Site(client, pki, topics)
            yield built
            built.close()
    finally:
        _wipe(engine)


def _batch(serial: str, seqs: range, alarm: str = "occlusion") -> Envelope:
    now = WallClock().now()
    return events_message(
        serial,
        [
            EventRecord(
                v=1,
                pump=serial,
                seq=s,
                ts=now + timedelta(milliseconds=s),
                channel="A",
                type="alarm.raised",
                data={"alarm": alarm, "priority": "high"},
            )
            for s in seqs
        ],
    )


def _broker_logged(text: str) -> bool:
    return BROKER_LOG is None or text in Path(BROKER_LOG).read_text(encoding="utf-8", errors="replace")


def test_an_enrolled_pump_over_tls_is_stored_and_acked_on_its_own_topic(site: Site) -> None:
    serial = site.pump_serial()
    pump = site.pump(serial)
    assert pump.transport.send(_batch(serial, range(1, 4)))
    wait_until(lambda: pump.acks == [3], "the ack of the pump's batch")
    assert site.stored(serial) == [1, 2, 3]


def test_an_enrolled_pumps_heartbeat_passes_the_acl_and_is_applied(site: Site) -> None:
    """The generated ACL lets a pump publish its status heartbeat and the servers read it (it did not:
    presence and the fleet view's truth depend on it)."""
    serial = site.pump_serial()
    pump = site.pump(serial)
    beat = Heartbeat(
        pump=serial,
        seq=0,
        clock=WallClock().now(),
        interval_s=30,
        battery_percent=57,
        on_ac=False,
        library_version=None,
        library_sha256=None,
        configuration_version=1,
        care_area=None,
        alarms=(),
        channels=(),
    )
    assert pump.transport.send(heartbeat_message(beat))
    wait_until(lambda: site.battery(serial) == 57, "the server to apply the pump's heartbeat")
    assert pump.transport.refused_publishes == 0


def test_an_anonymous_client_is_refused_with_tls_and_without(site: Site) -> None:
    assert _attempt(TlsOptions(ca_certs=str(site.pki.ca_cert_path))) == "refused"
    assert _attempt(None) == "refused"
    wait_until(lambda: _broker_logged("peer did not return a certificate"), "the broker to log the refusal")


def test_a_certificate_of_another_ca_is_refused(site: Site, tmp_path: Path) -> None:
    rogue = DevicePki(tmp_path / "rogue", WallClock())
    rogue.init_ca("rogue")
    rogue.enrol_pump("rogue-1")
    tls = TlsOptions(
        ca_certs=str(site.pki.ca_cert_path),
        certfile=str(rogue.directory / "pumps" / "rogue-1.crt"),
        keyfile=str(rogue.directory / "pumps" / "rogue-1.key"),
    )
    assert _attempt(tls) == "refused"


def test_a_certificate_revoked_before_the_broker_started_is_refused_at_the_handshake(site: Site) -> None:
    if not (site.pki.directory / "pumps" / "ci-revoked.crt").exists():
        pytest.fail(".ci/run enrols and revokes ci-revoked before it starts the TLS broker")
    assert _attempt(_tls(site.pki, "pumps", "ci-revoked")) == "refused"


def test_a_pump_cannot_publish_events_acks_or_commands_under_another_pump(site: Site) -> None:
    victim = site.pump_serial()
    forger = site.pump_serial()
    pump = site.pump(victim)
    attacker = site.raw(_tls(site.pki, "pumps", forger))

    forged_next_seqs = _batch(victim, range(1, 11), "none").encode()
    assert attacker.publish(site.topics.events(victim), forged_next_seqs) == NOT_AUTHORIZED
    assert attacker.publish(site.topics.ack(victim), ack_message(victim, 40).encode()) == NOT_AUTHORIZED
    assert attacker.publish(site.topics.ack(forger), ack_message(forger, 40).encode()) == NOT_AUTHORIZED
    assert attacker.publish(site.topics.commands(victim), b"{}") == NOT_AUTHORIZED
    assert attacker.publish(site.topics.results(victim), b"{}") == NOT_AUTHORIZED
    assert attacker.publish(site.topics.status(victim), b"{}") == NOT_AUTHORIZED
    wait_until(lambda: _broker_logged(f"Denied PUBLISH from {forger}"), "the broker to log the denials")

    assert pump.transport.send(_batch(victim, range(1, 11)))
    wait_until(lambda: pump.acks == [10], "the victim's own batch to be acked")
    assert site.stored(victim) == list(range(1, 11)) and site.stored(forger) == []
    with site.state.sessions() as session:
        assert session.scalars(select(SeqConflict)).all() == []


def test_a_pump_posing_as_another_on_its_own_topic_is_refused_by_the_server(site: Site) -> None:
    victim = site.pump_serial()
    forger = site.pump_serial()
    attacker = site.raw(_tls(site.pki, "pumps", forger))
    before = site.server.rejected
    assert (
        attacker.publish(site.topics.events(forger), _batch(victim, range(1, 4)).encode()) != NOT_AUTHORIZED
    )
    wait_until(
        lambda: site.server.rejected == before + 1, "the server to refuse the envelope of another pump"
    )
    assert site.stored(victim) == [] and site.stored(forger) == []


def test_a_wildcard_subscription_reads_nothing_of_other_pumps(site: Site) -> None:
    victim = site.pump_serial()
    snoop_serial = site.pump_serial()
    site.pump(victim)
    snoop = site.raw(_tls(site.pki, "pumps", snoop_serial))
    snoop.subscribe(site.topics.all_pumps("commands"), site.topics.all_pumps("ack"), "#")
    assert snoop.subscribe(site.topics.ack(snoop_serial)) == [1]

    assert site.server.send(ack_message(victim, 0))
    assert site.server.send(ack_message(snoop_serial, 0))  # a barrier: delivered after the victim's
    wait_until(lambda: len(snoop.received) >= 1, "the snoop's own ack")
    assert {topic for topic, _ in snoop.received} == {site.topics.ack(snoop_serial)}


@pytest.mark.parametrize("stolen", ["transport client id", "serial"])
def test_a_client_id_takeover_leaves_the_pump_connected(site: Site, stolen: str) -> None:
    victim = site.pump_serial()
    thief = site.pump_serial()
    pump = site.pump(victim)
    client_id = pump.transport.client_id if stolen == "transport client id" else victim
    site.raw(_tls(site.pki, "pumps", thief), client_id=client_id)

    assert pump.transport.send(_batch(victim, range(1, 3)))
    wait_until(lambda: pump.acks == [2], "the victim, still connected, to be acked")
    assert pump.transport.connected and pump.drops == []
    wait_until(lambda: _broker_logged(f"as {thief} "), "the broker to log the thief under its own identity")


def test_a_revoked_certificate_is_refused_by_the_server_before_the_broker_reloads(site: Site) -> None:
    serial = site.pump_serial()
    pump = site.pump(serial)
    assert pump.transport.send(_batch(serial, range(1, 3)))
    wait_until(lambda: pump.acks == [2], "the first batch to be acked")
    site.pki.revoke(serial, reason="lost")

    assert pump.transport.send(_batch(serial, range(3, 6)))
    wait_until(
        lambda: site.held().get(serial) == "device.revoked", "the server to quarantine the revoked pump"
    )
    assert site.stored(serial) == [1, 2] and pump.acks == [2]
    assert site.worker.gate.refused["device.revoked"] >= 1


def test_an_enrolled_pump_unknown_to_the_fleet_is_quarantined_not_registered(site: Site) -> None:
    serial = site.pump_serial(register=False)
    pump = site.pump(serial)
    assert pump.transport.send(_batch(serial, range(1, 4)))
    wait_until(lambda: site.held().get(serial) == "pump.unknown", "the unknown pump to be quarantined")
    assert site.stored(serial) == [] and pump.acks == []
    with site.state.sessions() as session:
        assert session.scalars(select(Pump).where(Pump.serial == serial)).first() is None


def test_a_pump_given_another_pumps_certificate_has_its_publishes_refused_and_logged(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    serial = site.pump_serial()
    other = site.pump_serial()
    link = MqttSettings.from_url(TLS_URL or "", topics=site.topics, tls=_tls(site.pki, "pumps", other))
    end = PumpEnd(MqttTransport.for_pump(serial, link))
    site.opened.append(end)
    end.transport.start(end.received, end.link)
    wait_until(lambda: end.transport.refused_publishes >= 1, "the broker to refuse its online status")
    assert end.transport.send(_batch(serial, range(1, 3)))
    wait_until(lambda: end.transport.refused_publishes >= 2, "the broker to refuse its batch")
    assert "mqtt.publish_refused" in caplog.text
    assert site.stored(serial) == [] and end.acks == []


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # paho drops the failed socket
def test_a_pump_refuses_a_broker_its_ca_did_not_sign(site: Site, tmp_path: Path) -> None:
    serial = site.pump_serial()
    rogue = DevicePki(tmp_path / "rogue", WallClock())
    rogue.init_ca("rogue")
    tls = _tls(site.pki, "pumps", serial)
    assert _attempt(
        TlsOptions(ca_certs=str(rogue.ca_cert_path), certfile=tls.certfile, keyfile=tls.keyfile)
    ) == ("refused")
    assert _attempt(tls) == "connected"


def test_the_probe_a_biomed_runs_says_accepted_for_the_pump_and_refused_for_another(site: Site) -> None:
    first = site.pump_serial()
    second = site.pump_serial()
    own = publish_as(site.pki.directory, first, first, TLS_URL or "", site.topics.prefix, client_id="probe-a")
    other = publish_as(
        site.pki.directory, second, first, TLS_URL or "", site.topics.prefix, client_id="probe-b"
    )
    assert (own.accepted, own.verdict) == (True, "accepted")
    assert (other.accepted, other.verdict) == (False, "refused") and "Not authorized" in other.detail
