"""The central station's rules for one pump tile, the same for the first render and every live update: what
the tile is doing, the alarm it is coloured by, its place in the station's order, and how an alarm priority
is shown.

Alarm colours are the pump's own (``pump.alarms.SIGNALS``, IEC 60601-1-8 Table 2: high red, medium yellow,
low cyan); the priority is also written out with an icon ("!!!", "!!", "!") so it never depends on colour
alone. The browser renders these values and never recomputes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from smartpump.pump.alarms import SIGNALS, Priority
from smartpump.pump.channel import ChannelState


class TileState(StrEnum):
    """What a tile is doing, in the order the station lists them."""

    ALARMING = "alarming"
    RUNNING = "running"
    IDLE = "idle"
    OFFLINE = "offline"


STATE_ORDER: Final = {state: index for index, state in enumerate(TileState)}
IN_USE_STATES: Final = frozenset(
    {
        ChannelState.RUNNING,
        ChannelState.PAUSED,
        ChannelState.ALARM,
        ChannelState.KVO,
        ChannelState.OCCLUSION_HOLD,
    }
)
"""Channel states that count as an infusion under way (the pump sorts with the running ones)."""
PRIORITY_ORDER: Final[dict[str, int]] = {p: 2 - p.rank for p in Priority}
"""0 for high, 1 for medium, 2 for low: the order alarms are presented in; an unknown priority comes last."""
_UNKNOWN_RANK: Final = len(PRIORITY_ORDER)
_SINCE_DIGITS: Final = 15


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmLook:
    """How one priority is shown: its icon and word beside its IEC 60601-1-8 colour."""

    priority: Priority
    icon: str
    word: str

    @property
    def colour(self) -> str:
        """The pump's visual signal colour for this priority."""
        return SIGNALS[self.priority].colour


ALARM_LOOKS: Final = {
    Priority.HIGH: AlarmLook(priority=Priority.HIGH, icon="!!!", word="HIGH"),
    Priority.MEDIUM: AlarmLook(priority=Priority.MEDIUM, icon="!!", word="MEDIUM"),
    Priority.LOW: AlarmLook(priority=Priority.LOW, icon="!", word="LOW"),
}


def look_of(priority: str) -> AlarmLook:
    """The look of a priority (an unknown one looks low: it is still shown, never hidden)."""
    return ALARM_LOOKS[Priority(priority)] if priority in PRIORITY_ORDER else ALARM_LOOKS[Priority.LOW]


def alarm_label(alarm: Mapping[str, Any]) -> str:
    """An alarm in words: priority word, alarm id and channel ("HIGH · occlusion.downstream A")."""
    where = f" {alarm['channel']}" if alarm.get("channel") else ""
    return f"{look_of(alarm['priority']).word} · {alarm['alarm']}{where}"


def presentation_key(alarm: Mapping[str, Any]) -> tuple[int, datetime]:
    """Alarms are presented highest priority first, then the oldest."""
    return PRIORITY_ORDER.get(alarm["priority"], _UNKNOWN_RANK), alarm["since"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TileLook:
    """What a tile shows of its pump: its state, the alarm it is coloured by (None: none) and its sort key, a
    text that orders tiles as the station lists them when compared as plain strings (server and browser)."""

    state: TileState
    top: Mapping[str, Any] | None
    sort_key: str

    @property
    def priority(self) -> str:
        """The top alarm's priority, or "" without an alarm."""
        return "" if self.top is None else str(self.top["priority"])


def tile_look(
    serial: str, alarms: Sequence[Mapping[str, Any]], *, offline: bool, channel_states: Iterable[str]
) -> TileLook:
    """The look of one tile. Alarming when any alarm is active (even on a pump gone silent: it was active at
    last contact), else offline when the pump is silent or offline, else running when a channel infuses,
    else idle. The order: alarming first (highest priority, then oldest alarm), then running, idle,
    silent/offline; by serial. ``alarms`` carry ``priority`` and ``since`` (an aware datetime)."""
    top = min(alarms, key=presentation_key) if alarms else None
    if top is not None:
        state = TileState.ALARMING
    elif offline:
        state = TileState.OFFLINE
    elif any(s in IN_USE_STATES for s in channel_states):
        state = TileState.RUNNING
    else:
        state = TileState.IDLE
    rank, since_ms = (
        (0, 0) if top is None else (presentation_key(top)[0], int(top["since"].timestamp() * 1000))
    )
    return TileLook(
        state=state, top=top, sort_key=f"{STATE_ORDER[state]}{rank}{since_ms:0{_SINCE_DIGITS}d} {serial}"
    )
