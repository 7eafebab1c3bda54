"""The simulated motor: set-point read-back, encoder, injected faults, power cut, delivered volume."""

from __future__ import annotations

from decimal import Decimal

from smartpump.clock import ManualClock
from smartpump.sim.hardware import SimulatedHardware

D = Decimal


def test_a_healthy_motor_follows_its_set_point_and_integrates_volume_exactly() -> None:
    clock = ManualClock()
    hardware = SimulatedHardware(clock)
    hardware.command_rate("A", D(36))
    clock.advance(100)
    assert hardware.setpoint_ml_per_h("A") == hardware.encoder_rate_ml_per_h("A") == D(36)
    assert hardware.delivered_ml("A") == D(1)


def test_faults_change_what_the_register_and_encoder_report() -> None:
    clock = ManualClock()
    hardware = SimulatedHardware(clock)
    hardware.command_rate("A", D(10))
    hardware.scale_setpoint("A", D(2))
    assert hardware.setpoint_ml_per_h("A") == D(20) and hardware.encoder_rate_ml_per_h("A") == D(20)
    hardware.scale_motor("A", D("0.5"))
    assert hardware.setpoint_ml_per_h("A") == D(20) and hardware.encoder_rate_ml_per_h("A") == D(10)
    hardware.override_setpoint("A", D(7))
    assert hardware.setpoint_ml_per_h("A") == D(7)
    hardware.override_setpoint("A", None)
    assert hardware.setpoint_ml_per_h("A") == D(20)


def test_the_power_cut_stops_the_motor_whatever_the_fault() -> None:
    clock = ManualClock()
    hardware = SimulatedHardware(clock)
    hardware.override_setpoint("A", D(360))
    clock.advance(10)
    hardware.cut_motor_power("A")
    clock.advance(100)
    assert hardware.encoder_rate_ml_per_h("A") == 0
    assert hardware.delivered_ml("A") == D(1)
