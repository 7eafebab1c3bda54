"""Auto-documentation: stored pump events become PCD-10 / PCD-04 / PCD-01 in the persistent outbound queue
(carrying the original order id), delivered in order with backoff, each message once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from smartpump.interop.hl7v2.ack import AckCode, build_ack
from smartpump.interop.hl7v2.listener import new_control_id
from smartpump.interop.hl7v2.message import parse
from smartpump.interop.hl7v2.mllp import MllpError
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.ehr_worker import drain
from smartpump.server.services.ehr import AutoDocumentation, EhrConfig, OrderListener, queue_state
from smartpump.server.services.events import IncomingEvent, store_events
from tests.server.conftest import World
from tests.server.ehr_support import SERIAL, documentation_pass, dopamine_order, ehr_site, segments

DESTINATION = "ehr.test:2575"


class Events:
    """Stores events of the test pump with increasing seq at the world's clock."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.seq = 0

    def add(self, type_: str, channel: str | None = "A", **data: Any) -> None:
        self.seq += 1
        with unit_of_work(self.world.state.sessions) as session:
            event = IncomingEvent(
                pump=SERIAL, seq=self.seq, ts=self.world.clock.now(), type=type_, channel=channel, data=data
            )
            store_events(session, self.world.clock, [event])


def _started(world: World) -> Events:
    ehr_site(world)
    OrderListener(world.state).answer(dopamine_order())
    events = Events(world)
    events.add("program.checked", kind="continuous", concentration="400 mg/250 mL", weight_kg="85.0")
    events.add(
        "infusion.started",
        entry_id="icu-dopamine",
        drug="DOPamine",
        care_area="icu",
        rate_ml_per_h="31.9",
        vtbi_ml="250",
        dose="10",
        dose_unit="mcg/kg/min",
        library_version=1,
        auto_programmed=True,
    )
    return events


def _obx(payload: str) -> dict[str, str]:
    return {fields[3].split("^")[1]: fields[5] for fields in segments(payload, "OBX") if "^" in fields[3]}


def test_auto_programmed_start_becomes_an_ipec_start_with_the_original_order_id(world: World) -> None:
    _started(world)
    [payload] = documentation_pass(world, DESTINATION)
    [msh] = segments(payload, "MSH")
    [obr] = segments(payload, "OBR")
    [pid] = segments(payload, "PID")
    assert msh[8] == "ORU^R42^ORU_R01"
    assert obr[2] == "12345^PCD-03"
    assert pid[3].split("^")[0] == "98765"
    obx = _obx(payload)
    assert obx["MDC_ATTR_EVT_COND"].split("^")[1] == "MDC_EVT_PUMP_DELIV_START"
    assert obx["MDC_FLOW_FLUID_PUMP"] == "31.9"
    assert obx["MDC_DRUG_NAME_LABEL"] == "DOPamine"


def test_order_is_linked_to_its_infusion_and_closed_by_completion(world: World) -> None:
    events = _started(world)
    events.add("infusion.completed", infused_ml="250", vtbi_ml="250")
    payloads = documentation_pass(world, DESTINATION)
    assert [segments(p, "OBR")[0][2] for p in payloads] == ["12345^PCD-03", "12345^PCD-03"]
    assert _obx(payloads[1])["MDC_ATTR_EVT_COND"].split("^")[1] == "MDC_EVT_PUMP_DELIV_COMP"
    assert _obx(payloads[1])["MDC_VOL_FLUID_DELIV_TOTAL"] == "250"
    with world.state.sessions() as session:
        [order] = session.query(EhrOrder).all()
        assert order.status == "completed"


def test_rate_change_is_a_stop_then_a_start(world: World) -> None:
    events = _started(world)
    events.add(
        "rate.changed", old_rate_ml_per_h="31.9", new_rate_ml_per_h="47.8", dose="15", cause="titration"
    )
    payloads = documentation_pass(world, DESTINATION)[1:]
    conditions = [_obx(p)["MDC_ATTR_EVT_COND"].split("^")[1] for p in payloads]
    assert conditions == ["MDC_EVT_PUMP_DELIV_STOP", "MDC_EVT_PUMP_DELIV_START"]
    assert [_obx(p)["MDC_FLOW_FLUID_PUMP"] for p in payloads] == ["31.9", "47.8"]


def test_manual_infusion_carries_no_order_id(world: World) -> None:
    ehr_site(world)
    events = Events(world)
    events.add("infusion.started", drug="DOPamine", rate_ml_per_h="10", auto_programmed=False)
    [payload] = documentation_pass(world, DESTINATION)
    assert segments(payload, "OBR")[0][2] == "^PCD-03"


def test_alarm_start_and_acknowledged_end_share_one_alert_id(world: World) -> None:
    events = _started(world)
    events.add(
        "alarm.raised", alarm="occlusion.downstream", priority="high", latching=True, stops_delivery=True
    )
    events.add("alarm.cleared", alarm="occlusion.downstream", by="operator", duration_s="30")
    start, end = [p for p in documentation_pass(world, DESTINATION) if "ORU^R40" in p]
    assert segments(start, "OBR")[0][3] == segments(end, "OBR")[0][3]
    assert _obx(start)["MDC_EVT_ALARM"] == "196940^MDC_EVT_FLUID_LINE_OCCL^MDC^^^^^^occlusion.downstream"
    assert (_obx(start)["MDC_ATTR_EVENT_PHASE"], _obx(end)["MDC_ATTR_EVENT_PHASE"]) == ("start", "end")
    assert _obx(end)["MDC_ATTR_ALARM_INACTIVATION_STATE"] == "acknowledged"


def test_periodic_status_is_sent_once_per_interval(world: World) -> None:
    _started(world)
    documentation = AutoDocumentation(
        state=world.state, destination=DESTINATION, config=EhrConfig(status_interval=timedelta(minutes=5))
    )
    documentation.run_once()
    documentation.run_once()
    world.clock.advance(301)
    documentation.run_once()
    with world.state.sessions() as session:
        types = [row.message_type for row in queue_state(session, DESTINATION)]
    assert types.count("ORU^R01") == 2


def test_running_twice_documents_each_event_once(world: World) -> None:
    _started(world)
    assert len(documentation_pass(world, DESTINATION)) == 1
    assert len(documentation_pass(world, DESTINATION)) == 1


class FlakyEhr:
    """An EHR that is down until ``up`` is set, then acks AA and records what it received."""

    def __init__(self) -> None:
        self.up = False
        self.attempts = 0
        self.received: list[str] = []

    def send(self, text: str) -> str:
        self.attempts += 1
        if not self.up:
            raise MllpError("cannot connect", code="mllp.connection")
        message = parse(text)
        self.received.append(message.control_id)
        return build_ack(message, AckCode.AA, control_id=new_control_id(), timestamp=message_time()).to_er7()


def message_time() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 3, 2, tzinfo=UTC)


def test_six_hour_outage_then_everything_is_delivered_in_order_once(world: World) -> None:
    events = _started(world)
    for rate in range(40, 60):
        events.add("rate.changed", old_rate_ml_per_h=str(rate - 1), new_rate_ml_per_h=str(rate))
        world.clock.advance(60)
    documentation_pass(world, DESTINATION)
    ehr = FlakyEhr()
    sessions = world.state.sessions
    with sessions() as session:
        expected = [row.control_id for row in queue_state(session, DESTINATION)]
    for _ in range(6 * 60):
        result = drain(sessions, world.clock, DESTINATION, ehr.send)
        assert result.delivered == 0
        world.clock.advance(60)
    assert 70 <= ehr.attempts <= 6 * 60 // 5 + 20
    ehr.up = True
    world.clock.advance(300)
    result = drain(sessions, world.clock, DESTINATION, ehr.send)
    assert (result.delivered, result.pending) == (len(expected), 0)
    assert drain(sessions, world.clock, DESTINATION, ehr.send).delivered == 0
    assert ehr.received == expected
    assert len(expected) == 41


def test_negative_ack_parks_the_message_and_the_queue_moves_on(world: World) -> None:
    events = _started(world)
    events.add("infusion.stopped", infused_ml="12", reason="user")
    documentation_pass(world, DESTINATION)
    replies = iter([AckCode.AE, AckCode.AA])

    def send(text: str) -> str:
        message = parse(text)
        return build_ack(
            message, next(replies), control_id=new_control_id(), timestamp=message_time()
        ).to_er7()

    result = drain(world.state.sessions, world.clock, DESTINATION, send)
    with world.state.sessions() as session:
        states = [(row.state, row.ack_code) for row in queue_state(session, DESTINATION)]
    assert (result.delivered, result.rejected) == (1, 1)
    assert states == [("rejected", "AE"), ("delivered", "AA")]


def test_a_crash_sending_the_second_message_keeps_the_first_delivered_and_never_resends_it(
    world: World,
) -> None:
    events = _started(world)
    events.add("infusion.stopped", infused_ml="12", reason="user")
    documentation_pass(world, DESTINATION)
    ehr = FlakyEhr()
    ehr.up = True

    def send_then_crash(text: str) -> str:
        if ehr.received:
            raise ConnectionResetError("the sender died while sending")
        return ehr.send(text)

    def states() -> list[tuple[str, str, int]]:
        with world.state.sessions() as session:
            return [(row.state, row.ack_code, row.attempts) for row in queue_state(session, DESTINATION)]

    with pytest.raises(ConnectionResetError):
        drain(world.state.sessions, world.clock, DESTINATION, send_then_crash)
    assert states() == [("delivered", "AA", 1), ("pending", "", 0)]
    assert drain(world.state.sessions, world.clock, DESTINATION, ehr.send).delivered == 1
    assert states() == [("delivered", "AA", 1), ("delivered", "AA", 1)]
    assert len(ehr.received) == len(set(ehr.received)) == 2
