"""The central station's rules: a tile's state and alarm look, the fleet's order, the state filter, and
times and flows for reading (h:mm, the pump model's resolution).

Alarm colours follow IEC 60601-1-8 (Table 2): high red, medium yellow, low cyan; the priority is also
written out with an icon ("!!!", "!!", "!") so it never depends on colour alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any, Final, Protocol, TypeVar

from smartpump.errors import PumpError
from smartpump.pump import capabilities
from smartpump.server.errors import InvalidInputError
from smartpump.server.services.fleet_view import PRIORITY_RANK
from smartpump.server.web.display import NOTHING, at_resolution, significant


class TileState(StrEnum):
    """What a tile is doing, in the order the station lists them."""

    ALARMING = "alarming"
    RUNNING = "running"
    IDLE = "idle"
    OFFLINE = "offline"


STATE_ORDER: Final = {state: index for index, state in enumerate(TileState)}
IN_USE_STATES: Final = frozenset({"running", "paused", "alarm", "kvo", "occlusion_hold"})
"""Channel states that count as an infusion under way (the pump sorts with the running ones)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmLook:
    """How one priority is shown: its icon and word beside its IEC 60601-1-8 colour."""

    priority: str
    icon: str
    word: str
    colour: str


ALARM_LOOKS: Final = {
    "high": AlarmLook(priority="high", icon="!!!", word="HIGH", colour="red"),
    "medium": AlarmLook(priority="medium", icon="!!", word="MEDIUM", colour="yellow"),
    "low": AlarmLook(priority="low", icon="!", word="LOW", colour="cyan"),
}


class StationTile(Protocol):
    """What the station's rules read of a tile."""

    @property
    def serial(self) -> str: ...
    @property
    def offline(self) -> bool: ...
    @property
    def alarms(self) -> list[dict[str, Any]]: ...
    @property
    def channels(self) -> Sequence[Any]: ...


_T = TypeVar("_T", bound=StationTile)


def tile_state(tile: StationTile) -> TileState:
    """Alarming when any alarm is active (even on a pump gone silent: it was active at last contact),
    else offline when the pump is silent or offline, else running when a channel infuses, else idle."""
    if tile.alarms:
        return TileState.ALARMING
    if tile.offline:
        return TileState.OFFLINE
    if any(channel.state in IN_USE_STATES for channel in tile.channels):
        return TileState.RUNNING
    return TileState.IDLE


def top_alarm(tile: StationTile) -> dict[str, Any] | None:
    """The alarm the tile is coloured by: the highest priority, then the oldest (None: no alarm)."""
    if not tile.alarms:
        return None
    return min(tile.alarms, key=lambda a: (PRIORITY_RANK.get(a["priority"], len(PRIORITY_RANK)), a["since"]))


def look_of(priority: str) -> AlarmLook:
    """The look of a priority (an unknown one looks low: it is still shown, never hidden)."""
    return ALARM_LOOKS.get(priority, ALARM_LOOKS["low"])


def alarm_label(alarm: dict[str, Any]) -> str:
    """An alarm in words: priority word, alarm id and channel ("HIGH · occlusion.downstream A")."""
    where = f" {alarm['channel']}" if alarm.get("channel") else ""
    return f"{look_of(alarm['priority']).word} · {alarm['alarm']}{where}"


def sort_key(tile: StationTile) -> tuple[int, int, float, str]:
    """Alarming first (highest priority, then oldest alarm), then running, idle, silent/offline; by serial."""
    state = tile_state(tile)
    alarm = top_alarm(tile)
    if alarm is None:
        return STATE_ORDER[state], 0, 0.0, tile.serial
    since: datetime = alarm["since"]
    rank = PRIORITY_RANK.get(alarm["priority"], len(PRIORITY_RANK))
    return STATE_ORDER[state], rank, since.timestamp(), tile.serial


def station_order(tiles: Iterable[_T]) -> list[_T]:
    """The tiles in the station's order (``sort_key``)."""
    return sorted(tiles, key=sort_key)


def parse_state(text: str | None) -> TileState | None:
    """The state filter from the URL: empty means every state; anything else unknown is refused."""
    if not text:
        return None
    try:
        return TileState(text)
    except ValueError:
        known = ", ".join(s.value for s in TileState)
        raise InvalidInputError(f"unknown state {text!r} (known: {known})", code="ui.fleet_state") from None


def hours_minutes(minutes: Decimal | None) -> str:
    """Minutes as h:mm, whole minutes rounded down so the time left is never overstated
    (1366.2 -> "22:46", 0.6 -> "0:00"); "—" for None; a negative time is refused."""
    if minutes is None:
        return NOTHING
    if not minutes.is_finite() or minutes < 0:
        raise ValueError(f"a time left must be a finite non-negative number of minutes, got {minutes}")
    whole = int(minutes.to_integral_value(rounding=ROUND_FLOOR))
    return f"{whole // 60}:{whole % 60:02d}"


def rate_text(model: str, rate_ml_per_h: Decimal | None) -> str:
    """A rate at the model's programming resolution for that rate ("13.0", "150"); 3 significant digits
    for an unknown model."""
    if rate_ml_per_h is None:
        return NOTHING
    try:
        caps = capabilities(model)
    except PumpError:
        return significant(rate_ml_per_h)
    return at_resolution(rate_ml_per_h, caps.resolution_at(rate_ml_per_h))


def volume_text(model: str, volume_ml: Decimal | None) -> str:
    """A volume at the model's VTBI resolution ("250.0"); 3 significant digits for an unknown model."""
    if volume_ml is None:
        return NOTHING
    try:
        caps = capabilities(model)
    except PumpError:
        return significant(volume_ml)
    return at_resolution(volume_ml, caps.vtbi_resolution_ml)
