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
    }
    assert status.channels["A"].infused_ml == pump.channel("A").therapy.infused_ml  # type: ignore[union-attr]
    assert set(ChannelStatus.__dataclass_fields__) == set(channels["B"])
