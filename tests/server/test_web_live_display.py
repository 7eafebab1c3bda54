"""The live stream carries, beside each channel's exact values, the strings its tile shows on first render
(the same functions), so the script never rounds: a dose 1.005 reads "1.01" (half-up on the exact value,
where a float rounds it to "1"), a volume 1.45 reads "1.5", a time 1366.2 min "22:46"."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from smartpump.server.live import LiveMessage
from smartpump.server.web import station
from smartpump.server.web.display import significant
from smartpump.server.web.live_display import channel_texts, with_display

TS = datetime(2026, 3, 2, tzinfo=UTC)


def _message(kind: str, payload: dict[str, object]) -> LiveMessage:
    return LiveMessage(kind=kind, facility_id=1, payload=payload, ts=TS)


def test_a_pump_view_gets_the_tiles_strings_for_each_channel() -> None:
    exact = {
        "state": "paused",
        "drug": "heparin",
        "dose": "1.005",
        "dose_unit": "mg/h",
        "rate_ml_per_h": "0.50",
        "remaining_ml": "1.45",
        "remaining_min": "1366.2",
    }
    shown = with_display(_message("pump.view", {"pump": "P-1", "model": "lvp-4", "channels": {"A": exact}}))
    channel = shown.payload["channels"]["A"]  # type: ignore[index]
    assert channel == {
        **exact,
        "dose_text": "1.01",
        "rate_text": "0.5",
        "remaining_text": "1.5",
        "time_left": "22:46",
    }


@pytest.mark.parametrize(
    ("rate", "remaining", "minutes"),
    [("1000", "999.95", "0.6"), ("13", "0.04", "59.99"), ("150", "250", "0"), ("99.95", "12345.67", "90")],
)
def test_every_string_is_the_first_renders_own(rate: str, remaining: str, minutes: str) -> None:
    channel = {
        "state": "running",
        "dose": remaining,
        "rate_ml_per_h": rate,
        "remaining_ml": remaining,
        "remaining_min": minutes,
    }
    assert channel_texts("lvp-4", channel) == {
        "rate_text": station.rate_text("lvp-4", Decimal(rate)),
        "dose_text": significant(Decimal(remaining)),
        "remaining_text": station.volume_text("lvp-4", Decimal(remaining)),
        "time_left": station.hours_minutes(Decimal(minutes)),
    }


def test_no_dose_outside_running_or_paused_and_a_dash_for_what_is_missing() -> None:
    channel = {
        "state": "kvo",
        "dose": "5",
        "rate_ml_per_h": None,
        "remaining_ml": None,
        "remaining_min": None,
    }
    assert channel_texts("lvp-4", channel) == {
        "dose_text": "",
        "rate_text": "—",
        "remaining_text": "—",
        "time_left": "—",
    }
    assert channel_texts("unknown-model", {"rate_ml_per_h": "12.345"}) == {"rate_text": "12.3"}


def test_other_kinds_pass_unchanged() -> None:
    alarm = _message("alarm.raised", {"pump": "P-1", "alarm": "occlusion.downstream", "priority": "high"})
    assert with_display(alarm) is alarm


def test_live_strings_group_thousands_as_the_first_render_does() -> None:
    """ISMP thousands separators ride on the live strings too: the script never formats a number."""
    channel = {"state": "running", "dose": "1250", "rate_ml_per_h": "999.6", "remaining_ml": "2500"}
    assert channel_texts("lvp-4", channel) == {
        "rate_text": "1,000",
        "dose_text": "1,250",
        "remaining_text": "2,500.0",
    }
