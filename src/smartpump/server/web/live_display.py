"""The live stream's numbers for reading: each channel of a ``pump.view`` message gets
the strings its tile shows on first render (rate and volume at the pump model's resolution, dose to
significant digits, time left as h:mm) beside its exact values, so a live update reads as a reload would.

The exact values stay in the message (the script counts the time left down from ``remaining_min``); the
script shows the ``*_text`` strings and never rounds a number itself.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from smartpump.server.live import LiveMessage
from smartpump.server.services.fleet import SHOWS_DOSE
from smartpump.server.web import station
from smartpump.server.web.display import significant

DISPLAYED_KIND: Final = "pump.view"
"""The live message that carries the channels' numbers."""


def _decimal(value: object) -> Decimal | None:
    """A payload number (exact text) as a Decimal; None for a missing or unreadable one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def channel_texts(model: str, channel: dict[str, Any]) -> dict[str, str]:
    """The reading strings of one channel's exact values, by the tile's rules: ``rate_text``, and where
    the message carries them ``dose_text`` ("" when the state shows no dose), ``remaining_text`` and
    ``time_left``."""
    texts = {"rate_text": station.rate_text(model, _decimal(channel.get("rate_ml_per_h")))}
    if "dose" in channel:
        dose = _decimal(channel.get("dose"))
        shown = dose is not None and channel.get("state") in SHOWS_DOSE
        texts["dose_text"] = significant(dose) if shown else ""
    if "remaining_ml" in channel:
        texts["remaining_text"] = station.volume_text(model, _decimal(channel.get("remaining_ml")))
    if "remaining_min" in channel:
        minutes = _decimal(channel.get("remaining_min"))
        texts["time_left"] = station.hours_minutes(None if minutes is None or minutes < 0 else minutes)
    return texts


def with_display(message: LiveMessage) -> LiveMessage:
    """``message`` with the reading strings added to each channel it carries (other kinds unchanged)."""
    if message.kind != DISPLAYED_KIND:
        return message
    payload = dict(message.payload)
    model = str(payload.get("model") or "")
    channels = payload.get("channels")
    if isinstance(channels, dict):
        payload["channels"] = {
            cid: {**shown, **channel_texts(model, shown)} if isinstance(shown, dict) else shown
            for cid, shown in channels.items()
        }
    return replace(message, payload=payload)
