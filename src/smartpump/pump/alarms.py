"""The alarm catalog (one table, IEC 60601-1-8 priorities) and the alarm state of one pump.

Priorities follow 60601-1-8 Table 1: conditions that stop therapy or may deliver air are HIGH
(immediate response); conditions that need prompt attention are MEDIUM; awareness is LOW.
Latching alarms stay until the operator clears them even after the condition ends; an audio pause
lasts ``AUDIO_PAUSE_S`` and a newly raised alarm breaks through it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final

from smartpump.errors import PumpError

AUDIO_PAUSE_S: Final = Decimal(120)
PAUSED_REMINDER_S: Final = Decimal(120)
ESCALATE_AFTER_S: Final = Decimal(300)


class Priority(StrEnum):
    """IEC 60601-1-8 alarm priority."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """2 for high, 1 for medium, 0 for low."""
        return {Priority.HIGH: 2, Priority.MEDIUM: 1, Priority.LOW: 0}[self]


class AlarmId(StrEnum):
    """Every alarm condition the pump can raise."""

    OCCLUSION_DOWNSTREAM = "occlusion.downstream"
    OCCLUSION_UPSTREAM = "occlusion.upstream"
    AIR_IN_LINE = "air_in_line.single"
    AIR_CUMULATIVE = "air_in_line.cumulative"
    DOOR_OPEN = "door.open"
    SYRINGE_NEAR_EMPTY = "syringe.near_empty"
    SYRINGE_EMPTY = "syringe.empty"
    INFUSION_COMPLETE = "infusion.complete"
    NEAR_END = "infusion.near_end"
    KVO_RUNNING = "infusion.kvo"
    BATTERY_LOW = "battery.low"
    BATTERY_DEPLETED = "battery.depleted"
    AC_LOST = "power.ac_lost"
    SYSTEM_FAILURE = "system.failure"
    WATCHDOG = "system.watchdog"
    CHANNEL_PAUSED = "channel.paused_too_long"
    PCA_PAUSED = "pca.physiologic_pause"
    INFILTRATION = "infiltration.advisory"
    SET_CHANGE_DUE = "set.change_due"
    DUPLICATE_THERAPY = "therapy.duplicate"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmSpec:
    """One row of the catalog: priority, latching, whether it stops delivery, message key."""

    id: AlarmId
    priority: Priority
    latching: bool
    stops_delivery: bool
    message_key: str
    rationale: str


def _spec(
    id_: AlarmId, priority: Priority, *, latching: bool, stops: bool, rationale: str
) -> tuple[AlarmId, AlarmSpec]:
    key = "alarm." + id_.value
    return id_, AlarmSpec(
        id=id_,
        priority=priority,
        latching=latching,
        stops_delivery=stops,
        message_key=key,
        rationale=rationale,
    )


H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW

ALARMS: Final[dict[AlarmId, AlarmSpec]] = dict(
    (
        _spec(AlarmId.OCCLUSION_DOWNSTREAM, H, latching=True, stops=True, rationale="therapy interrupted"),
        _spec(AlarmId.OCCLUSION_UPSTREAM, H, latching=True, stops=True, rationale="no flow above pump"),
        _spec(AlarmId.AIR_IN_LINE, H, latching=True, stops=True, rationale="air embolism risk"),
        _spec(AlarmId.AIR_CUMULATIVE, H, latching=True, stops=True, rationale="air embolism risk"),
        _spec(AlarmId.DOOR_OPEN, H, latching=True, stops=True, rationale="free-flow risk"),
        _spec(AlarmId.SYRINGE_NEAR_EMPTY, L, latching=False, stops=False, rationale="prepare refill"),
        _spec(AlarmId.SYRINGE_EMPTY, H, latching=True, stops=True, rationale="therapy interrupted"),
        _spec(AlarmId.INFUSION_COMPLETE, M, latching=True, stops=False, rationale="VTBI delivered, KVO"),
        _spec(AlarmId.NEAR_END, L, latching=False, stops=False, rationale="prepare next container"),
        _spec(AlarmId.KVO_RUNNING, L, latching=False, stops=False, rationale="awareness"),
        _spec(AlarmId.BATTERY_LOW, M, latching=False, stops=False, rationale="power soon lost"),
        _spec(AlarmId.BATTERY_DEPLETED, H, latching=True, stops=True, rationale="therapy interrupted"),
        _spec(AlarmId.AC_LOST, L, latching=False, stops=False, rationale="running on battery"),
        _spec(AlarmId.SYSTEM_FAILURE, H, latching=True, stops=True, rationale="safe state required"),
        _spec(AlarmId.WATCHDOG, H, latching=True, stops=True, rationale="safe state required"),
        _spec(AlarmId.CHANNEL_PAUSED, L, latching=False, stops=False, rationale="therapy on hold"),
        _spec(AlarmId.PCA_PAUSED, H, latching=True, stops=True, rationale="respiratory depression"),
        _spec(AlarmId.INFILTRATION, L, latching=False, stops=False, rationale="check IV site"),
        _spec(AlarmId.SET_CHANGE_DUE, L, latching=False, stops=False, rationale="infection control"),
        _spec(AlarmId.DUPLICATE_THERAPY, M, latching=False, stops=False, rationale="possible double dose"),
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveAlarm:
    """An alarm currently shown: when raised (monotonic s), the value and limit in force, state."""

    id: AlarmId
    channel: str | None
    priority: Priority
    raised_at_s: Decimal
    value: Decimal | None
    limit: Decimal | None
    condition_active: bool = True

    @property
    def spec(self) -> AlarmSpec:
        """The catalog row."""
        return ALARMS[self.id]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmRecord:
    """One line of the alarm log (60601-1-8 6.12.2): identity, times, priority, value, limit."""

    id: AlarmId
    channel: str | None
    priority: Priority
    raised_at_s: Decimal
    cleared_at_s: Decimal | None
    value: Decimal | None
    limit: Decimal | None


class AlarmBoard:
    """The active alarms of one pump, the audio-pause state, and the alarm log (pure state)."""

    def __init__(self) -> None:
        self.active: dict[tuple[AlarmId, str | None], ActiveAlarm] = {}
        self.audio_paused_until_s: Decimal | None = None
        self.log: list[AlarmRecord] = []

    def is_active(self, alarm: AlarmId, channel: str | None) -> bool:
        """True while the alarm is shown on that channel (or device-wide for None)."""
        return (alarm, channel) in self.active

    def raise_(
        self, alarm: AlarmId, channel: str | None, t: Decimal, value: Decimal | None, limit: Decimal | None
    ) -> bool:
        """Show an alarm; returns False when it was already shown. Breaks an audio pause."""
        key = (alarm, channel)
        if key in self.active:
            current = self.active[key]
            if not current.condition_active:
                self.active[key] = replace(current, condition_active=True)
            return False
        spec = ALARMS[alarm]
        self.active[key] = ActiveAlarm(
            id=alarm, channel=channel, priority=spec.priority, raised_at_s=t, value=value, limit=limit
        )
        self.log.append(
            AlarmRecord(
                id=alarm,
                channel=channel,
                priority=spec.priority,
                raised_at_s=t,
                cleared_at_s=None,
                value=value,
                limit=limit,
            )
        )
        return True

    def condition_ended(self, alarm: AlarmId, channel: str | None, t: Decimal) -> bool:
        """The condition is gone: a non-latching alarm clears (True), a latching one stays (False)."""
        key = (alarm, channel)
        current = self.active.get(key)
        if current is None:
            return False
        if current.spec.latching:
            self.active[key] = replace(current, condition_active=False)
            return False
        self._remove(key, t)
        return True

    def clear(self, alarm: AlarmId, channel: str | None, t: Decimal) -> ActiveAlarm:
        """Operator clears (resets) an alarm; refused while its condition is still present."""
        key = (alarm, channel)
        current = self.active.get(key)
        if current is None:
            raise PumpError(f"alarm {alarm} is not active", code="pump.alarm_not_active")
        if current.condition_active and current.spec.latching and current.spec.stops_delivery:
            raise PumpError(
                f"alarm {alarm} cannot be cleared while its condition persists", code="pump.alarm_persists"
            )
        self._remove(key, t)
        return current

    def drop(self, alarm: AlarmId, channel: str | None, t: Decimal) -> bool:
        """Remove an alarm whatever its latching (used when the condition is resolved by action)."""
        key = (alarm, channel)
        if key not in self.active:
            return False
        self._remove(key, t)
        return True

    def escalate(self, alarm: AlarmId, channel: str | None, to: Priority) -> Priority:
        """Raise the priority of a shown alarm; returns the previous priority."""
        key = (alarm, channel)
        current = self.active[key]
        self.active[key] = replace(current, priority=to)
        return current.priority

    def _remove(self, key: tuple[AlarmId, str | None], t: Decimal) -> None:
        del self.active[key]
        for index in range(len(self.log) - 1, -1, -1):
            record = self.log[index]
            if (record.id, record.channel) == key and record.cleared_at_s is None:
                self.log[index] = replace(record, cleared_at_s=t)
                break

    def stops_delivery(self, channel: str) -> bool:
        """True when an active alarm on this channel, or device-wide, stops delivery."""
        return any(a.spec.stops_delivery and a.channel in (channel, None) for a in self.active.values())

    def audible(self, t: Decimal) -> bool:
        """True when some alarm is shown and the audio is not paused."""
        paused = self.audio_paused_until_s is not None and t < self.audio_paused_until_s
        return bool(self.active) and not paused

    def highest(self) -> ActiveAlarm | None:
        """The alarm to present first: highest priority, then the oldest."""
        if not self.active:
            return None
        return max(self.active.values(), key=lambda a: (a.priority.rank, -a.raised_at_s))
