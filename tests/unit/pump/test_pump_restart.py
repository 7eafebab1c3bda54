"""Restart (SAF-PWR-02): programs, totals, PCA history, alarm settings and seq survive; delivery
comes back paused and resumes only on confirmation."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from smartpump.clock import ManualClock
from smartpump.errors import PumpError
from smartpump.pump import ChannelState, EventType, Pump, PumpModel
from tests.unit.pump.library import basic, dopamine, make_pump, morphine_pca, pump_library, start

D = Decimal


def _power_cycle(pump: Pump, clock: ManualClock, off_s: float = 120) -> tuple[Pump, ManualClock]:
    state = json.loads(json.dumps(pump.to_state()))
    new_clock = ManualClock(start=clock.now() + timedelta(seconds=off_s))
    return Pump.from_state(state, new_clock, pump_library()), new_clock


def test_restart_restores_program_totals_and_seq_but_not_delivery() -> None:
    pump, clock = make_pump()
    pump.set_occlusion_threshold("A", D(300))
    start(pump, "A", dopamine("5"))
    clock.advance(1800)
    infused = pump.status().channels["A"].infused_ml
    last_seq = pump.next_seq - 1
    restarted, new_clock = _power_cycle(pump, clock)
    channel = restarted.channel("A")
    assert channel.state is ChannelState.PAUSED and channel.flow_ml_per_h == 0
    assert channel.therapy is not None and channel.therapy.infused_ml == infused
    assert channel.therapy.program == pump.channel("A").therapy.program  # type: ignore[union-attr]
    assert channel.line.threshold_mmhg == D(300)
    assert restarted.care_area is not None and restarted.care_area.id == "icu"
    assert next(iter(restarted.events)).seq == last_seq + 1
    restored = restarted.events.of_type(EventType.PUMP_STATE_RESTORED)[0]
    assert restored.data["channels"] == ["A"] and restored.data["downtime_s"] == D(120)
    new_clock.advance(600)
    restarted.sync()
    assert restarted.channel("A").therapy.infused_ml == infused  # type: ignore[union-attr]


def test_resume_is_the_confirmation_and_delivery_continues_to_the_vtbi() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("120", vtbi="100"))
    clock.advance(1500)
    restarted, new_clock = _power_cycle(pump, clock)
    restarted.resume("A")
    new_clock.advance(1500)
    restarted.sync()
    completed = restarted.events.of_type(EventType.INFUSION_COMPLETED)[0]
    assert completed.data["infused_ml"] == D(100)


def test_pca_history_survives_so_the_lockout_still_holds() -> None:
    pump, clock = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca(lockout="10"))
    assert pump.pca_demand("A")
    clock.advance(60)
    restarted, _ = _power_cycle(pump, clock, off_s=60)
    restarted.resume("A")
    assert restarted.pca_demand("A") is False
    denied = restarted.events.of_type(EventType.PCA_DEMAND_DENIED)[0]
    assert denied.data["reason"] == "lockout" and denied.data["window_total"] == D(1)


def test_an_interrupted_bolus_is_not_resumed_and_is_reported() -> None:
    pump, clock = make_pump(PumpModel.PCA)
    start(pump, "A", morphine_pca())
    pump.pca_demand("A")
    clock.advance(10)
    restarted, _ = _power_cycle(pump, clock)
    therapy = restarted.channel("A").therapy
    assert therapy is not None and therapy.overlay is None
    assert restarted.events.of_type(EventType.PUMP_STATE_RESTORED)[0].data["interrupted"] == ["A:pca_demand"]


def test_a_state_from_another_library_version_is_refused() -> None:
    pump, _ = make_pump()
    state = pump.to_state()
    with pytest.raises(PumpError) as refused:
        Pump.from_state(state, ManualClock(), pump_library(version=2))
    assert refused.value.code == "pump.state_library_mismatch"


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.pop("next_seq"),
        lambda s: s.update(format="other"),
        lambda s: s["channel_state"]["A"].update(drawn_ml="lots"),
        lambda s: s["channel_state"]["A"]["therapy"].update(infused_ml="NaN"),
        lambda s: s["channel_state"]["A"]["therapy"]["program"].update(kind="teleport"),
        lambda s: s["channel_state"].pop("B"),
    ],
)
def test_a_damaged_state_is_refused_with_a_reason(damage: object) -> None:
    pump, clock = make_pump(channels=2)
    start(pump, "A", dopamine("5"))
    clock.advance(60)
    state = json.loads(json.dumps(pump.to_state()))
    damage(state)  # type: ignore[operator]
    with pytest.raises(PumpError) as refused:
        Pump.from_state(state, ManualClock(), pump_library())
    assert refused.value.code == "pump.state_invalid"
