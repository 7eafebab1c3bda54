"""An auto-programmed (EHR) program declined by the nurse: program.cancelled says so, with a coded reason."""

from __future__ import annotations

import pytest

from smartpump.errors import PumpError
from smartpump.pump import ChannelState, DeclineReason, EventType
from smartpump.pump.events import EVENT_FIELDS
from tests.unit.pump.library import dopamine, make_pump


def test_declining_an_ehr_program_logs_the_coded_reason_and_frees_the_channel() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("5"), auto_programmed=True)
    pump.cancel("A", reason=DeclineReason.PATIENT_CONDITION)
    event = pump.events.of_type(EventType.PROGRAM_CANCELLED)[-1]
    assert set(event.data) == set(EVENT_FIELDS[EventType.PROGRAM_CANCELLED])
    assert (event.data["auto_programmed"], event.data["reason"], event.data["verdict"]) == (
        True,
        "patient_condition",
        "ok",
    )
    assert pump.channel("A").state is ChannelState.IDLE


def test_a_manual_cancel_is_no_decline() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("5"))
    pump.cancel("A")
    event = pump.events.of_type(EventType.PROGRAM_CANCELLED)[-1]
    assert (event.data["auto_programmed"], event.data["reason"]) == (False, "")


def test_an_uncoded_decline_reason_is_refused_and_the_program_kept() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("5"), auto_programmed=True)
    with pytest.raises(PumpError) as refused:
        pump.cancel("A", reason="because")
    assert refused.value.code == "pump.decline_reason"
    assert pump.channel("A").pending is not None
    assert pump.events.of_type(EventType.PROGRAM_CANCELLED) == []


def test_a_held_offer_declined_before_any_check_is_logged_unchecked() -> None:
    pump, _ = make_pump()
    pump.decline_offer("B", entry_id="icu-dopamine", reason="order_discrepancy")
    event = pump.events.of_type(EventType.PROGRAM_CANCELLED)[-1]
    assert event.channel == "B"
    assert (event.data["verdict"], event.data["auto_programmed"], event.data["reason"]) == (
        "unchecked",
        True,
        "order_discrepancy",
    )
    with pytest.raises(PumpError):
        pump.decline_offer("Z", entry_id="icu-dopamine", reason="other")
