"""One pump channel: its state machine, the pending program and the running therapy's accounting.

States: idle -> programmed -> (delayed | standby) -> running <-> paused; running -> alarm (a
stopping alarm) -> running on resume; running -> kvo when the VTBI is delivered; running or kvo ->
occlusion_hold (downstream pressure reached with auto-restart configured) -> back on release, or
alarm when the re-check window ends; a restored therapy comes back paused. ``TRANSITIONS`` is the one
table of legal moves and ``Channel.move_to`` the only way to change state. The channel only holds
state and exact accounting; the Pump drives transitions and emits the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from smartpump.ders.program import InfusionProgram, Verdict, VerdictLevel
from smartpump.errors import PumpError
from smartpump.pump.administration_set import AdministrationSet
from smartpump.pump.alarms import ESCALATE_AFTER_S, PAUSED_REMINDER_S
from smartpump.pump.delivery import ZERO, Overlay, Step, time_to_deliver, volume_over
from smartpump.pump.pca import PcaLedger
from smartpump.pump.sensors import AirMonitor, LineModel, ResistanceTrend


class ChannelState(StrEnum):
    """Where a channel is in its life cycle."""

    IDLE = "idle"
    PROGRAMMED = "programmed"
    DELAYED = "delayed"
    STANDBY = "standby"
    RUNNING = "running"
    PAUSED = "paused"
    ALARM = "alarm"
    KVO = "kvo"
    OCCLUSION_HOLD = "occlusion_hold"


_S = ChannelState

TRANSITIONS: Final[Mapping[ChannelState, frozenset[ChannelState]]] = MappingProxyType(
    {
        # program; a persisted therapy restored after a power cycle comes back paused
        _S.IDLE: frozenset({_S.PROGRAMMED, _S.PAUSED}),
        # cancel or reprogram; delayed start; standby; start
        _S.PROGRAMMED: frozenset({_S.IDLE, _S.DELAYED, _S.STANDBY, _S.RUNNING}),
        # stop or reprogram; a new delay; the delay ends (or start now)
        _S.DELAYED: frozenset({_S.IDLE, _S.DELAYED, _S.RUNNING}),
        # stop, cancel or reprogram; delayed start; start
        _S.STANDBY: frozenset({_S.IDLE, _S.DELAYED, _S.RUNNING}),
        # pause; stopping alarm; VTBI delivered; occlusion held for a re-check; stop
        _S.RUNNING: frozenset({_S.PAUSED, _S.ALARM, _S.KVO, _S.OCCLUSION_HOLD, _S.IDLE}),
        # resume (to kvo when the VTBI is already delivered); stopping alarm; stop
        _S.PAUSED: frozenset({_S.RUNNING, _S.KVO, _S.ALARM, _S.IDLE}),
        # resume once the alarm is cleared; stop
        _S.ALARM: frozenset({_S.RUNNING, _S.KVO, _S.IDLE}),
        # pause; stopping alarm; occlusion held for a re-check; stop
        _S.KVO: frozenset({_S.PAUSED, _S.ALARM, _S.OCCLUSION_HOLD, _S.IDLE}),
        # released within the re-check window (back where it was); re-check ends in an alarm; stop
        _S.OCCLUSION_HOLD: frozenset({_S.RUNNING, _S.KVO, _S.ALARM, _S.IDLE}),
    }
)


class Due(StrEnum):
    """Things that happen at a computed time on a channel."""

    DELAYED_START = "delayed_start"
    OVERLAY_DONE = "overlay_done"
    STEP_DONE = "step_done"
    VTBI_DONE = "vtbi_done"
    NEAR_END = "near_end"
    CONTAINER_NEAR_EMPTY = "container_near_empty"
    CONTAINER_EMPTY = "container_empty"
    OCCLUSION = "occlusion"
    PAUSED_REMINDER = "paused_reminder"
    PAUSED_ESCALATION = "paused_escalation"
    SET_CHANGE = "set_change"
    OCCLUSION_RECHECK = "occlusion_recheck"
    PCA_CEILING = "pca_ceiling"


@dataclass(slots=True, kw_only=True)
class Pending:
    """A checked program waiting for override/confirm/start (or a titration waiting to apply)."""

    program: InfusionProgram
    verdict: Verdict
    drug: str | None
    drug_id: str | None
    steps: tuple[Step, ...] = ()
    is_titration: bool = False
    auto_programmed: bool = False
    overridden: bool = False
    confirmed: bool = False
    verified: bool = False
    verification_failed: tuple[str, ...] = ()

    @property
    def is_hard(self) -> bool:
        """True when DERS refused the program outright."""
        return self.verdict.level is VerdictLevel.HARD


@dataclass(slots=True, kw_only=True)
class Therapy:
    """The infusion a channel delivers: rates, VTBI and exact volumes per destination."""

    program: InfusionProgram
    verdict: Verdict
    drug: str | None
    drug_id: str | None
    rate_ml_per_h: Decimal
    vtbi_ml: Decimal | None
    kvo_rate_ml_per_h: Decimal
    steps: list[Step] = field(default_factory=list)
    step_index: int = 0
    step_delivered_ml: Decimal = ZERO
    infused_ml: Decimal = ZERO
    kvo_ml: Decimal = ZERO
    secondary_ml: Decimal = ZERO
    overlay: Overlay | None = None
    near_end_sent: bool = False
    pca: PcaLedger | None = None
    pca_unit: str | None = None
    pca_bolus_rate_ml_per_h: Decimal | None = None

    @property
    def remaining_ml(self) -> Decimal | None:
        """Primary volume still to infuse (None when no VTBI was set)."""
        return None if self.vtbi_ml is None else self.vtbi_ml - self.infused_ml


@dataclass(slots=True, kw_only=True)
class Channel:
    """State of one channel; ``flow_ml_per_h`` is zero unless the channel is actually delivering."""

    id: str
    line: LineModel
    air: AirMonitor
    near_end_s: Decimal
    state: ChannelState = ChannelState.IDLE
    pending: Pending | None = None
    therapy: Therapy | None = None
    settled_at_s: Decimal = ZERO
    delayed_until_s: Decimal | None = None
    paused_since_s: Decimal | None = None
    paused_reminded: bool = False
    paused_escalated: bool = False
    door_open: bool = False
    closed_line_ml: Decimal | None = None
    stored_at_alarm_ml: Decimal | None = None
    container_ml: Decimal | None = None
    drawn_ml: Decimal = ZERO
    container_near_empty_sent: bool = False
    trend: ResistanceTrend = field(default_factory=ResistanceTrend)
    admin_set: AdministrationSet | None = None
    set_reminded: bool = False
    hold_until_s: Decimal | None = None
    hold_from: ChannelState | None = None
    auto_restarts_s: list[Decimal] = field(default_factory=list)
    motor_fault: bool = False

    def move_to(self, state: ChannelState) -> None:
        """Change state along ``TRANSITIONS``; a move not in the table raises ``pump.illegal_transition``."""
        if state not in TRANSITIONS[self.state]:
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[self.state]))
            raise PumpError(
                f"channel {self.id} cannot move from {self.state} to {state} (from {self.state}: {allowed})",
                code="pump.illegal_transition",
            )
        self.state = state

    @property
    def is_delivering_state(self) -> bool:
        """True in the states where the motor runs."""
        return self.state in (ChannelState.RUNNING, ChannelState.KVO)

    @property
    def flow_ml_per_h(self) -> Decimal:
        """The rate the motor runs at now."""
        therapy = self.therapy
        if therapy is None or not self.is_delivering_state:
            return ZERO
        if self.state is ChannelState.KVO:
            return therapy.kvo_rate_ml_per_h
        if therapy.overlay is not None:
            return therapy.overlay.rate_ml_per_h
        return therapy.rate_ml_per_h

    def settle(self, t: Decimal) -> None:
        """Fold the volume delivered since the last settlement into the totals (exact)."""
        therapy = self.therapy
        elapsed = t - self.settled_at_s
        self.settled_at_s = t
        flow = self.flow_ml_per_h
        if therapy is None or flow <= 0 or elapsed <= 0:
            return
        volume = volume_over(flow, elapsed)
        caps: list[Decimal] = []
        if self.state is ChannelState.KVO:
            therapy.kvo_ml += self._capped(volume, caps)
            self.drawn_ml += volume
            self._into_line(volume)
            return
        overlay = therapy.overlay
        if overlay is not None:
            caps.append(overlay.remaining_ml)
            if overlay.kind.from_primary_container and therapy.remaining_ml is not None:
                caps.append(therapy.remaining_ml)
            volume = self._capped(volume, caps)
            overlay.delivered_ml += volume
            if overlay.kind.from_primary_container:
                therapy.infused_ml += volume
                self.drawn_ml += volume
            else:
                therapy.secondary_ml += volume
            self._into_line(volume)
            return
        if therapy.remaining_ml is not None:
            caps.append(therapy.remaining_ml)
        if therapy.steps:
            caps.append(therapy.steps[therapy.step_index].volume_ml - therapy.step_delivered_ml)
        volume = self._capped(volume, caps)
        therapy.infused_ml += volume
        therapy.step_delivered_ml += volume
        self.drawn_ml += volume
        self._into_line(volume)

    @staticmethod
    def _capped(volume: Decimal, caps: list[Decimal]) -> Decimal:
        return min([volume, *caps]) if caps else volume

    def _into_line(self, volume: Decimal) -> None:
        if self.closed_line_ml is not None:
            self.closed_line_ml += volume

    def dues(self, t: Decimal) -> list[tuple[Decimal, Due]]:
        """Absolute times of everything this channel will do next if nothing else happens."""
        found: list[tuple[Decimal, Due]] = []
        if self.state is ChannelState.DELAYED and self.delayed_until_s is not None:
            found.append((self.delayed_until_s, Due.DELAYED_START))
        if self.state is ChannelState.PAUSED and self.paused_since_s is not None:
            if not self.paused_reminded:
                found.append((self.paused_since_s + PAUSED_REMINDER_S, Due.PAUSED_REMINDER))
            elif not self.paused_escalated:
                found.append(
                    (self.paused_since_s + PAUSED_REMINDER_S + ESCALATE_AFTER_S, Due.PAUSED_ESCALATION)
                )
        if self.admin_set is not None and not self.set_reminded:
            found.append((self.admin_set.change_due_at_s, Due.SET_CHANGE))
        if self.state is ChannelState.OCCLUSION_HOLD and self.hold_until_s is not None:
            found.append((self.hold_until_s, Due.OCCLUSION_RECHECK))
        flow = self.flow_ml_per_h
        therapy = self.therapy
        if therapy is None or flow <= 0:
            return found
        if self.closed_line_ml is not None:
            left = max(ZERO, self.line.stored_at_alarm_ml - self.closed_line_ml)
            found.append((t + time_to_deliver(left, flow), Due.OCCLUSION))
        if self.container_ml is not None:
            self._container_dues(t, flow, found)
        if self.state is ChannelState.KVO:
            return found
        if therapy.pca is not None:
            to_ceiling = therapy.pca.basal_time_to_ceiling_s(t)
            if to_ceiling is not None:
                found.append((t + to_ceiling, Due.PCA_CEILING))
        overlay = therapy.overlay
        remaining = therapy.remaining_ml
        if overlay is not None:
            left = overlay.remaining_ml
            if overlay.kind.from_primary_container and remaining is not None:
                left = min(left, remaining)
            found.append((t + time_to_deliver(left, flow), Due.OVERLAY_DONE))
            return found
        if therapy.steps:
            step_left = therapy.steps[therapy.step_index].volume_ml - therapy.step_delivered_ml
            if therapy.step_index < len(therapy.steps) - 1:
                found.append((t + time_to_deliver(step_left, flow), Due.STEP_DONE))
        if remaining is not None:
            found.append((t + time_to_deliver(remaining, flow), Due.VTBI_DONE))
            if not therapy.near_end_sent:
                near_volume = volume_over(flow, self.near_end_s)
                lead = max(ZERO, remaining - near_volume)
                found.append((t + time_to_deliver(lead, flow), Due.NEAR_END))
        return found

    def _container_dues(self, t: Decimal, flow: Decimal, found: list[tuple[Decimal, Due]]) -> None:
        assert self.container_ml is not None
        therapy = self.therapy
        if (
            therapy is not None
            and therapy.overlay is not None
            and not therapy.overlay.kind.from_primary_container
        ):
            return
        left = max(ZERO, self.container_ml - self.drawn_ml)
        found.append((t + time_to_deliver(left, flow), Due.CONTAINER_EMPTY))
        if not self.container_near_empty_sent:
            lead = max(ZERO, left - volume_over(flow, self.near_end_s))
            found.append((t + time_to_deliver(lead, flow), Due.CONTAINER_NEAR_EMPTY))
