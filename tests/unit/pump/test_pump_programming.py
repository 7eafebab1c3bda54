"""Programming flow at the bedside: DERS check, override, reprogram, cancel, confirm, start, titrate."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from smartpump.errors import ProgramError, PumpError
from smartpump.pump import ChannelState, EventType, OverrideReason
from smartpump.pump.events import EVENT_FIELDS
from tests.unit.pump.library import basic, dopamine, make_pump, start

D = Decimal


def types(pump: object) -> list[EventType]:
    return [e.type for e in pump.events]  # type: ignore[attr-defined]


def test_ok_program_starts_and_every_step_is_an_event() -> None:
    pump, _ = make_pump()
    start(pump, "A", dopamine("5"))
    assert types(pump)[-3:] == [
        EventType.PROGRAM_CHECKED,
        EventType.PROGRAM_CONFIRMED,
        EventType.INFUSION_STARTED,
    ]
    assert pump.channel("A").state is ChannelState.RUNNING


def test_program_checked_carries_the_numbers_cqi_needs() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("25"))
    event = pump.events.of_type(EventType.PROGRAM_CHECKED)[-1]
    assert set(EVENT_FIELDS[EventType.PROGRAM_CHECKED]) <= set(event.data)
    assert event.data["verdict"] == "soft"
    assert event.data["entry_id"] == "icu-dopamine"
    alerts = event.data["alerts"]
    assert isinstance(alerts, list)
    alert = alerts[0]
    assert alert["rule"] == "ders.dose.soft_max" and alert["limit"] == D(20) and alert["value"] == D(25)


def test_soft_alert_refuses_confirm_until_overridden_with_a_coded_reason() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("25"))
    with pytest.raises(PumpError) as refused:
        pump.confirm("A")
    assert refused.value.code == "pump.override_required"
    pump.override("A", OverrideReason.PRESCRIBER_ORDER)
    pump.confirm("A")
    pump.start("A")
    overridden = pump.events.of_type(EventType.ALERT_OVERRIDDEN)[0]
    assert overridden.data["reason"] == "prescriber_order" and overridden.data["library_version"] == 1


def test_override_reason_outside_the_code_list_is_refused() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("25"))
    with pytest.raises(PumpError) as refused:
        pump.override("A", "because")
    assert refused.value.code == "pump.override_reason"


def test_hard_stop_cannot_be_overridden_confirmed_or_started() -> None:
    pump, _ = make_pump()
    verdict = pump.program("A", dopamine("50"))
    assert verdict.level == "hard"
    actions: list[Callable[[], None]] = [
        lambda: pump.override("A", "other"),
        lambda: pump.confirm("A"),
        lambda: pump.start("A"),
    ]
    for action in actions:
        with pytest.raises(PumpError):
            action()
    assert pump.channel("A").state is ChannelState.PROGRAMMED
    assert types(pump).count(EventType.START_REFUSED) == 2


def test_reprogram_after_hard_stop_logs_both_checks_and_can_start() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("50"))
    pump.reprogram("A", dopamine("5"))
    pump.confirm("A")
    pump.start("A")
    reprogrammed = pump.events.of_type(EventType.PROGRAM_REPROGRAMMED)[0]
    assert reprogrammed.data["previous_verdict"] == "hard"
    assert [e.data["verdict"] for e in pump.events.of_type(EventType.PROGRAM_CHECKED)] == ["hard", "ok"]


def test_cancel_logs_the_abandoned_verdict_and_frees_the_channel() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("25"))
    pump.cancel("A")
    assert pump.events.of_type(EventType.PROGRAM_CANCELLED)[0].data["verdict"] == "soft"
    assert pump.channel("A").state is ChannelState.IDLE


def test_a_second_program_while_one_is_pending_is_refused() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("5"))
    with pytest.raises(PumpError) as refused:
        pump.program("A", dopamine("6"))
    assert refused.value.code == "pump.program_pending"


def test_program_that_cannot_be_evaluated_is_logged_and_refused() -> None:
    pump, _ = make_pump()
    program = dopamine("5")
    from dataclasses import replace

    from smartpump.ders.program import NO_PATIENT

    with pytest.raises(ProgramError) as refused:
        pump.program("A", replace(program, patient=NO_PATIENT))
    assert refused.value.code == "program.weight_required"
    assert pump.events.of_type(EventType.PROGRAM_REFUSED)[0].data["code"] == "program.weight_required"


def test_rate_beyond_the_model_range_is_refused_not_clamped() -> None:
    from smartpump.pump import PumpModel

    pump, _ = make_pump(PumpModel.AMBULATORY)
    verdict = pump.program("A", basic("600"))
    assert verdict.level == "hard" and verdict.rate_ml_per_h == D(600)
    rules = {a.rule: a for a in verdict.alerts}
    assert rules["ders.device.rate.hard_max"].limit == D(500)
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.hard_stop"


def test_vtbi_above_model_max_is_refused() -> None:
    pump, _ = make_pump()
    verdict = pump.program("A", basic("100", vtbi="10000"))
    [alert] = verdict.alerts
    assert (alert.rule, alert.value, alert.limit) == ("ders.device.vtbi.hard_max", D(10000), D(9999))
    with pytest.raises(PumpError) as refused:
        pump.confirm("A")
    assert refused.value.code == "pump.hard_stop"


def test_titration_is_rechecked_and_applied_only_on_confirm() -> None:
    pump, _clock = make_pump()
    start(pump, "A", dopamine("5"))
    pump.program("A", dopamine("25"))
    assert pump.channel("A").therapy.rate_ml_per_h == D("13.1")  # type: ignore[union-attr]
    pump.override("A", "titration_protocol")
    pump.confirm("A")
    changed = pump.events.of_type(EventType.RATE_CHANGED)[-1]
    assert changed.data["old_rate_ml_per_h"] == D("13.1")
    assert changed.data["new_rate_ml_per_h"] == D("65.6")
    assert pump.events.of_type(EventType.PROGRAM_CHECKED)[-1].data["is_titration"] is True


def test_hard_titration_leaves_the_running_rate_unchanged() -> None:
    pump, _ = make_pump()
    start(pump, "A", dopamine("5"))
    pump.program("A", dopamine("50"))
    with pytest.raises(PumpError):
        pump.confirm("A")
    pump.cancel("A")
    assert pump.channel("A").flow_ml_per_h == D("13.1")


def test_no_program_without_a_care_area() -> None:
    from smartpump.clock import ManualClock
    from smartpump.pump import Pump
    from tests.unit.pump.library import pump_library

    pump = Pump("p", "lvp-4", ManualClock(), library=pump_library())
    with pytest.raises(PumpError) as refused:
        pump.program("A", dopamine("5"))
    assert refused.value.code == "pump.no_care_area"


def test_syringe_rate_resolution_is_hundredths_at_low_rates() -> None:
    from smartpump.pump import PumpModel

    pump, _ = make_pump(PumpModel.SYRINGE)
    verdict = pump.program("A", basic("0.37", vtbi="5"))
    assert verdict.rate_ml_per_h == D("0.37")


def test_delayed_start_begins_at_the_scheduled_time() -> None:
    pump, clock = make_pump()
    pump.program("A", dopamine("5"))
    pump.confirm("A")
    pump.start("A", delay_s=D(600))
    clock.advance(599)
    pump.sync()
    assert pump.channel("A").state is ChannelState.DELAYED
    clock.advance(1)
    pump.sync()
    assert pump.channel("A").state is ChannelState.RUNNING
    assert pump.events.of_type(EventType.INFUSION_STARTED)[0].ts == clock.now()


def test_standby_holds_a_confirmed_program_without_delivery() -> None:
    pump, clock = make_pump()
    pump.program("A", dopamine("5"))
    pump.confirm("A")
    pump.standby("A")
    clock.advance(3600)
    assert pump.status().channels["A"].infused_ml == 0
    pump.start("A")
    assert pump.channel("A").state is ChannelState.RUNNING


def test_program_checked_carries_what_a_replay_needs_to_recheck_it() -> None:
    pump, _ = make_pump()
    pump.program("A", dopamine("25"))
    data = pump.events.of_type(EventType.PROGRAM_CHECKED)[-1].data
    assert data["weight_kg"] == D(70)
    assert data["route"] == "IV"
    assert data["rate_ml_per_h_exact"] == D("65.625")
    assert data["rate_resolution_ml_per_h"] == D("0.1")


def test_infusion_started_names_care_area_library_version_and_provenance() -> None:
    pump, _ = make_pump()
    start(pump, "A", dopamine("5"))
    data = pump.events.of_type(EventType.INFUSION_STARTED)[-1].data
    assert set(EVENT_FIELDS[EventType.INFUSION_STARTED]) <= set(data)
    assert pump.care_area is not None
    assert data["care_area"] == pump.care_area.id
    assert data["library_version"] == 1
    assert data["is_basic"] is False
    assert data["auto_programmed"] is False


def test_a_refused_server_command_is_logged_by_the_pump() -> None:
    pump, _ = make_pump()
    before = len(pump.events.of_type(EventType.COMMAND_REFUSED))
    pump.record_command_refused(
        command="install_library", nonce="n-1", code="command.replayed", reason="seen"
    )
    event = pump.events.of_type(EventType.COMMAND_REFUSED)[-1]
    assert len(pump.events.of_type(EventType.COMMAND_REFUSED)) == before + 1
    assert event.data == {
        "command": "install_library",
        "nonce": "n-1",
        "code": "command.replayed",
        "reason": "seen",
    }
    assert event.channel is None
