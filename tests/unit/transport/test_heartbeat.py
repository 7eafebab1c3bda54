"""The status heartbeat message: built from a pump's status, strictly decoded, malformed ones refused."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from smartpump.pump.alarms import AlarmId
from smartpump.transport.heartbeat import MAX_ALARMS, heartbeat_message, heartbeat_of, heartbeat_of_status
from smartpump.transport.messages import UPLINK_KINDS, Kind, MessageError, Topics, decode
from tests.unit.pump.library import basic, make_pump, start

D = Decimal


def _body() -> dict[str, Any]:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="10"))
    clock.advance(100)
    pump.occlude_upstream("B")
    return dict(heartbeat_message(heartbeat_of_status(pump.status(), interval_s=30)).body)


def _raw(body: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, "kind": "heartbeat", "pump": "pump-1", "body": body}).encode()


def test_a_heartbeat_carries_the_pumps_status_and_survives_the_wire() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="10"))
    clock.advance(100)
    pump.occlude_upstream("B")
    status = pump.status()
    envelope = heartbeat_message(heartbeat_of_status(status, interval_s=30))
    assert Kind.HEARTBEAT in UPLINK_KINDS
    assert Topics().for_message(envelope) == "smartpump/v1/pumps/pump-1/heartbeat"
    received = heartbeat_of(decode(envelope.encode()))
    assert received.seq == status.last_seq == pump.events.next_seq - 1
    assert received.clock == clock.now()
    assert [(a.alarm, a.channel, a.priority) for a in received.alarms] == [
        (AlarmId.OCCLUSION_UPSTREAM.value, "B", "high")
    ]
    a = next(c for c in received.channels if c.channel == "A")
    assert (a.state, a.rate_ml_per_h, a.remaining_min) == ("running", D(60), D("8.3"))
    assert a.remaining_ml is not None
    assert D("9.999") <= a.infused_ml + a.remaining_ml <= D(10), "each floored to 0.001 mL"
    assert (a.vtbi_ml, next(c for c in received.channels if c.channel == "B").vtbi_ml) == (D(10), None)
    assert received.library_sha256 == status.library_sha256
    assert received.battery_percent == 100


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda b: b.pop("seq"), "message.missing_field"),
        (lambda b: b.update(extra=1), "message.unknown_field"),
        (lambda b: b.update(battery_percent=101), "message.out_of_range"),
        (lambda b: b.update(battery_percent=True), "message.wrong_type"),
        (lambda b: b.update(clock="2026-01-01T00:00:00"), "message.wrong_type"),
        (lambda b: b.update(library_sha256="ABC"), "message.wrong_type"),
        (lambda b: b.update(interval_s=0), "message.out_of_range"),
        (lambda b: b["alarms"][0].update(priority="urgent"), "message.wrong_type"),
        (lambda b: b["alarms"].append(dict(b["alarms"][0])), "message.duplicate"),
        (
            lambda b: b.update(
                alarms=[
                    {"alarm": f"a.x{i}", "channel": None, "priority": "low"} for i in range(MAX_ALARMS + 1)
                ]
            ),
            "message.too_large",
        ),
        (lambda b: b["channels"]["A"].update(remaining_ml="-1"), "message.wrong_type"),
        (lambda b: b["channels"]["A"].update(rate_ml_per_h=60), "message.wrong_type"),
        (lambda b: b["channels"]["A"].update(vtbi_ml="ten"), "message.wrong_type"),
        (lambda b: b["channels"]["A"].pop("vtbi_ml"), "message.missing_field"),
        (lambda b: b["channels"]["A"].update(state="flying"), "message.wrong_type"),
        (lambda b: b["channels"]["A"].update(dose="5"), "message.wrong_type"),
        (lambda b: b["channels"].update({"bad channel": b["channels"].pop("A")}), "message.wrong_type"),
        (
            lambda b: b["channels"].update({f"X{i}": b["channels"]["A"] for i in range(4)}),
            "message.too_large",
        ),
        (lambda b: b.update(channels=[]), "message.wrong_type"),
    ],
)
def test_malformed_heartbeats_are_refused_with_a_code(change: Any, code: str) -> None:
    body = copy.deepcopy(_body())
    change(body)
    with pytest.raises(MessageError) as refused:
        decode(_raw(body))
    assert refused.value.code == code


def test_a_well_formed_body_decodes() -> None:
    assert decode(_raw(_body())).kind is Kind.HEARTBEAT
