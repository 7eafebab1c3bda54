"""The pump's sensor inputs and their alarms: downstream occlusion (with the auto-restart hold,
SAF-OCC-04), upstream occlusion, air in line, door, container volume and empty, resistance trend."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Final

from smartpump.errors import PumpError
from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmId
from smartpump.pump.channel import Channel, ChannelState
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import ZERO
from smartpump.pump.events import EventType

OCCLUSION_RECHECK_S: Final = Decimal(30)
AUTO_RESTART_WINDOW_S: Final = Decimal(600)
_DOOR_ALARM_STATES: Final = (
    ChannelState.RUNNING,
    ChannelState.KVO,
    ChannelState.PAUSED,
    ChannelState.DELAYED,
    ChannelState.OCCLUSION_HOLD,
)


class SensorControl:
    """Sensor readings and line events of one pump's channels."""

    def __init__(self, core: PumpCore, alarming: AlarmControl) -> None:
        self.core = core
        self.alarming = alarming

    # ----------------------------------------------------------------- downstream occlusion

    def occlude_downstream(self, cid: str) -> None:
        """The line below the pump closes: pressure builds with compliance until the alarm."""
        self.core.sync()
        channel = self.core.channel(cid)
        if channel.closed_line_ml is None:
            channel.closed_line_ml = ZERO

    def _auto_restarts_in_window(self, channel: Channel) -> int:
        since = self.core.t - AUTO_RESTART_WINDOW_S
        channel.auto_restarts_s = [t for t in channel.auto_restarts_s if t > since]
        return len(channel.auto_restarts_s)

    def occlusion_detected(self, channel: Channel) -> None:
        """Pressure reached the threshold: hold for a re-check when auto-restart is configured and
        the rolling 10 min allowance is not used up (SAF-OCC-04), otherwise alarm at once."""
        core = self.core
        channel.stored_at_alarm_ml = channel.closed_line_ml
        allowed = core.care_area.device.auto_restart_attempts if core.care_area else None
        hold = bool(allowed) and self._auto_restarts_in_window(channel) < (allowed or 0)
        core.emit(
            EventType.OCCLUSION_DETECTED,
            channel.id,
            pressure_mmhg=channel.line.pressure_mmhg(channel.closed_line_ml or ZERO),
            threshold_mmhg=channel.line.threshold_mmhg,
            auto_restart=hold,
            recheck_s=OCCLUSION_RECHECK_S if hold else None,
        )
        if not hold:
            self.occlusion_alarm(channel)
            return
        channel.hold_from = channel.state
        channel.hold_until_s = core.t + OCCLUSION_RECHECK_S
        channel.move_to(ChannelState.OCCLUSION_HOLD)

    def occlusion_alarm(self, channel: Channel) -> None:
        """Downstream occlusion alarm (at once, or when the re-check window ends)."""
        channel.hold_until_s = None
        self.alarming.raise_(
            AlarmId.OCCLUSION_DOWNSTREAM,
            channel.id,
            value=channel.line.pressure_mmhg(channel.stored_at_alarm_ml or ZERO),
            limit=channel.line.threshold_mmhg,
        )

    def release_downstream(self, cid: str) -> Decimal:
        """The occlusion is relieved; returns the unintended bolus after back-off (mL)."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        stored = channel.closed_line_ml
        if stored is None:
            raise PumpError("the line is not occluded", code="pump.not_occluded")
        held = channel.state is ChannelState.OCCLUSION_HOLD
        alarmed = held or core.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, cid)
        backoff = min(stored, channel.line.backoff_ml) if alarmed else ZERO
        bolus = stored - backoff
        channel.closed_line_ml = None
        core.emit(EventType.OCCLUSION_RELEASED, cid, stored_ml=stored, backoff_ml=backoff, bolus_ml=bolus)
        self.alarming.condition_ended(AlarmId.OCCLUSION_DOWNSTREAM, cid)
        if held:
            assert channel.hold_from is not None
            channel.auto_restarts_s.append(core.t)
            channel.move_to(channel.hold_from)
            channel.hold_until_s = None
            allowed = core.care_area.device.auto_restart_attempts if core.care_area else None
            core.emit(
                EventType.OCCLUSION_AUTO_RESTARTED,
                cid,
                attempt=len(channel.auto_restarts_s),
                max_attempts=allowed,
                window_s=AUTO_RESTART_WINDOW_S,
                rate_ml_per_h=channel.flow_ml_per_h,
            )
            core.after_change()
        return bolus

    def set_occlusion_threshold(self, cid: str, threshold_mmhg: Decimal) -> None:
        """Select the downstream occlusion threshold (within the model range and the care-area maximum)."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        core.caps.check_occlusion(threshold_mmhg)
        area_max = core.care_area.device.max_occlusion_pressure_mmhg if core.care_area else None
        if area_max is not None and threshold_mmhg > area_max:
            raise PumpError(
                f"threshold {threshold_mmhg} mmHg is above the care area's {area_max} mmHg",
                code="pump.occlusion_above_care_area",
            )
        channel.line = replace(channel.line, threshold_mmhg=threshold_mmhg)

    # ----------------------------------------------------------------- upstream, air, door

    def occlude_upstream(self, cid: str) -> None:
        """No flow above the pump (closed clamp, empty bag): immediate alarm."""
        self.core.sync()
        self.alarming.raise_(AlarmId.OCCLUSION_UPSTREAM, cid, value=None, limit=None)
        self.core.after_change()

    def release_upstream(self, cid: str) -> None:
        """The upstream line is open again."""
        self.core.sync()
        self.alarming.condition_ended(AlarmId.OCCLUSION_UPSTREAM, cid)

    def air_bubble(self, cid: str, volume_ul: Decimal) -> None:
        """The air sensor sees a bubble; single and cumulative thresholds stop delivery."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        if channel.flow_ml_per_h <= 0:
            return
        area = core.care_area
        if area is not None:
            channel.air.cumulative_enabled = area.device.accumulated_air_in_line
            if area.device.air_in_line_ul is not None:
                channel.air.single_ul = area.device.air_in_line_ul
        tripped, value = channel.air.add(core.t, volume_ul)
        if tripped == "single":
            self.alarming.raise_(AlarmId.AIR_IN_LINE, cid, value=value, limit=channel.air.single_ul)
        elif tripped == "cumulative":
            self.alarming.raise_(AlarmId.AIR_CUMULATIVE, cid, value=value, limit=channel.air.cumulative_ul)
        core.after_change()

    def air_cleared(self, cid: str) -> None:
        """The line was re-primed: air conditions end (the alarms stay until cleared)."""
        self.core.sync()
        channel = self.core.channel(cid)
        channel.air.reset()
        self.alarming.condition_ended(AlarmId.AIR_IN_LINE, cid)
        self.alarming.condition_ended(AlarmId.AIR_CUMULATIVE, cid)

    def open_door(self, cid: str) -> None:
        """The channel door opens: the set clamp closes, delivery stops, alarm."""
        self.core.sync()
        channel = self.core.channel(cid)
        channel.door_open = True
        if channel.state in _DOOR_ALARM_STATES:
            self.alarming.raise_(AlarmId.DOOR_OPEN, cid, value=None, limit=None)
        self.core.after_change()

    def close_door(self, cid: str) -> None:
        """The door closes again."""
        self.core.sync()
        self.core.channel(cid).door_open = False
        self.alarming.condition_ended(AlarmId.DOOR_OPEN, cid)

    # ----------------------------------------------------------------- container, resistance

    def load_container(self, cid: str, volume_ml: Decimal) -> None:
        """Load a syringe (or a bag of known volume) on an idle channel; syringe sizes are checked."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        if channel.therapy is not None:
            raise PumpError("load a container only on an idle channel", code="pump.channel_busy")
        sizes = core.caps.syringe_sizes_ml
        if sizes and volume_ml > max(sizes):
            raise PumpError(
                f"{volume_ml} mL is more than the largest syringe ({max(sizes)} mL)", code="pump.syringe"
            )
        if volume_ml <= 0:
            raise PumpError("container volume must be positive", code="pump.container_invalid")
        channel.container_ml = volume_ml
        channel.drawn_ml = ZERO
        channel.container_near_empty_sent = False
        self.alarming.condition_ended(AlarmId.SYRINGE_EMPTY, cid)

    def container_near_empty(self, channel: Channel) -> None:
        """The container is minutes from empty: reminder alarm."""
        channel.container_near_empty_sent = True
        self.alarming.raise_(AlarmId.SYRINGE_NEAR_EMPTY, channel.id, value=None, limit=None)

    def container_empty(self, channel: Channel) -> None:
        """The container is empty: stopping alarm."""
        self.alarming.raise_(AlarmId.SYRINGE_EMPTY, channel.id, value=ZERO, limit=ZERO)

    def resistance_reading(self, cid: str, value: Decimal) -> None:
        """A downstream resistance reading; a sustained rise raises an infiltration advisory."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        advisory, ratio = channel.trend.add(value)
        if advisory and not core.alarms.is_active(AlarmId.INFILTRATION, cid):
            core.emit(
                EventType.INFILTRATION_SUSPECTED,
                cid,
                baseline=channel.trend.readings[0],
                latest=value,
                ratio=ratio,
            )
            self.alarming.raise_(AlarmId.INFILTRATION, cid, value=ratio, limit=Decimal("1.5"))
