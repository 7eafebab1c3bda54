"""Issue 8 end to end: an order over MLLP reaches a simulated pump as an auto-programmed offer, the nurse
confirms and starts it there, and the IPEC start event (with the original order id) arrives over MLLP at a
test EHR; duplicates, a drug missing from the library and a 6-hour EHR outage are covered on the way.

A real app (ingest worker driven by hand, as in the connected tests) with an in-process simulated fleet;
the MLLP listener and the test EHR run on free localhost ports in an asyncio loop of their own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select

import tests.server.conftest as server_fixtures
from smartpump.clock import ManualClock
from smartpump.demo.fleet import SimFleet
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of, build_ack
from smartpump.interop.hl7v2.listener import Hl7Listener, new_control_id
from smartpump.interop.hl7v2.message import Message, decode, parse
from smartpump.interop.hl7v2.mllp import MllpClient
from smartpump.interop.hl7v2.outbox import Backoff
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.ehr_worker import EhrOutboundService, Hl7ListenerService
from smartpump.server.keys import load
from smartpump.server.settings import Settings
from smartpump.server.workers import InProcessLink
from tests.server.conftest import _wipe
from tests.server.connected_helpers import Harness
from tests.server.ehr_support import dopamine_order, ehr_library, err_code
from tests.server.library_rows import store_released_library

T = TypeVar("T")
database_url = server_fixtures.database_url
engine = server_fixtures.engine
settings = server_fixtures.settings


class Loop:
    """An asyncio loop in a thread, for the MLLP servers while the test drives pumps synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class FakeEhr:
    """An EHR's MLLP endpoint: acks AA and records every message it received."""

    def __init__(self, loop: Loop, ehr_clock: ManualClock) -> None:
        self.loop = loop
        self.clock = ehr_clock
        self.received: list[Message] = []
        self.port = 0
        self._listener: Hl7Listener | None = None

    async def _answer(self, message: Message) -> Message:
        self.received.append(message)
        return build_ack(message, AckCode.AA, control_id=new_control_id(), timestamp=self.clock.now())

    def up(self) -> None:
        self._listener = Hl7Listener(self._answer, self.clock, port=self.port)
        _, self.port = self.loop.run(self._listener.start())

    def down(self) -> None:
        if self._listener is not None:
            self.loop.run(self._listener.close())
            self._listener = None


@pytest.fixture
def site(
    settings: Settings, engine: Engine, tmp_path: Path
) -> Iterator[tuple[Harness, SimFleet, ManualClock]]:
    """One simulated ICU pump linked to an app whose clock is manual (starting at the wall time)."""
    keys = load(settings.signing_keys_dir, create_missing=True, now=datetime.now(UTC))
    link = InProcessLink()
    library = ehr_library()
    fleet = SimFleet(
        library=library,
        pumps=1,
        seed=8,
        speed=1.0,
        trust=keys.trust_store(),
        transport_for=link.pump_transport,
        link=link,
        outbox_dir=tmp_path / "outbox",
    )
    server_clock = ManualClock(datetime.now(UTC))
    harness = Harness(settings, engine, server_clock, sim_fleet=fleet)
    [serial] = fleet.serials()
    harness.register(serial, care_area="icu", model=fleet.pump(serial).caps.model.value, library=1)
    with harness.session() as session:
        store_released_library(session, harness.facility_id, library, server_clock.now())
        session.commit()
    harness.pump_messages(step=fleet.advance)
    yield harness, fleet, server_clock
    harness.close()
    fleet.close()
    _wipe(engine)


def _send(port: int, message: Message) -> Message:
    with MllpClient("127.0.0.1", port, timeout_s=20) as client:
        return parse(decode(client.send(message.to_er7().encode("utf-8"))))


def _order_of(message: Message) -> str:
    obr = message.first("OBR")
    return obr.value(2, 1) if obr is not None else ""


def _offers(harness: Harness) -> int:
    with harness.session() as session:
        return len(session.scalars(select(PumpCommand).where(PumpCommand.command == "program.offer")).all())


def test_order_over_mllp_to_confirmed_start_documented_over_mllp(
    site: tuple[Harness, SimFleet, ManualClock],
) -> None:
    harness, fleet, server_clock = site
    [serial] = fleet.serials()
    with fleet.lock:
        pump = fleet.pump(serial)
        patient = pump.patient_id
        channel = next(
            cid for cid, c in pump.channels.items() if c.state.value == "idle" and c.pending is None
        )
    assert patient is not None
    loop = Loop()
    listener = Hl7ListenerService(host="127.0.0.1", port=0)
    ehr = FakeEhr(loop, server_clock)
    sender: EhrOutboundService | None = None
    try:
        loop.run(listener.start(harness.state))
        ehr.up()
        order = dopamine_order(serial=serial, patient=patient, channel=channel, order_id="ORD-8")
        reply = _send(listener.port, order)
        assert ack_code_of(reply) is AckCode.CA, reply.to_er7()

        harness.pump_messages(step=fleet.advance)
        with fleet.lock:
            pending = fleet.pump(serial).channel(channel).pending
            assert pending is not None and pending.auto_programmed
            assert pending.program.entry_id == "icu-dopamine"

        assert _send(listener.port, order).to_er7() == reply.to_er7()
        assert _offers(harness) == 1

        missing = dopamine_order(
            serial=serial, patient=patient, channel=channel, control_id="9", drug="9999^Heparin"
        )
        refused = _send(listener.port, missing)
        assert (refused.message_type[:2], ack_code_of(refused), err_code(refused)) == (
            ("RRG", "O16"),
            AckCode.AR,
            "9010",
        )

        fleet.act(serial, lambda p: p.confirm(channel))
        fleet.act(serial, lambda p: p.start(channel))
        harness.pump_messages(step=fleet.advance)
        sender = EhrOutboundService(host="127.0.0.1", port=ehr.port, backoff=Backoff(max_s=300))
        sender.attach(harness.state)
        result = sender.run_once()
        assert result.drained.pending == 0
        [start] = [
            m for m in ehr.received if m.message_type[:2] == ("ORU", "R42") and _order_of(m) == "ORD-8"
        ]
        assert "MDC_EVT_PUMP_DELIV_START" in start.to_er7()
        assert start.first("PID").value(3, 1) == patient  # type: ignore[union-attr]

        text = dopamine_order(
            serial=serial, patient=patient, channel=channel, order_id="ORD-8", control_id="10", dose="15"
        ).to_er7()
        titration = parse(
            text.replace("ORC|RE|", "ORC|XO|").replace(
                "|1234^Dopamine|250||263762^MDC_DIM_MILLI_L^MDC^mL^mL^UCUM |", "|1234^Dopamine||||"
            )
        )
        assert ack_code_of(_send(listener.port, titration)) is AckCode.CA
        harness.pump_messages(step=fleet.advance)
        with fleet.lock:
            offered = fleet.pump(serial).channel(channel).pending
            assert offered is not None and offered.is_titration and offered.auto_programmed
        fleet.act(serial, lambda p: p.confirm(channel))
        harness.pump_messages(step=fleet.advance)
        seen = len(ehr.received)
        assert sender.run_once().drained.pending == 0
        changed = [m for m in ehr.received[seen:] if m.message_type[:2] == ("ORU", "R42")]
        assert [_order_of(m) for m in changed] == ["ORD-8", "ORD-8"]
        assert "MDC_EVT_PUMP_DELIV_STOP" in changed[0].to_er7()
        assert "MDC_EVT_PUMP_DELIV_START" in changed[1].to_er7()

        ehr.down()
        fleet.act(serial, lambda p: p.stop(channel))
        harness.pump_messages(step=fleet.advance)
        for _ in range(6 * 12):
            assert sender.run_once().drained.delivered == 0
            server_clock.advance(300)
        with harness.session() as session:
            from smartpump.server.services.ehr import queue_state

            waiting = [r.control_id for r in queue_state(session, sender.destination) if r.state == "pending"]
        assert waiting
        before = len(ehr.received)
        ehr.up()
        server_clock.advance(300)
        assert sender.run_once().drained.pending == 0
        delivered = [m.control_id for m in ehr.received[before:]]
        assert delivered[: len(waiting)] == waiting
        assert len(set(delivered)) == len(delivered)
        stops = [m for m in ehr.received[before:] if "MDC_EVT_PUMP_DELIV_STOP" in m.to_er7()]
        assert [_order_of(m) for m in stops] == ["ORD-8"]
        sender.run_once()
        assert len(ehr.received) == before + len(delivered)
    finally:
        if sender is not None:
            loop.run(sender.stop())
        loop.run(listener.stop())
        ehr.down()
        loop.close()
