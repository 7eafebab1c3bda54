"""The truth test (issue 14): the simulated hospital fleet, in every care area of the demo library, with
its faults (occlusions, air, door, power loss and battery, completions, paused channels), wired to the
server; at each checkpoint every pump's view on the server equals the pump's own ``PumpStatus``.

Two comparisons per pump and checkpoint: the alarms folded from the stored events alone (no heartbeat)
equal the pump's board, so the event stream is complete; then, after the pumps' heartbeat, every field of
``tests.server.fleet_truth`` (alarms and priorities, channel state, drug, rate, volume and time left,
battery, library hash and version, presence) agrees. For 24 virtual hours in process and over the real
Mosquitto (``SMARTPUMP_TEST_MQTT_URL``), and for 3 in process.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from smartpump.demo.fleet import SimFleet
from smartpump.library.formats import json_format
from smartpump.pump import Pump, PumpStatus
from smartpump.server import keys
from smartpump.server.db.models import Event
from smartpump.server.db.models import Pump as PumpRow
from smartpump.server.db.models_fleet_view import PumpView
from smartpump.server.services.fleet_view import ALARM_TYPES, BOARD_RESET_TYPES
from smartpump.server.settings import Settings
from smartpump.server.workers import InProcessLink
from smartpump.transport.messages import Topics
from smartpump.transport.mqtt import MqttSettings, MqttTransport
from tests.server.conftest import _wipe, database_url, engine, settings  # noqa: F401  (fixtures)
from tests.server.connected_helpers import Harness
from tests.server.fleet_truth import Divergence, divergences

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-library.json"
HOUR_S = 3600
STEP_S = 120
WAIT_S = 20.0


@dataclass(slots=True)
class FakeWall:
    """The wall clock the fleet paces itself by, moved by the test."""

    now_s: float = 1000.0

    def __call__(self) -> float:
        return self.now_s


@dataclass(slots=True)
class Tally:
    """What the run compared: checkpoints, pump comparisons, alarms seen, divergences."""

    checkpoints: int = 0
    compared: int = 0
    alarms_seen: int = 0
    escalated_or_superseded: int = 0
    divergences: list[Divergence] = field(default_factory=list)


def _folded_alarms(harness: Harness, serial: str) -> list[tuple[str, str, str]]:
    """The board a server holds from the stored alarm events alone."""
    board: dict[tuple[str, str], str] = {}
    with harness.session() as session:
        pump_id = session.scalars(select(PumpRow.id).where(PumpRow.serial == serial)).one()
        rows = session.scalars(
            select(Event).where(Event.pump_id == pump_id, Event.type.in_(ALARM_TYPES)).order_by(Event.seq)
        )
        for row in rows:
            if row.type in BOARD_RESET_TYPES:
                board.clear()
                continue
            data = json.loads(row.data)
            key = (str(data["alarm"]), row.channel or "")
            if row.type == "alarm.cleared":
                board.pop(key, None)
            else:
                board[key] = str(data["priority"] if row.type == "alarm.raised" else data["to_priority"])
    return sorted((alarm, channel, priority) for (alarm, channel), priority in board.items())


def _status(fleet: SimFleet, serial: str) -> PumpStatus:
    with fleet.lock:
        return fleet.fleet.act(serial, Pump.status)


def _wait_for_heartbeats(harness: Harness, fleet: SimFleet) -> None:
    """Move messages until the server has applied every pump's latest heartbeat (its view holds the pump
    clock of the pump's status now): heartbeats are not kept in the outbox, so ``settle`` cannot see them
    in flight over a broker."""
    expected = {serial: _naive(_status(fleet, serial).clock) for serial in fleet.serials()}
    deadline = time.monotonic() + WAIT_S
    while True:
        with harness.session() as session:
            shown = dict(
                session.execute(
                    select(PumpRow.serial, PumpView.pump_clock).join(PumpView, PumpView.pump_id == PumpRow.id)
                ).all()
            )
        if all(_naive(shown.get(serial)) == clock for serial, clock in expected.items()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not apply every pump's heartbeat within {WAIT_S} s")
        harness.worker.run_once()
        time.sleep(0.02)


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=None)


def _run(
    harness: Harness,
    fleet: SimFleet,
    wall: FakeWall,
    *,
    hours: int,
    checkpoint_every_h: int,
    settle: Callable[[], None],
) -> Tally:
    tally = Tally()
    for step in range(1, hours * HOUR_S // STEP_S + 1):
        wall.now_s += STEP_S
        settle()
        if step * STEP_S % (checkpoint_every_h * HOUR_S):
            continue
        fleet.advance()
        settle()
        tally.checkpoints += 1
        for serial in fleet.serials():
            status = _status(fleet, serial)
            own = sorted((a.alarm, a.channel or "", a.priority) for a in status.alarms)
            folded = _folded_alarms(harness, serial)
            if folded != own:
                tally.divergences.append(Divergence(serial, "alarms (events alone)", folded, own))
        fleet.heartbeat_now()
        settle()
        _wait_for_heartbeats(harness, fleet)
        with harness.session() as session:
            for serial in fleet.serials():
                status = _status(fleet, serial)
                tally.compared += 1
                tally.alarms_seen += len(status.alarms)
                tally.divergences.extend(divergences(session, status))
    with harness.session() as session:
        tally.escalated_or_superseded = len(
            session.scalars(
                select(Event.id).where(Event.type.in_(("alarm.escalated", "alarm.cleared")))
            ).all()
        )
    return tally


def _fleet(tmp_path: Path, settings: Settings, wall: FakeWall, **transport: object) -> SimFleet:  # noqa: F811
    library = json_format.read(DEMO)
    keyring = keys.load(settings.signing_keys_dir, create_missing=True, now=datetime.now(UTC))
    pumps = 2 * len(library.care_areas)
    return SimFleet(
        library=library,
        pumps=pumps,
        seed=14,
        speed=1.0,
        trust=keyring.trust_store(),
        outbox_dir=tmp_path / "outbox",
        heartbeat_interval_s=300,
        monotonic=wall,
        **transport,  # type: ignore[arg-type]
    )


def _register(harness: Harness, fleet: SimFleet) -> None:
    for serial in fleet.serials():
        pump = fleet.pump(serial)
        assert pump.care_area is not None
        harness.register(serial, care_area=pump.care_area.id, model=pump.caps.model.value)


def _assert_truth(tally: Tally, fleet: SimFleet, hours: int, every_h: int) -> None:
    assert tally.divergences == [], tally.divergences[:10]
    assert tally.checkpoints == hours // every_h
    assert tally.compared == tally.checkpoints * len(fleet.serials())
    assert tally.alarms_seen > 0, "the run must hold alarms at some checkpoint to compare"
    assert tally.escalated_or_superseded > 0


@pytest.fixture
def in_process(
    settings: Settings,  # noqa: F811
    engine: Engine,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[Harness, SimFleet, FakeWall]]:
    wall = FakeWall()
    link = InProcessLink()
    fleet = _fleet(tmp_path, settings, wall, transport_for=link.pump_transport, link=link)
    harness = Harness(settings, engine, fleet.env.clock, sim_fleet=fleet)
    _register(harness, fleet)
    try:
        yield harness, fleet, wall
    finally:
        harness.close()
        _wipe(engine)


@pytest.mark.slow
def test_the_server_shows_every_pump_as_it_is_over_a_simulated_day_in_process(
    in_process: tuple[Harness, SimFleet, FakeWall],
) -> None:
    harness, fleet, wall = in_process
    areas = {fleet.pump(s).care_area.id for s in fleet.serials()}  # type: ignore[union-attr]
    assert areas == {a.id for a in fleet.library.care_areas}
    tally = _run(
        harness,
        fleet,
        wall,
        hours=24,
        checkpoint_every_h=2,
        settle=lambda: harness.pump_messages(step=fleet.advance),
    )
    _assert_truth(tally, fleet, 24, 2)


@pytest.mark.slow
def test_the_server_shows_every_pump_as_it_is_over_three_hours_in_process(
    in_process: tuple[Harness, SimFleet, FakeWall],
) -> None:
    harness, fleet, wall = in_process
    tally = _run(
        harness,
        fleet,
        wall,
        hours=3,
        checkpoint_every_h=1,
        settle=lambda: harness.pump_messages(step=fleet.advance),
    )
    _assert_truth(tally, fleet, 3, 1)


@pytest.mark.mqtt
@pytest.mark.slow
def test_the_server_shows_every_pump_as_it_is_over_the_real_broker(
    settings: Settings,  # noqa: F811
    engine: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = os.environ.get("SMARTPUMP_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
    tag = uuid.uuid4().hex[:12]
    prefix = f"smartpump-test/{tag}/v1"
    mqtt = MqttSettings.from_url(url, topics=Topics(prefix), session_expiry_s=120, reconnect_max_s=2)
    wall = FakeWall()
    transports: dict[str, MqttTransport] = {}

    def transport_for(serial: str) -> MqttTransport:
        # A client id of this run's own: the other backend's run has pumps with the same serials, and one
        # client id would take over the other's broker session (its subscriptions too).
        client_id = f"pump-{tag}-{serial}"
        return transports.setdefault(serial, MqttTransport.for_pump(serial, mqtt, client_id=client_id))

    fleet = _fleet(tmp_path, settings, wall, transport_for=transport_for)
    broker_settings = settings.model_copy(update={"mqtt_url": url, "mqtt_topic_prefix": prefix})
    harness = Harness(broker_settings, engine, fleet.env.clock)
    assert isinstance(harness.worker.transport, MqttTransport)
    assert harness.worker.transport.wait_ready(WAIT_S), "server did not connect to the broker"
    _register(harness, fleet)

    def settle() -> None:
        """Advance and move messages until every outbox is acknowledged and the server is idle."""
        deadline = time.monotonic() + WAIT_S
        fleet.advance()
        while time.monotonic() < deadline:
            processed = harness.worker.run_once()
            fleet.advance()
            if fleet.backlog() == 0 and processed == 0 and harness.worker.run_once() == 0:
                return
            time.sleep(0.02)
        pytest.fail(f"the fleet did not settle within {WAIT_S} s (backlog {fleet.backlog()})")

    try:
        for serial in fleet.serials():
            fleet.uplink(serial)
            assert transports[serial].wait_ready(WAIT_S), f"pump {serial} did not connect to the broker"
        tally = _run(harness, fleet, wall, hours=24, checkpoint_every_h=2, settle=settle)
        _assert_truth(tally, fleet, 24, 2)
    finally:
        fleet.close()
        harness.close()
        _wipe(engine)
