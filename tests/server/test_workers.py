"""The ingest worker's thread wakes on ``stop`` and ``poke`` instead of waiting out its poll."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Final

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.server.db.models import Facility, Pump
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services import commands
from smartpump.server.state import ServerState
from smartpump.server.workers import IngestWorker, InProcessLink, LockedTransport
from smartpump.transport.messages import Envelope
from tests.waiting import wait_until

# A poll far longer than any test: only a wake-up can move the thread within the test's time.
HOUR_S = 3600.0


@pytest.fixture
def worker(app: Any) -> Iterator[IngestWorker]:
    """A started ingest worker that polls once an hour, in place of the app's own."""
    state: ServerState = app.state.smartpump
    link = InProcessLink()
    started = IngestWorker(link.server_transport(), link=link, tick_s=HOUR_S)
    state.background[:] = [started]
    asyncio.run(started.start(state))
    yield started
    asyncio.run(started.stop())


def test_stop_ends_the_thread_without_waiting_for_the_poll(worker: IngestWorker) -> None:
    assert worker.running
    asyncio.run(worker.stop())
    assert not worker.running


OFFER: Final[dict[str, object]] = {
    "format": "smartpump.program-offer/1",
    "order_id": "o-1",
    "patient_id": "p-1",
    "channel": "A",
    "entry_id": "icu-dopamine",
    "kind": "new",
    "program_kind": "continuous",
    "route": "IV",
    "rate_ml_per_h": "5",
}


def _pump(state: ServerState) -> None:
    now = state.clock.now()
    with unit_of_work(state.sessions) as session:
        facility = Facility(code="north", name="north hospital", created_at=now)
        session.add(facility)
        session.flush()
        session.add(
            Pump(
                facility_id=facility.id,
                serial="SP-1",
                model="lvp",
                firmware="1.0.0",
                care_area="icu",
                status="in_service",
                created_at=now,
            )
        )


def _issue(session: Session, state: ServerState) -> str:
    """Queue the offer to SP-1; its nonce."""
    return commands.issue_command(
        session, state, pump_serial="SP-1", command="offer_program", args=OFFER, actor="nurse"
    ).nonce


def _statuses(state: ServerState) -> dict[str, str]:
    with state.sessions() as session:
        return dict(session.execute(select(PumpCommand.nonce, PumpCommand.status)).all())


def test_a_poke_sends_a_queued_command_without_waiting_for_the_poll(app: Any, worker: IngestWorker) -> None:
    state: ServerState = app.state.smartpump
    _pump(state)
    with unit_of_work(state.sessions) as session:
        nonce = _issue(session, state)
    wait_until(lambda: _statuses(state) == {nonce: "sent"}, "the poked worker to send the queued command")


class Witness:
    """A background service that, when poked, notes the queued commands another session sees."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.seen: list[int] = []

    async def start(self, state: ServerState) -> None:
        """Nothing runs."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def poke(self) -> None:
        """Note what is visible now."""
        with self.state.sessions() as session:
            self.seen.append(commands.queued(session))


def test_the_sender_is_woken_once_the_issued_command_is_committed_not_before(app: Any) -> None:
    state: ServerState = app.state.smartpump
    _pump(state)
    witness = Witness(state)
    state.background[:] = [witness]
    with unit_of_work(state.sessions) as session:
        _issue(session, state)
        _issue(session, state)
        assert witness.seen == []
    assert witness.seen == [2, 2]
    with pytest.raises(RuntimeError), unit_of_work(state.sessions) as session:
        _issue(session, state)
        raise RuntimeError("the request failed after issuing")
    assert witness.seen == [2, 2]


class BreaksOnTheSecondSend(LockedTransport):
    """The in-process server endpoint, except that its second send raises (the worker crashes mid-loop)."""

    def __init__(self, link: InProcessLink) -> None:
        super().__init__(link.broker.server_endpoint(), link.lock)
        self.sent: list[str] = []

    def send(self, envelope: Envelope) -> bool:
        """Send, noting the command's nonce; the second call raises instead."""
        self.sent.append(str(envelope.body["signed"]["command"]["nonce"]))
        if len(self.sent) == 2:
            raise ConnectionResetError("the link broke while sending")
        return super().send(envelope)


def test_a_crash_on_the_second_command_keeps_the_first_committed_as_sent_and_never_resends_it(
    app: Any,
) -> None:
    state: ServerState = app.state.smartpump
    _pump(state)
    with unit_of_work(state.sessions) as session:
        first, second = _issue(session, state), _issue(session, state)
    link = InProcessLink()
    transport = BreaksOnTheSecondSend(link)
    crashing = IngestWorker(transport, link=link, tick_s=HOUR_S)
    state.background[:] = [crashing]
    crashing.attach(state)
    with pytest.raises(ConnectionResetError):
        crashing.outbound()
    assert _statuses(state) == {first: "sent", second: "queued"}
    crashing.poke()
    assert crashing.outbound()
    assert _statuses(state) == {first: "sent", second: "sent"}
    assert transport.sent == [first, second, second]
