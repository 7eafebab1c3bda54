"""The alarm catalog (one table, IEC 60601-1-8 priorities), the alarm signals per priority, and the
alarm state of one pump.

Priorities follow 60601-1-8 Table 1: conditions that stop therapy or may deliver air are HIGH
(immediate response); conditions that need prompt attention are MEDIUM; awareness is LOW.
Latching alarms stay until the operator clears them even after the condition ends; an audio pause
lasts ``AUDIO_PAUSE_S`` and a newly raised alarm breaks through it. ``SIGNALS`` holds the visual and
auditory encoding per priority (60601-1-8 Tables 2/3); a condition that ends at once still sounds
for ``min_audible_s`` of its priority (6.10) unless the operator inactivates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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


class EndedBy(StrEnum):
    """Why a shown alarm left the board (the ``by`` of ``alarm.cleared``)."""

    OPERATOR = "operator"
    CONDITION_ENDED = "condition_ended"
    RESUMED = "resumed"
    STOPPED = "stopped"
    SET_CHANGED = "set_changed"
    SUPERSEDED = "superseded"


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
    PCA_MAX_DOSE = "pca.max_dose_reached"
    INFILTRATION = "infiltration.advisory"
    SET_CHANGE_DUE = "set.change_due"
    DUPLICATE_THERAPY = "therapy.duplicate"
    STATE_INTEGRITY = "state.integrity_failed"
    MOTOR_RATE_MISMATCH = "motor.rate_mismatch"
    SECONDARY_CALLBACK = "secondary.callback"


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
        _spec(
            AlarmId.PCA_MAX_DOSE,
            M,
            latching=True,
            stops=False,
            rationale="PCA maximum reached: basal suspended, demands denied; nurse review",
        ),
        _spec(AlarmId.INFILTRATION, L, latching=False, stops=False, rationale="check IV site"),
        _spec(AlarmId.SET_CHANGE_DUE, L, latching=False, stops=False, rationale="infection control"),
        _spec(AlarmId.DUPLICATE_THERAPY, M, latching=False, stops=False, rationale="possible double dose"),
        _spec(
            AlarmId.STATE_INTEGRITY,
            H,
            latching=True,
            stops=True,
            rationale="stored therapy state refused: therapy interrupted, reprogram",
        ),
        _spec(
            AlarmId.MOTOR_RATE_MISMATCH,
            H,
            latching=True,
            stops=True,
            rationale="actuator rate differs from the displayed program",
        ),
        _spec(
            AlarmId.SECONDARY_CALLBACK,
            M,
            latching=True,
            stops=False,
            rationale="piggyback ended as the nurse asked to be called back; the primary runs again",
        ),
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmSignal:
    """How one priority is signalled: light colour and flashing, burst of pulses, repeat, minimum sound."""

    priority: Priority
    colour: str
    flash_hz: Decimal | None
    duty_percent: Decimal
    pulses_per_burst: int
    pulse_s: Decimal
    pulse_spacing_s: Decimal
    inter_burst_s: Decimal | None
    min_burst_fraction: Decimal

    @property
    def burst_s(self) -> Decimal:
        """Duration of one burst: its pulses and the spacing between them."""
        return self.pulses_per_burst * self.pulse_s + (self.pulses_per_burst - 1) * self.pulse_spacing_s

    @property
    def min_audible_s(self) -> Decimal:
        """How long the signal sounds at least once raised, even if the condition ends at once."""
        return self.burst_s * self.min_burst_fraction


SIGNALS: Final[dict[Priority, AlarmSignal]] = {
    H: AlarmSignal(
        priority=H,
        colour="red",
        flash_hz=Decimal(2),
        duty_percent=Decimal(50),
        pulses_per_burst=10,
        pulse_s=Decimal("0.15"),
        pulse_spacing_s=Decimal("0.1"),
        inter_burst_s=Decimal(7),
        min_burst_fraction=Decimal("0.5"),
    ),
    M: AlarmSignal(
        priority=M,
        colour="yellow",
        flash_hz=Decimal("0.6"),
        duty_percent=Decimal(50),
        pulses_per_burst=3,
        pulse_s=Decimal("0.2"),
        pulse_spacing_s=Decimal("0.2"),
        inter_burst_s=Decimal(15),
        min_burst_fraction=Decimal(1),
    ),
    L: AlarmSignal(
        priority=L,
        colour="cyan",
        flash_hz=None,
        duty_percent=Decimal(100),
        pulses_per_burst=2,
        pulse_s=Decimal("0.2"),
        pulse_spacing_s=Decimal("0.2"),
        inter_burst_s=None,
        min_burst_fraction=Decimal(0),
    ),
}


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


@dataclass(slots=True, kw_only=True)
class AlarmBoard:
    """The active alarms of one pump, the audio-pause state, the signals still finishing their minimum
    burst after their condition ended (``tails``: key -> (until s, priority)), and the alarm log."""

    catalog: Mapping[AlarmId, AlarmSpec] = field(default_factory=lambda: ALARMS)
    signals: Mapping[Priority, AlarmSignal] = field(default_factory=lambda: SIGNALS)
    active: dict[tuple[AlarmId, str | None], ActiveAlarm] = field(default_factory=dict)
    audio_paused_until_s: Decimal | None = None
    log: list[AlarmRecord] = field(default_factory=list)
    tails: dict[tuple[AlarmId, str | None], tuple[Decimal, Priority]] = field(default_factory=dict)

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
        spec = self.catalog[alarm]
        self.tails.pop(key, None)
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
        if self.catalog[alarm].latching:
            self.active[key] = replace(current, condition_active=False)
            return False
        self._remove(key, t, inactivated=False)
        return True

    def clear(self, alarm: AlarmId, channel: str | None, t: Decimal) -> ActiveAlarm:
        """Operator clears (resets) an alarm; refused while its condition is still present."""
        key = (alarm, channel)
        current = self.active.get(key)
        if current is None:
            raise PumpError(f"alarm {alarm} is not active", code="pump.alarm_not_active")
        spec = self.catalog[alarm]
        if current.condition_active and spec.latching and spec.stops_delivery:
            raise PumpError(
                f"alarm {alarm} cannot be cleared while its condition persists", code="pump.alarm_persists"
            )
        self._remove(key, t, inactivated=True)
        return current

    def drop(self, alarm: AlarmId, channel: str | None, t: Decimal) -> bool:
        """Remove an alarm whatever its latching (used when the condition is resolved by action)."""
        key = (alarm, channel)
        if key not in self.active:
            return False
        self._remove(key, t, inactivated=True)
        return True

    def escalate(self, alarm: AlarmId, channel: str | None, to: Priority) -> Priority:
        """Raise the priority of a shown alarm; returns the previous priority."""
        key = (alarm, channel)
        current = self.active[key]
        self.active[key] = replace(current, priority=to)
        return current.priority

    def _remove(self, key: tuple[AlarmId, str | None], t: Decimal, *, inactivated: bool) -> None:
        removed = self.active.pop(key)
        until = removed.raised_at_s + self.signals[removed.priority].min_audible_s
        if not inactivated and until > t:
            self.tails[key] = (until, removed.priority)
        for index in range(len(self.log) - 1, -1, -1):
            record = self.log[index]
            if (record.id, record.channel) == key and record.cleared_at_s is None:
                self.log[index] = replace(record, cleared_at_s=t)
                break

    def stops_delivery(self, channel: str) -> bool:
        """True when an active alarm on this channel, or device-wide, stops delivery."""
        return any(
            self.catalog[a.id].stops_delivery and a.channel in (channel, None) for a in self.active.values()
        )

    def pause_audio(self, until_s: Decimal) -> None:
        """Audio pause (an operator inactivation): silences shown alarms and ends finishing bursts."""
        self.audio_paused_until_s = until_s
        self.tails.clear()

    def sounding(self, t: Decimal) -> Priority | None:
        """The priority of the auditory signal at time t (None when silent or audio-paused)."""
        if self.audio_paused_until_s is not None and t < self.audio_paused_until_s:
            return None
        priorities = [a.priority for a in self.active.values()]
        priorities += [priority for until, priority in self.tails.values() if t < until]
        return max(priorities, key=lambda p: p.rank) if priorities else None

    def audible(self, t: Decimal) -> bool:
        """True when an alarm sounds at time t: one is shown, or a short one is finishing its burst."""
        return self.sounding(t) is not None

    def presented(self) -> list[ActiveAlarm]:
        """Every shown alarm in presentation order: highest priority, oldest, channel, id (total order)."""
        return sorted(
            self.active.values(),
            key=lambda a: (-a.priority.rank, a.raised_at_s, a.channel or "", a.id.value),
        )

    def highest(self) -> ActiveAlarm | None:
        """The alarm to present first: highest priority, then the oldest (ties by channel and id)."""
        shown = self.presented()
        return shown[0] if shown else None
