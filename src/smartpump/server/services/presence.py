"""Presence: the one rule that says whether a pump is online, idle, silent or offline.

A pump is heard by any message (events, heartbeat, hello); its link state is the retained ``online`` or
the broker's last-will ``offline``. With ``offline_after_s`` the one setting:

* ``offline``: the link says offline (last will), or the pump was never heard;
* ``silent``: heard before, but nothing for more than ``offline_after_s`` while the link does not say
  offline (connected yet mute, or its link state unknown);
* ``idle``: heard within ``offline_after_s`` and every channel idle;
* ``online``: heard within ``offline_after_s`` with at least one channel not idle.

A pump sends its heartbeat every ``interval_s`` (30 s by default) even when idle, so an idle pump that
heartbeats is never silent or offline; ``offline_after_s`` should hold three heartbeat intervals or more.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final

from smartpump.pump.channel import ChannelState

IDLE_STATES: Final = frozenset({ChannelState.IDLE})


class Presence(StrEnum):
    """A pump's presence as the server judges it."""

    ONLINE = "online"
    IDLE = "idle"
    SILENT = "silent"
    OFFLINE = "offline"

    @property
    def reachable(self) -> bool:
        """True when the pump was heard recently enough to take a command (online or idle)."""
        return self in (Presence.ONLINE, Presence.IDLE)


def presence_of(
    *,
    now: datetime,
    last_heard: datetime | None,
    link_online: bool | None,
    channel_states: Iterable[str],
    offline_after_s: float,
) -> Presence:
    """The presence of one pump (``link_online`` None: no link state known)."""
    if link_online is False or last_heard is None:
        return Presence.OFFLINE
    if (now - last_heard).total_seconds() > offline_after_s:
        return Presence.SILENT
    if all(state in IDLE_STATES for state in channel_states):
        return Presence.IDLE
    return Presence.ONLINE
