"""Fault tests of the connected fleet against the real broker (SMARTPUMP_TEST_MQTT_URL) and the server's
database (SQLite, and PostgreSQL through the server conftest: under CI=true a missing one fails).

Each test ends with the server's store equal to the union of the pumps' logs: nothing lost, nothing twice
(REL-ING-01/03/04, REL-OFF-02, SEC-CMD-01/02, and a broker restart).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from smartpump.clock import ManualClock, WallClock
from smartpump.library import signing
from smartpump.library.keys import KeyPurpose
from smartpump.pump.events import EventLog, EventType
from smartpump.server.settings import Settings
from smartpump.transport.commands import sign_command
from smartpump.transport.messages import Topics, command_message
from smartpump.transport.mqtt import MqttSettings, MqttTransport
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import CommandPolicy, CommandRefusal, Uplink
from tests.integration.mqtt_broker import BROKER_URL, reachable_broker
from tests.server.conftest import _wipe, clock, database_url, engine, settings  # noqa: F401  (fixtures)
from tests.server.connected_helpers import Harness, wire
from tests.unit.transport.helpers import vitals_every_minute
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt

WAIT_S = 8.0


class Rig:
    """A server (ingest worker over MQTT) and pumps (outbox + uplink over MQTT) under one topic prefix."""

    def __init__(self, settings: Settings, engine: Engine, tmp_path: Path, broker_url: str) -> None:  # noqa: F811
        reachable_broker(broker_url)
        self.tag = uuid.uuid4().hex[:12]
        self.prefix = f"smartpump-test/{self.tag}/v1"
        self.broker_url = broker_url
        self.settings = settings.model_copy(update={"mqtt_url": broker_url, "mqtt_topic_prefix": self.prefix})
        self.engine = engine
        self.tmp_path = tmp_path
        self.clock = ManualClock()
        self.server: Harness | None = None
        self.pumps: dict[str, tuple[EventLog, Uplink, MqttTransport]] = {}
        self.start_server(first=True)

    def mqtt(self) -> MqttSettings:
        return MqttSettings.from_url(
            self.broker_url, topics=Topics(self.prefix), session_expiry_s=120, reconnect_max_s=2
        )

    def start_server(self, *, first: bool = False) -> Harness:
        server = Harness(self.settings, self.engine, WallClock(), register_facility=first)
        assert isinstance(server.worker.transport, MqttTransport)
        assert server.worker.transport.wait_ready(WAIT_S), "server did not connect to the broker"
        self.server = server
        return server

    def stop_server(self) -> None:
        assert self.server is not None
        self.server.close()
        self.server = None

    def add_pump(self, serial: str, *, policy: CommandPolicy | None = None) -> EventLog:
        assert self.server is not None
        if serial not in self.pumps:
            self.server.register(serial)
        log = self.pumps[serial][0] if serial in self.pumps else EventLog(serial)
        # The client id names the rig too: a pump of another test process with the same serial would take
        # over this one's broker session (and its subscriptions) under the default id.
        transport = MqttTransport.for_pump(serial, self.mqtt(), client_id=f"pump-{self.tag}-{serial}")
        uplink = Uplink(
            outbox=Outbox(self.tmp_path / f"{serial}.sqlite", pump=serial),
            transport=transport,
            clock=self.clock,
            batch_size=100,
            ack_timeout_s=1.0,
            commands=policy,
        )
        uplink.start()
        assert transport.wait_ready(WAIT_S), f"pump {serial} did not connect"
        self.pumps[serial] = (log, uplink, transport)
        return log

    def produce(self, serial: str, minutes: int) -> None:
        log, uplink, _ = self.pumps[serial]
        vitals_every_minute(log, self.clock, minutes, alarm_every=45)
        uplink.take(log.since(0))

    def settle(self, *, timeout_s: float = WAIT_S, tick: Callable[[], Any] | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if tick is not None:
                tick()
            self.clock.advance(0.5)
            for _, uplink, _ in self.pumps.values():
                uplink.step()
            if self.server is not None:
                self.server.worker.run_once()
            if self.server is not None and all(u.backlog == 0 for _, u, _ in self.pumps.values()):
                return
            time.sleep(0.02)
        pytest.fail(f"not settled: backlog {[u.backlog for _, u, _ in self.pumps.values()]}")

    def expected(self) -> dict[tuple[str, int], dict[str, Any]]:
        result: dict[tuple[str, int], dict[str, Any]] = {}
        for log, _, _ in self.pumps.values():
            result.update(wire(log.since(0)))
        return result

    def close(self) -> None:
        for _, _, transport in self.pumps.values():
            transport.close()
        if self.server is not None:
            self.server.close()


@pytest.fixture
def rig(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Rig]:  # noqa: F811
    """Server and pumps on the real broker, under a unique topic prefix."""
    built = Rig(settings, engine, tmp_path, BROKER_URL)
    yield built
    built.close()
    _wipe(engine)


def test_acks_lost_after_commit_cause_resends_that_are_stored_once(rig: Rig) -> None:
    assert rig.server is not None
    worker = rig.server.worker
    real_send = worker.transport.send
    dropped = {"acks": 0}

    def lose_first_acks(envelope: Any) -> bool:
        if envelope.kind.value == "ack" and dropped["acks"] < 6:
            dropped["acks"] += 1
            return True
        return bool(real_send(envelope))

    worker.transport.send = lose_first_acks  # type: ignore[method-assign]
    for serial in ("f-1", "f-2", "f-3"):
        rig.add_pump(serial)
        rig.produce(serial, 250)
    rig.settle()
    assert dropped["acks"] == 6
    assert rig.server.stored() == rig.expected()
    assert rig.server.worker.ingestor.stats.duplicates > 0


def test_commits_failing_before_the_commit_lose_nothing(rig: Rig) -> None:
    assert rig.server is not None
    ingestor = rig.server.worker.ingestor
    real_commit = ingestor.commit
    failures = {"n": 0}

    def crash_first(batches: Any) -> Any:
        if failures["n"] < 3:
            failures["n"] += 1
            raise ConnectionError("database went away")
        return real_commit(batches)

    ingestor.commit = crash_first  # type: ignore[method-assign]
    rig.add_pump("f-1")
    rig.produce("f-1", 300)
    rig.settle()
    assert failures["n"] == 3
    assert rig.server.stored() == rig.expected()


def test_a_server_replaced_mid_stream_and_a_pump_offline_for_a_day_lose_nothing(rig: Rig) -> None:
    rig.add_pump("f-1")
    rig.add_pump("f-2")
    rig.produce("f-1", 60)
    rig.settle()
    rig.stop_server()
    rig.produce("f-1", 60)
    _, _, transport = rig.pumps["f-2"]
    transport.close()
    rig.produce("f-2", 24 * 60)
    rig.start_server()
    rig.add_pump("f-2")
    rig.settle(timeout_s=15)
    assert rig.server is not None
    assert rig.server.stored() == rig.expected()
    assert len([k for k in rig.server.stored() if k[0] == "f-2"]) > 24 * 60


def test_forged_and_replayed_commands_are_refused_and_the_refusals_reach_the_store(rig: Rig) -> None:
    assert rig.server is not None
    keys = rig.server.state.keys.signer(KeyPurpose.COMMAND)
    log = EventLog("f-1")
    rig.pumps["f-1"] = (log, *rig.pumps.get("f-1", (None, None, None))[1:])
    accepted: list[str] = []

    def refused(refusal: CommandRefusal) -> None:
        log.append(
            EventType.COMMAND_REFUSED,
            rig.clock.now(),
            None,
            {
                "command": refusal.command,
                "nonce": refusal.nonce,
                "code": refusal.code,
                "reason": refusal.reason,
            },
        )

    policy = CommandPolicy(
        trust=rig.server.state.keys.trust_store,
        on_command=lambda c: accepted.append(c.nonce),
        on_refused=refused,
    )
    del rig.pumps["f-1"]
    rig.add_pump("f-1", policy=policy)
    rig.pumps["f-1"] = (log, *rig.pumps["f-1"][1:])
    forger_private, _ = signing.generate_keypair()
    now = rig.clock.now()

    def command(nonce: str, private_pem: bytes) -> dict[str, Any]:
        return sign_command(
            pump_id="f-1",
            command="program.offer",
            args={},
            issued_at=now,
            expires_at=now.replace(year=now.year + 1),
            nonce=nonce,
            counter=5,
            private_key_pem=private_pem,
            key_id=keys.key_id,
        ).to_dict()

    send = rig.server.worker.transport.send
    send(command_message("f-1", command("forged", forger_private)))
    send(command_message("f-1", command("genuine", keys.private_pem)))

    def until_answered() -> None:
        rig.pumps["f-1"][1].take(log.since(0))

    def refusals() -> int:
        return sum(1 for e in log.since(0) if e.type is EventType.COMMAND_REFUSED)

    wait_until(lambda: bool(accepted), "the genuine command to be accepted")
    send(command_message("f-1", command("genuine", keys.private_pem)))
    wait_until(lambda: refusals() == 2, "the replayed command to be refused")
    rig.settle(tick=until_answered)
    assert accepted == ["genuine"]
    codes = [e["data"]["code"] for e in rig.server.stored().values() if e["type"] == "command.refused"]
    assert codes == ["command.forged", "command.replayed"]
    assert rig.server.stored() == rig.expected()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_broker_restart_loses_nothing(settings: Settings, engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("the broker-restart test needs the mosquitto binary on PATH")
    port = _free_port()

    def broker() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [binary, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process
            except OSError:
                time.sleep(0.05)
        process.kill()
        pytest.fail("could not start a private mosquitto")

    process = broker()
    rig = Rig(settings, engine, tmp_path, f"mqtt://127.0.0.1:{port}")
    try:
        rig.add_pump("f-1")
        rig.produce("f-1", 100)
        rig.settle()
        process.kill()
        process.wait()
        rig.produce("f-1", 100)
        process = broker()
        rig.settle(timeout_s=15)
        assert rig.server is not None
        assert rig.server.stored() == rig.expected()
    finally:
        rig.close()
        process.kill()
        process.wait()
        _wipe(engine)
