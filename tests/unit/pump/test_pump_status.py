"""The typed status snapshot: what the display shows, frozen, and its dict form for JSON callers."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from decimal import Decimal

import pytest

from smartpump.pump import AlarmId
from smartpump.pump.status import ChannelStatus, PumpStatus
from tests.unit.pump.library import basic, make_pump, start

D = Decimal


def test_status_follows_the_channels_and_alarms() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="50"))
    clock.advance(360)
    pump.occlude_upstream("B")
    status = pump.status()
    assert isinstance(status, PumpStatus)
    a, b = status.channels["A"], status.channels["B"]
    assert (a.state, a.rate_ml_per_h, a.infused_ml, a.vtbi_ml) == ("running", D(100), D(10), D(50))
    assert (b.state, b.drug, b.vtbi_ml) == ("idle", None, None)
    assert [(s.alarm, s.channel) for s in status.alarms] == [(AlarmId.OCCLUSION_UPSTREAM.value, "B")]
    assert status.audible is True
    assert pump.library is not None and status.library_version == pump.library.version
    assert status.care_area == "icu"


def test_status_is_frozen() -> None:
    pump, _ = make_pump()
    status = pump.status()
    with pytest.raises(FrozenInstanceError):
        status.audible = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        status.channels["Z"] = status.channels["A"]  # type: ignore[index]


def test_to_dict_keeps_the_keys_and_values_of_the_untyped_status() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("100", vtbi="50"))
    clock.advance(60)
    status = pump.status()
    shown = status.to_dict()
    assert list(shown) == [
        "pump",
        "model",
        "library_version",
        "library_pending",
        "library_sha256",
        "configuration_version",
        "configuration_pending",
        "software_version",
        "software_pending",
        "care_area",
        "on_ac",
        "battery_remaining_min",
        "audible",
        "alarms",
        "channels",
        "battery_percent",
        "clock",
        "last_seq",
    ]
    channels = shown["channels"]
    assert isinstance(channels, dict)
    assert channels["A"] == {
        "state": "running",
        "drug": status.channels["A"].drug,
        "rate_ml_per_h": D(100),
        "infused_ml": status.channels["A"].infused_ml,
        "vtbi_ml": D(50),
        "kvo_ml": D(0),
        "entry_id": None,
        "remaining_ml": status.channels["A"].remaining_ml,
        "remaining_min": status.channels["A"].remaining_min,
        "dose": None,
        "dose_unit": None,
    }
    assert status.channels["A"].infused_ml == pump.channel("A").therapy.infused_ml  # type: ignore[union-attr]
    assert set(ChannelStatus.__dataclass_fields__) == set(channels["B"])


def test_volume_and_time_left_follow_the_running_therapy_and_never_go_negative() -> None:
    pump, clock = make_pump()
    start(pump, "A", basic("60", vtbi="10"))
    clock.advance(120)
    status = pump.status()
    assert status.channels["A"].remaining_ml == D(8)
    assert status.channels["A"].remaining_min == D(8)
    assert status.last_seq == pump.events.next_seq - 1
    assert status.clock == clock.now()
    assert status.battery_percent == 100
    clock.advance(3600)
    done = pump.status().channels["A"]
    assert (done.state, done.remaining_ml, done.remaining_min) == ("kvo", D(0), None)


def test_battery_percent_falls_on_battery() -> None:
    pump, clock = make_pump()
    pump.ac_power(False)
    clock.advance(3600)
    assert 0 <= pump.status().battery_percent < 100
