"""Store-and-forward: persisted, ordered, retried with backoff, deleted by nothing but a positive ack."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from smartpump.clock import ManualClock
from smartpump.interop.hl7v2.ack import AckCode, build_ack
from smartpump.interop.hl7v2.message import parse
from smartpump.interop.hl7v2.mllp import MllpError
from smartpump.interop.hl7v2.outbox import Backoff, Outbox, OutboxState

EHR = "ehr:2575"


def _message(control_id: str) -> str:
    header = f"MSH|^~\\&|SMARTPUMP|X|EHR|Y|20260101000000+0000||ORU^R42^ORU_R01|{control_id}|P|2.6"
    return header + "\rOBX|1|ST|x||y\r"


class Ehr:
    """A fake EHR endpoint behind the MLLP client: down or up, it records what it acked."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.is_up = False
        self.received: list[str] = []
        self.reject: set[str] = set()

    def send(self, text: str) -> str:
        if not self.is_up:
            raise MllpError("connection refused", code="mllp.connection")
        message = parse(text)
        self.received.append(message.control_id)
        code = AckCode.AE if message.control_id in self.reject else AckCode.AA
        return build_ack(message, code, control_id="ack", timestamp=self.clock.now()).to_er7()


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(initial_s=1, factor=2, max_s=300)
    assert [backoff.delay_s(n) for n in (1, 2, 3, 9, 10, 20)] == [1, 2, 4, 256, 300, 300]


def test_six_hour_outage_then_everything_delivered_in_order_exactly_once(tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", clock)
    ehr = Ehr(clock)
    ids = [f"M{i:03d}" for i in range(50)]
    for control_id in ids:
        outbox.enqueue(_message(control_id), EHR)
    attempts_while_down = 0
    while clock.monotonic_s() < 6 * 3600:
        attempts_while_down += outbox.drain(EHR, ehr.send).failed
        clock.advance(10)
    assert ehr.received == [] and attempts_while_down > 0
    assert len(outbox.items(EHR, OutboxState.PENDING)) == 50
    ehr.is_up = True
    clock.advance(300)
    result = outbox.drain(EHR, ehr.send)
    assert result.delivered == 50 and result.pending == 0
    assert ehr.received == ids
    assert outbox.drain(EHR, ehr.send).delivered == 0
    assert ehr.received == ids


def test_a_retry_keeps_the_control_id_and_waits_for_its_backoff(tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox(tmp_path / "o.sqlite", clock, backoff=Backoff(initial_s=30, factor=2, max_s=600))
    ehr = Ehr(clock)
    outbox.enqueue(_message("X1"), EHR)
    assert outbox.drain(EHR, ehr.send).failed == 1
    ehr.is_up = True
    clock.advance(29)
    assert outbox.drain(EHR, ehr.send).delivered == 0
    clock.advance(1)
    assert outbox.drain(EHR, ehr.send).delivered == 1
    assert ehr.received == ["X1"]


def test_queue_survives_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "o.sqlite"
    first = Outbox(path, clock)
    first.enqueue(_message("P1"), EHR)
    first.enqueue(_message("P2"), EHR)
    first.close()
    ehr = Ehr(clock)
    ehr.is_up = True
    assert Outbox(path, clock).drain(EHR, ehr.send).delivered == 2
    assert ehr.received == ["P1", "P2"]


def test_negative_ack_is_kept_as_rejected_and_the_queue_moves_on(tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox(tmp_path / "o.sqlite", clock)
    ehr = Ehr(clock)
    ehr.is_up = True
    ehr.reject.add("R1")
    for control_id in ("R1", "R2"):
        outbox.enqueue(_message(control_id), EHR)
    result = outbox.drain(EHR, ehr.send)
    assert (result.delivered, result.rejected) == (1, 1)
    rejected = outbox.items(EHR, OutboxState.REJECTED)
    assert [(i.control_id, i.ack_code) for i in rejected] == [("R1", "AE")]


def test_enqueue_twice_is_one_message(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite", ManualClock())
    assert outbox.enqueue(_message("D1"), EHR) == outbox.enqueue(_message("D1"), EHR)
    assert len(outbox.items(EHR)) == 1


def test_purge_removes_only_old_delivered(tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox(tmp_path / "o.sqlite", clock)
    ehr = Ehr(clock)
    ehr.is_up = True
    outbox.enqueue(_message("A"), EHR)
    outbox.drain(EHR, ehr.send)
    outbox.enqueue(_message("B"), EHR)
    clock.advance(3600)
    assert outbox.purge_delivered(clock.now() - timedelta(minutes=1)) == 1
    assert [i.control_id for i in outbox.items(EHR)] == ["B"]


def test_message_without_control_id_is_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite", ManualClock())
    with pytest.raises(Exception) as caught:
        outbox.enqueue(_message(""), EHR)
    assert getattr(caught.value, "code", "") == "hl7.no_control_id"
