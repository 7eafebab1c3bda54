"""The Pump: channels, alarms, power, installed library and configuration; every action and computed
occurrence is an event.

Time comes only from the injected Clock. Before each action the pump plays, in order, everything
that was due since the last call (VTBI reached, occlusion alarm, battery low...) at its exact
computed time, so results do not depend on how often it is called. Volumes integrate on the
monotonic reading only; the wall clock stamps events, and a jump of it is logged (SAF-CLK-01).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, NoReturn

from smartpump.clock import Clock
from smartpump.ders.check import check
from smartpump.ders.program import Alert, InfusionProgram, ProgramKind, Verdict, VerdictLevel
from smartpump.errors import LibraryError, ProgramError, PumpError, SignatureError, SmartpumpError
from smartpump.library.model import CareArea, DrugLibrary
from smartpump.library.signing import SignedLibrary, verify
from smartpump.pump.administration_set import AdministrationSet
from smartpump.pump.alarms import ALARMS, AUDIO_PAUSE_S, AlarmBoard, AlarmId, AlarmRecord, Priority
from smartpump.pump.capabilities import Capabilities, PumpModel, capabilities
from smartpump.pump.channel import Channel, ChannelState, Due, Pending, Therapy
from smartpump.pump.configuration import (
    ConfigurationSettings,
    PumpConfiguration,
    SignedConfiguration,
    content_sha256,
    factory_settings,
    verify_configuration,
)
from smartpump.pump.delivery import ZERO, Overlay, OverlayKind, Step, seconds, steps_total_ml, time_to_deliver
from smartpump.pump.events import EventLog, EventType, EventValue, PumpEvent
from smartpump.pump.hardware import RATE_CHECK_PERIOD_S, HardwarePort, RateCheck
from smartpump.pump.pca import Denial, DoseKind, PcaLedger
from smartpump.pump.persistence import (
    STATE_FORMAT,
    check_key,
    number,
    open_state,
    program_from_dict,
    program_to_dict,
    required,
    seal_state,
    steps_from_list,
    steps_to_list,
    text,
)
from smartpump.pump.sensors import BATTERY_DEPLETED_MIN, BATTERY_LOW_MIN, AirMonitor, Battery, LineModel
from smartpump.pump.verification import BedsideScan, Expected, mismatches
from smartpump.units import round_half_up

CHANNEL_IDS: Final = ("A", "B", "C", "D")
DEFAULT_PCA_BOLUS_RATE_ML_PER_H: Final = Decimal(60)
OCCLUSION_RECHECK_S: Final = Decimal(30)
AUTO_RESTART_WINDOW_S: Final = Decimal(600)
CLOCK_JUMP_THRESHOLD: Final = timedelta(seconds=1)


class OverrideReason(StrEnum):
    """Coded reasons a clinician gives when overriding a soft limit."""

    PRESCRIBER_ORDER = "prescriber_order"
    PATIENT_CONDITION = "patient_condition"
    TITRATION_PROTOCOL = "titration_protocol"
    VERIFIED_WITH_PHARMACY = "verified_with_pharmacy"
    OTHER = "other"


class _DeviceDue(StrEnum):
    AUDIO_RESUME = "audio_resume"
    BATTERY_LOW = "battery_low"
    BATTERY_DEPLETED = "battery_depleted"
    RATE_CHECK = "rate_check"


def _exact_s(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


def alert_data(alerts: tuple[Alert, ...]) -> list[dict[str, EventValue]]:
    """Alerts as event data: rule, parameter, limit kind, limit, value, unit, factor, level."""
    return [
        {
            "rule": a.rule,
            "parameter": a.parameter,
            "limit_kind": a.limit_kind.value,
            "limit": a.limit,
            "value": a.value,
            "unit": a.unit,
            "factor": a.factor,
            "level": a.level.value,
        }
        for a in alerts
    ]


def deliverable_data(verdict: Verdict) -> list[dict[str, EventValue]]:
    """Deliverable alternatives as event data: rate, VTBI and the dose each delivers."""
    return [
        {"rate_ml_per_h": d.rate_ml_per_h, "vtbi_ml": d.vtbi_ml, "dose": d.dose} for d in verdict.deliverable
    ]


class Pump:
    """A smart infusion pump of one model; pure state machine driven by actions and a Clock.

    ``configuration`` is the active service configuration (None: the factory default, version 0);
    ``require_verification=True`` demands bedside verification until a configuration activates, which
    then sets it.
    """

    def __init__(
        self,
        pump_id: str,
        model: PumpModel | str,
        clock: Clock,
        *,
        channels: int | None = None,
        next_seq: int = 1,
        library: DrugLibrary | None = None,
        battery_charge_min: Decimal | None = None,
        require_verification: bool = False,
        hardware: HardwarePort | None = None,
        configuration: PumpConfiguration | None = None,
    ) -> None:
        self.id = pump_id
        self.caps: Capabilities = capabilities(model)
        if configuration is not None and configuration.model is not self.caps.model:
            raise PumpError(
                f"configuration is for the {configuration.model} model, not {self.caps.model}",
                code="pump.configuration_model",
            )
        count = channels if channels is not None else self.caps.max_channels
        if not 1 <= count <= self.caps.max_channels:
            raise PumpError(
                f"{self.caps.model} has 1-{self.caps.max_channels} channels, not {count}",
                code="pump.channels",
            )
        self._clock = clock
        self._t = seconds(clock.monotonic_s())
        self._wall_offset = clock.now() - timedelta(seconds=clock.monotonic_s())
        self._hardware = hardware
        self._commanded: dict[str, Decimal] = {}
        self._rate_checked_at_s = self._t
        self.events = EventLog(pump_id, next_seq=next_seq)
        self.alarms = AlarmBoard()
        self.library: DrugLibrary | None = library
        self.pending_library: DrugLibrary | None = None
        self.care_area: CareArea | None = None
        self.patient_id: str | None = None
        self.configuration: PumpConfiguration | None = configuration
        self.pending_configuration: PumpConfiguration | None = None
        self.settings: ConfigurationSettings = (
            configuration.settings if configuration is not None else factory_settings(self.caps.model)
        )
        self.require_verification = require_verification or self.settings.require_verification
        self.faulted = False
        self.battery = Battery(
            capacity_min=self.caps.battery_capacity_min,
            extra_load_per_channel=self.caps.battery_extra_load_per_channel,
            charge_per_min=self.caps.battery_charge_per_min,
            charge_min=battery_charge_min
            if battery_charge_min is not None
            else self.caps.battery_capacity_min,
            settled_at_s=self._t,
        )
        self.channels: dict[str, Channel] = {cid: self._new_channel(cid) for cid in CHANNEL_IDS[:count]}
        self._emit(
            EventType.PUMP_STARTED,
            None,
            model=self.caps.model.value,
            channels=count,
            library_version=library.version if library else None,
            resumed_from_seq=next_seq - 1,
        )
        self._check_rates("power_on")

    # ----------------------------------------------------------------- time and events

    @property
    def now_s(self) -> Decimal:
        """The pump's current monotonic time in Decimal seconds."""
        return self._t

    @property
    def configuration_version(self) -> int:
        """Version of the active configuration; 0 is the factory default."""
        return self.configuration.version if self.configuration is not None else 0

    @property
    def next_seq(self) -> int:
        """The seq the next event will get: persist it so seq survives a restart."""
        return self.events.next_seq

    def _ts(self, t: Decimal) -> datetime:
        lag = seconds(self._clock.monotonic_s()) - t
        return self._clock.now() - timedelta(seconds=float(lag))

    def _emit(self, type_: EventType, channel: str | None, **data: EventValue) -> PumpEvent:
        return self.events.append(type_, self._ts(self._t), channel, data)

    def _new_channel(self, cid: str) -> Channel:
        return Channel(
            id=cid,
            line=LineModel(
                threshold_mmhg=self.caps.default_occlusion_mmhg,
                compliance_ul_per_mmhg=self.caps.line_compliance_ul_per_mmhg,
                backoff_ml=self.caps.occlusion_backoff_ml,
            ),
            air=AirMonitor(
                single_ul=self.caps.air_single_bubble_ul,
                cumulative_ul=self.caps.air_cumulative_ul,
                window_s=self.caps.air_cumulative_window_min * 60,
            ),
            near_end_s=Decimal(self.settings.near_end_alert_min) * 60,
            settled_at_s=self._t,
        )

    def channel(self, cid: str) -> Channel:
        """The channel with this id (A-D)."""
        try:
            return self.channels[cid]
        except KeyError:
            raise PumpError(
                f"no channel {cid!r} (channels: {', '.join(self.channels)})", code="pump.no_channel"
            ) from None

    def next_due_s(self) -> Decimal | None:
        """When the next computed occurrence falls (absolute monotonic s), or None."""
        dues = [t for t, _, _ in self._dues()]
        return min(dues) if dues else None

    def _dues(self) -> Iterator[tuple[Decimal, str | None, Due | _DeviceDue]]:
        for channel in self.channels.values():
            for t, due in channel.dues(self._t):
                yield t, channel.id, due
        if self.alarms.audio_paused_until_s is not None:
            yield self.alarms.audio_paused_until_s, None, _DeviceDue.AUDIO_RESUME
        if not self.alarms.is_active(AlarmId.BATTERY_LOW, None):
            low = self.battery.time_until_remaining_s(self._t, BATTERY_LOW_MIN)
            if low is not None:
                yield low, None, _DeviceDue.BATTERY_LOW
        if not self.alarms.is_active(AlarmId.BATTERY_DEPLETED, None):
            depleted = self.battery.time_until_remaining_s(self._t, BATTERY_DEPLETED_MIN)
            if depleted is not None:
                yield depleted, None, _DeviceDue.BATTERY_DEPLETED
        if self._hardware is not None:
            yield self._rate_checked_at_s + RATE_CHECK_PERIOD_S, None, _DeviceDue.RATE_CHECK

    def sync(self) -> None:
        """Play everything due up to the clock's present, each at its own time."""
        target = seconds(self._clock.monotonic_s())
        if target < self._t:
            raise PumpError("the pump clock went backwards", code="pump.clock_backwards")
        self._watch_wall_clock()
        while True:
            dues = [d for d in self._dues() if d[0] <= target]
            if not dues:
                break
            t, cid, due = min(dues, key=lambda d: d[0])
            self._advance(max(t, self._t))
            if isinstance(due, _DeviceDue):
                self._device_due(due)
            else:
                assert cid is not None
                self._channel_due(self.channels[cid], due)
            self._after_change()
        self._advance(target)

    def _watch_wall_clock(self) -> None:
        """Log a jump of the wall clock against the monotonic clock (set by hand, NTP step, RTC reset),
        stamped with the new wall time at which it was seen; later events carry the new time basis."""
        now = self._clock.now()
        offset = now - timedelta(seconds=self._clock.monotonic_s())
        jump = offset - self._wall_offset
        self._wall_offset = offset
        if abs(jump) > CLOCK_JUMP_THRESHOLD:
            data: dict[str, EventValue] = {
                "jump_s": _exact_s(jump),
                "expected_utc": (now - jump).isoformat(),
                "clock_utc": now.isoformat(),
            }
            self.events.append(EventType.CLOCK_CHANGED, now, None, data)

    def _check_rates(self, trigger: str) -> None:
        """SAF-DISP-01: write each channel's set-point when it changed, then compare the displayed
        rate, the read-back set-point and the encoder; a divergence cuts motor power and alarms."""
        hardware = self._hardware
        if hardware is None:
            return
        self._rate_checked_at_s = self._t
        for channel in self.channels.values():
            if channel.motor_fault:
                continue
            displayed = channel.flow_ml_per_h
            cause = trigger
            if self._commanded.get(channel.id) != displayed:
                hardware.command_rate(channel.id, displayed)
                self._commanded[channel.id] = displayed
                cause = "rate_change"
            reading = RateCheck(
                displayed_ml_per_h=displayed,
                setpoint_ml_per_h=hardware.setpoint_ml_per_h(channel.id),
                actuator_ml_per_h=hardware.encoder_rate_ml_per_h(channel.id),
                tolerance_ml_per_h=self.caps.resolution_at(displayed) / 2,
            )
            if not reading.agrees:
                self._motor_mismatch(channel, reading, cause)

    def _motor_mismatch(self, channel: Channel, reading: RateCheck, cause: str) -> None:
        hardware = self._hardware
        assert hardware is not None
        channel.motor_fault = True
        hardware.cut_motor_power(channel.id)
        hardware.command_rate(channel.id, ZERO)
        self._commanded[channel.id] = ZERO
        self._emit(
            EventType.MOTOR_RATE_MISMATCH,
            channel.id,
            displayed_ml_per_h=reading.displayed_ml_per_h,
            setpoint_ml_per_h=reading.setpoint_ml_per_h,
            actuator_ml_per_h=reading.actuator_ml_per_h,
            tolerance_ml_per_h=reading.tolerance_ml_per_h,
            trigger=cause,
        )
        wrong = reading.actuator_ml_per_h
        if abs(reading.setpoint_ml_per_h - reading.displayed_ml_per_h) > reading.tolerance_ml_per_h:
            wrong = reading.setpoint_ml_per_h
        self._raise(AlarmId.MOTOR_RATE_MISMATCH, channel.id, value=wrong, limit=reading.displayed_ml_per_h)

    def _advance(self, t: Decimal) -> None:
        for channel in self.channels.values():
            channel.settle(t)
        self._t = t

    def _after_change(self) -> None:
        """Keep derived state consistent: motor set-points, battery load, PCA basal segments, and the
        pending library and configuration, which activate only once every channel is idle."""
        self._check_rates("action")
        delivering = sum(1 for c in self.channels.values() if c.flow_ml_per_h > 0)
        if delivering != self.battery.delivering_channels:
            self.battery.settle(self._t)
            self.battery.delivering_channels = delivering
        for channel in self.channels.values():
            therapy = channel.therapy
            if therapy is not None and therapy.pca is not None:
                basal_flowing = channel.state is ChannelState.RUNNING and therapy.rate_ml_per_h > 0
                therapy.pca.basal_running(self._t, basal_flowing)
        if self.pending_library is not None and self._all_idle():
            self._activate_library()
        if self.pending_configuration is not None and self._all_idle():
            self._activate_configuration()

    # ----------------------------------------------------------------- due handlers

    def _device_due(self, due: _DeviceDue) -> None:
        if due is _DeviceDue.RATE_CHECK:
            self._check_rates("periodic")
        elif due is _DeviceDue.AUDIO_RESUME:
            self.alarms.audio_paused_until_s = None
            self._emit(EventType.ALARM_AUDIO_RESUMED, None, reason="pause_expired")
        elif due is _DeviceDue.BATTERY_LOW:
            remaining = self.battery.remaining_min(self._t)
            self._emit(EventType.BATTERY_LOW, None, remaining_min=remaining)
            self._raise(AlarmId.BATTERY_LOW, None, value=remaining, limit=BATTERY_LOW_MIN)
        else:
            remaining = self.battery.remaining_min(self._t)
            self._emit(EventType.BATTERY_DEPLETED, None, remaining_min=remaining)
            self._raise(AlarmId.BATTERY_DEPLETED, None, value=remaining, limit=BATTERY_DEPLETED_MIN)

    def _channel_due(self, channel: Channel, due: Due) -> None:
        therapy = channel.therapy
        match due:
            case Due.DELAYED_START:
                channel.delayed_until_s = None
                self._begin(channel)
            case Due.PAUSED_REMINDER:
                channel.paused_reminded = True
                self._raise(AlarmId.CHANNEL_PAUSED, channel.id, value=None, limit=None)
            case Due.PAUSED_ESCALATION:
                channel.paused_escalated = True
                previous = self.alarms.escalate(AlarmId.CHANNEL_PAUSED, channel.id, Priority.MEDIUM)
                self._emit(
                    EventType.ALARM_ESCALATED,
                    channel.id,
                    alarm=AlarmId.CHANNEL_PAUSED.value,
                    from_priority=previous.value,
                    to_priority=Priority.MEDIUM.value,
                )
            case Due.SET_CHANGE:
                channel.set_reminded = True
                admin = channel.admin_set
                assert admin is not None
                self._emit(
                    EventType.SET_CHANGE_DUE,
                    channel.id,
                    set_type=admin.set_type,
                    lot=admin.lot,
                    installed_h_ago=(self._t - admin.installed_at_s) / 3600,
                )
                self._raise(AlarmId.SET_CHANGE_DUE, channel.id, value=None, limit=Decimal(admin.change_due_h))
            case Due.OCCLUSION:
                self._occlusion_detected(channel)
            case Due.OCCLUSION_RECHECK:
                self._occlusion_alarm(channel)
            case Due.CONTAINER_NEAR_EMPTY:
                channel.container_near_empty_sent = True
                self._raise(AlarmId.SYRINGE_NEAR_EMPTY, channel.id, value=None, limit=None)
            case Due.CONTAINER_EMPTY:
                self._raise(AlarmId.SYRINGE_EMPTY, channel.id, value=ZERO, limit=ZERO)
            case Due.NEAR_END:
                assert therapy is not None and therapy.remaining_ml is not None
                therapy.near_end_sent = True
                self._emit(
                    EventType.NEAR_END_REACHED,
                    channel.id,
                    remaining_ml=therapy.remaining_ml,
                    remaining_min=therapy.remaining_ml * 60 / therapy.rate_ml_per_h,
                )
                self._raise(AlarmId.NEAR_END, channel.id, value=therapy.remaining_ml, limit=None)
            case Due.STEP_DONE:
                assert therapy is not None
                therapy.step_index += 1
                therapy.step_delivered_ml = ZERO
                step = therapy.steps[therapy.step_index]
                old = therapy.rate_ml_per_h
                therapy.rate_ml_per_h = step.rate_ml_per_h
                self._emit(
                    EventType.STEP_STARTED,
                    channel.id,
                    step=therapy.step_index + 1,
                    rate_ml_per_h=step.rate_ml_per_h,
                    volume_ml=step.volume_ml,
                )
                self._rate_changed(channel, old, "multistep")
            case Due.OVERLAY_DONE:
                self._overlay_done(channel)
            case Due.VTBI_DONE:
                self._complete(channel)

    def _auto_restarts_in_window(self, channel: Channel) -> int:
        since = self._t - AUTO_RESTART_WINDOW_S
        channel.auto_restarts_s = [t for t in channel.auto_restarts_s if t > since]
        return len(channel.auto_restarts_s)

    def _occlusion_detected(self, channel: Channel) -> None:
        """Pressure reached the threshold: hold for a re-check when auto-restart is configured and
        the rolling 10 min allowance is not used up (SAF-OCC-04), otherwise alarm at once."""
        channel.stored_at_alarm_ml = channel.closed_line_ml
        allowed = self.care_area.device.auto_restart_attempts if self.care_area else None
        hold = bool(allowed) and self._auto_restarts_in_window(channel) < (allowed or 0)
        self._emit(
            EventType.OCCLUSION_DETECTED,
            channel.id,
            pressure_mmhg=channel.line.pressure_mmhg(channel.closed_line_ml or ZERO),
            threshold_mmhg=channel.line.threshold_mmhg,
            auto_restart=hold,
            recheck_s=OCCLUSION_RECHECK_S if hold else None,
        )
        if not hold:
            self._occlusion_alarm(channel)
            return
        channel.hold_from = channel.state
        channel.hold_until_s = self._t + OCCLUSION_RECHECK_S
        channel.state = ChannelState.OCCLUSION_HOLD

    def _occlusion_alarm(self, channel: Channel) -> None:
        channel.hold_until_s = None
        self._raise(
            AlarmId.OCCLUSION_DOWNSTREAM,
            channel.id,
            value=channel.line.pressure_mmhg(channel.stored_at_alarm_ml or ZERO),
            limit=channel.line.threshold_mmhg,
        )

    def _overlay_done(self, channel: Channel) -> None:
        therapy = channel.therapy
        assert therapy is not None and therapy.overlay is not None
        overlay = therapy.overlay
        therapy.overlay = None
        if overlay.kind is OverlayKind.SECONDARY:
            self._emit(
                EventType.SECONDARY_COMPLETED,
                channel.id,
                volume_ml=overlay.delivered_ml,
                primary_rate_ml_per_h=therapy.rate_ml_per_h,
            )
        else:
            self._emit(
                EventType.BOLUS_COMPLETED, channel.id, kind=overlay.kind.value, volume_ml=overlay.delivered_ml
            )
        if therapy.remaining_ml is not None and therapy.remaining_ml <= 0:
            self._complete(channel)

    def _complete(self, channel: Channel) -> None:
        therapy = channel.therapy
        assert therapy is not None
        if therapy.overlay is not None:
            self._emit(
                EventType.BOLUS_CANCELLED,
                channel.id,
                kind=therapy.overlay.kind.value,
                delivered_ml=therapy.overlay.delivered_ml,
                reason="vtbi_reached",
            )
            therapy.overlay = None
        self.alarms.condition_ended(AlarmId.NEAR_END, channel.id, self._t)
        self._emit(
            EventType.INFUSION_COMPLETED, channel.id, infused_ml=therapy.infused_ml, vtbi_ml=therapy.vtbi_ml
        )
        channel.state = ChannelState.KVO
        self._raise(AlarmId.INFUSION_COMPLETE, channel.id, value=therapy.infused_ml, limit=therapy.vtbi_ml)
        self._emit(EventType.KVO_STARTED, channel.id, rate_ml_per_h=therapy.kvo_rate_ml_per_h)

    # ----------------------------------------------------------------- alarms

    def _raise(
        self, alarm: AlarmId, cid: str | None, *, value: Decimal | None, limit: Decimal | None
    ) -> None:
        if not self.alarms.raise_(alarm, cid, self._t, value, limit):
            return
        spec = ALARMS[alarm]
        self._emit(
            EventType.ALARM_RAISED,
            cid,
            alarm=alarm.value,
            priority=spec.priority.value,
            latching=spec.latching,
            stops_delivery=spec.stops_delivery,
            value=value,
            limit=limit,
            message=spec.message_key,
        )
        if self.alarms.audio_paused_until_s is not None and self._t < self.alarms.audio_paused_until_s:
            self.alarms.audio_paused_until_s = None
            self._emit(EventType.ALARM_AUDIO_RESUMED, cid, reason="new_alarm")
        if spec.stops_delivery:
            targets = self.channels.values() if cid is None else [self.channels[cid]]
            for channel in targets:
                self._stop_for_alarm(channel)

    def _stop_for_alarm(self, channel: Channel) -> None:
        if channel.state not in (
            ChannelState.RUNNING,
            ChannelState.KVO,
            ChannelState.PAUSED,
            ChannelState.OCCLUSION_HOLD,
        ):
            return
        channel.hold_until_s = None
        therapy = channel.therapy
        if (
            therapy is not None
            and therapy.overlay is not None
            and therapy.overlay.kind is not OverlayKind.SECONDARY
        ):
            self._emit(
                EventType.BOLUS_CANCELLED,
                channel.id,
                kind=therapy.overlay.kind.value,
                delivered_ml=therapy.overlay.delivered_ml,
                reason="alarm",
            )
            therapy.overlay = None
        self._clear_paused(channel)
        channel.state = ChannelState.ALARM

    def _condition_ended(self, alarm: AlarmId, cid: str | None) -> None:
        if self.alarms.condition_ended(alarm, cid, self._t):
            self._emit(EventType.ALARM_CLEARED, cid, alarm=alarm.value, by="condition_ended", duration_s=None)

    def silence(self) -> None:
        """Audio pause (2 min) of the alarms now sounding; a new alarm breaks through."""
        self.sync()
        if not self.alarms.active and not self.alarms.audible(self._t):
            raise PumpError("no alarm is sounding", code="pump.no_alarm")
        self.alarms.pause_audio(self._t + AUDIO_PAUSE_S)
        self._emit(
            EventType.ALARM_SILENCED,
            None,
            alarms=sorted(a.id.value for a in self.alarms.active.values()),
            pause_s=AUDIO_PAUSE_S,
        )

    def clear_alarm(self, alarm: AlarmId | str, cid: str | None = None) -> None:
        """The operator resets an alarm whose condition has ended (latching alarms need this)."""
        self.sync()
        alarm_id = AlarmId(alarm)
        removed = self.alarms.clear(alarm_id, cid, self._t)
        self._emit(
            EventType.ALARM_CLEARED,
            cid,
            alarm=alarm_id.value,
            by="operator",
            duration_s=self._t - removed.raised_at_s,
        )
        if alarm_id is AlarmId.INFUSION_COMPLETE and cid is not None:
            self.alarms.condition_ended(AlarmId.INFUSION_COMPLETE, cid, self._t)
        self._after_change()

    def alarm_log(self) -> list[AlarmRecord]:
        """Every alarm raised, with times, priority, the triggering value and the limit in force."""
        return list(self.alarms.log)

    # ----------------------------------------------------------------- programming

    def select_care_area(self, care_area: str) -> CareArea:
        """Choose the care area (profile) whose limits apply; refused while any channel infuses."""
        self.sync()
        library = self._library()
        if not self._all_idle():
            raise PumpError(
                "the care area cannot change while a channel is in use", code="pump.care_area_locked"
            )
        area = library.care_area(care_area)
        self.care_area = area
        self._emit(EventType.CARE_AREA_SELECTED, None, care_area=area.id, library_version=library.version)
        return area

    def set_patient(self, patient_id: str) -> None:
        """Associate the pump with a patient (wristband scanned at power-on)."""
        if not patient_id.strip():
            raise PumpError("patient id is empty", code="pump.patient_invalid")
        self.patient_id = patient_id

    def program(
        self,
        cid: str,
        program: InfusionProgram,
        *,
        steps: tuple[Step, ...] = (),
        auto_programmed: bool = False,
    ) -> Verdict:
        """Check a new program (or, on a running channel, a titration) with DERS; emits program.checked."""
        self.sync()
        channel = self.channel(cid)
        if channel.pending is not None:
            raise PumpError(
                "a program is already pending on this channel: reprogram or cancel it",
                code="pump.program_pending",
            )
        return self._check_and_hold(channel, program, steps, auto_programmed)

    def reprogram(
        self,
        cid: str,
        program: InfusionProgram,
        *,
        steps: tuple[Step, ...] = (),
        auto_programmed: bool = False,
    ) -> Verdict:
        """Replace a pending program (answer to a hard stop or soft alert); emits program.reprogrammed."""
        self.sync()
        channel = self.channel(cid)
        pending = self._pending(channel)
        self._emit(
            EventType.PROGRAM_REPROGRAMMED,
            cid,
            previous_verdict=pending.verdict.level.value,
            previous_alerts=alert_data(pending.verdict.alerts),
            entry_id=pending.verdict.entry_id,
        )
        channel.pending = None
        if channel.therapy is None:
            channel.state = ChannelState.IDLE
        return self._check_and_hold(channel, program, steps, auto_programmed)

    def cancel(self, cid: str) -> None:
        """Abandon a pending program; a running infusion continues unchanged."""
        self.sync()
        channel = self.channel(cid)
        pending = self._pending(channel)
        self._emit(
            EventType.PROGRAM_CANCELLED,
            cid,
            verdict=pending.verdict.level.value,
            entry_id=pending.verdict.entry_id,
            alerts=alert_data(pending.verdict.alerts),
        )
        channel.pending = None
        if channel.state in (ChannelState.PROGRAMMED, ChannelState.STANDBY):
            channel.state = ChannelState.IDLE
        self._after_change()

    def override(self, cid: str, reason: OverrideReason | str) -> None:
        """Accept the soft alerts of the pending program with a coded reason; emits alert.overridden."""
        self.sync()
        channel = self.channel(cid)
        pending = self._pending(channel)
        try:
            code = OverrideReason(reason)
        except ValueError:
            raise PumpError(
                f"override reason {reason!r} is not one of {', '.join(r.value for r in OverrideReason)}",
                code="pump.override_reason",
            ) from None
        if pending.verdict.level is not VerdictLevel.SOFT:
            raise PumpError(
                f"a {pending.verdict.level} verdict cannot be overridden", code="pump.override_not_allowed"
            )
        pending.overridden = True
        self._emit(
            EventType.ALERT_OVERRIDDEN,
            cid,
            reason=code.value,
            entry_id=pending.verdict.entry_id,
            drug=pending.drug,
            alerts=alert_data(pending.verdict.alerts),
            library_version=self._library().version,
        )

    def confirm(self, cid: str) -> None:
        """Confirm the pending program (applies a titration at once); refused after a hard stop."""
        self.sync()
        channel = self.channel(cid)
        pending = self._pending(channel)
        if pending.is_hard:
            self._refuse_start(cid, "pump.hard_stop", "a hard limit was crossed: reprogram or cancel")
        if pending.verdict.level is VerdictLevel.SOFT and not pending.overridden:
            self._refuse_start(cid, "pump.override_required", "soft alerts need an override with a reason")
        pending.confirmed = True
        self._emit(
            EventType.PROGRAM_CONFIRMED,
            cid,
            entry_id=pending.verdict.entry_id,
            rate_ml_per_h=pending.verdict.rate_ml_per_h,
            vtbi_ml=pending.program.vtbi_ml,
            verdict=pending.verdict.level.value,
            overridden=pending.overridden,
        )
        if pending.is_titration:
            self._apply_titration(channel, pending)

    def start(self, cid: str, *, delay_s: Decimal | None = None) -> None:
        """Start (or schedule) the confirmed program; refused with the reason when not allowed."""
        self.sync()
        channel = self.channel(cid)
        pending = channel.pending
        if pending is None or pending.is_titration:
            self._refuse_start(cid, "pump.nothing_to_start", "no confirmed program on this channel")
        if pending.is_hard:
            self._refuse_start(cid, "pump.hard_stop", "a hard limit was crossed: reprogram or cancel")
        if not pending.confirmed:
            self._refuse_start(cid, "pump.not_confirmed", "confirm the program before starting")
        if self.require_verification and not pending.verified:
            reason = "; ".join(pending.verification_failed) or "bedside verification not done"
            self._refuse_start(cid, "pump.not_verified", reason)
        self._refuse_if_unsafe(channel)
        if delay_s is not None:
            if delay_s <= 0:
                raise PumpError("a delayed start needs a positive delay", code="pump.delay_invalid")
            channel.state = ChannelState.DELAYED
            channel.delayed_until_s = self._t + delay_s
            self._emit(EventType.INFUSION_SCHEDULED, cid, start_in_s=delay_s)
            return
        self._begin(channel)
        self._after_change()

    def standby(self, cid: str) -> None:
        """Hold a confirmed program without delivering until ``start`` is called."""
        self.sync()
        channel = self.channel(cid)
        pending = self._pending(channel)
        if not pending.confirmed or channel.state is not ChannelState.PROGRAMMED:
            raise PumpError(
                "only a confirmed program that has not started can go to standby", code="pump.standby"
            )
        channel.state = ChannelState.STANDBY
        self._emit(EventType.INFUSION_STANDBY, cid, until_s=None)

    def _refuse_if_unsafe(self, channel: Channel) -> None:
        if self.faulted:
            self._refuse_start(channel.id, "pump.faulted", "the pump failed a safety check")
        if channel.motor_fault:
            self._refuse_start(
                channel.id, "pump.motor_fault", "the motor rate check failed: service the pump"
            )
        if channel.door_open:
            self._refuse_start(channel.id, "pump.door_open", "close the door before starting")
        if self.alarms.stops_delivery(channel.id):
            self._refuse_start(channel.id, "pump.alarm_active", "clear the stopping alarm first")

    def _refuse_start(self, cid: str, code: str, reason: str) -> NoReturn:
        self._emit(EventType.START_REFUSED, cid, code=code, reason=reason)
        raise PumpError(reason, code=code)

    def _pending(self, channel: Channel) -> Pending:
        if channel.pending is None:
            raise PumpError("no program is pending on this channel", code="pump.no_pending_program")
        return channel.pending

    def _library(self) -> DrugLibrary:
        if self.library is None:
            raise PumpError("no drug library is installed", code="pump.no_library")
        return self.library

    def _area(self) -> CareArea:
        if self.care_area is None:
            raise PumpError("select a care area first", code="pump.no_care_area")
        return self.care_area

    def _check(self, program: InfusionProgram) -> Verdict:
        library, area = self._library(), self._area()
        first = check(
            library, area, replace(program, rate_resolution_ml_per_h=self.caps.finest_resolution_ml_per_h)
        )
        resolution = self.caps.resolution_at(first.rate_ml_per_h_exact)
        if resolution == self.caps.finest_resolution_ml_per_h:
            return first
        return check(library, area, replace(program, rate_resolution_ml_per_h=resolution))

    def _check_and_hold(
        self, channel: Channel, program: InfusionProgram, steps: tuple[Step, ...], auto_programmed: bool
    ) -> Verdict:
        library, area = self._library(), self._area()
        if steps:
            program = replace(program, rate_ml_per_h=steps[0].rate_ml_per_h, vtbi_ml=steps_total_ml(steps))
        try:
            verdict = self._check(program)
            for step in steps[1:]:
                step_verdict = self._check(replace(program, rate_ml_per_h=step.rate_ml_per_h))
                if step_verdict.level.rank > verdict.level.rank:
                    verdict = step_verdict
            if verdict.level is not VerdictLevel.HARD:
                self._device_limits(channel, program, verdict, steps)
        except (ProgramError, PumpError, LibraryError) as error:
            self._emit(
                EventType.PROGRAM_REFUSED,
                channel.id,
                code=error.code,
                reason=error.message,
                entry_id=program.entry_id,
                care_area=area.id,
            )
            raise
        drug = library.drug(library.entry(verdict.entry_id).drug_id) if verdict.entry_id else None
        is_titration = channel.therapy is not None and channel.state not in (ChannelState.IDLE,)
        channel.pending = Pending(
            program=program,
            verdict=verdict,
            drug=drug.shown_name if drug else None,
            drug_id=drug.id if drug else None,
            steps=steps,
            is_titration=is_titration,
            auto_programmed=auto_programmed,
        )
        if not is_titration:
            channel.state = ChannelState.PROGRAMMED
        self._emit(
            EventType.PROGRAM_CHECKED,
            channel.id,
            entry_id=verdict.entry_id,
            drug=drug.shown_name if drug else None,
            care_area=area.id,
            kind=program.kind.value,
            dose=verdict.dose,
            dose_unit=verdict.dose_unit,
            dose_programmed=verdict.dose_programmed,
            rate_ml_per_h=verdict.rate_ml_per_h,
            rate_ml_per_h_exact=verdict.rate_ml_per_h_exact,
            rate_resolution_ml_per_h=program.rate_resolution_ml_per_h,
            vtbi_ml=verdict.vtbi_ml,
            duration_min=program.duration_min,
            concentration=str(program.concentration) if program.concentration is not None else None,
            route=program.route.value,
            weight_kg=program.patient.weight_kg,
            height_cm=program.patient.height_cm,
            bsa_m2=verdict.bsa_m2,
            verdict=verdict.level.value,
            alerts=alert_data(verdict.alerts),
            deliverable=deliverable_data(verdict),
            library_version=library.version,
            is_basic=verdict.entry_id is None,
            auto_programmed=auto_programmed,
            is_titration=is_titration,
        )
        return verdict

    def _device_limits(
        self, channel: Channel, program: InfusionProgram, verdict: Verdict, steps: tuple[Step, ...]
    ) -> None:
        if program.kind is ProgramKind.PCA:
            self._check_rate_cap(self._pca_bolus_rate(program))
        else:
            for rate in [s.rate_ml_per_h for s in steps] or [verdict.rate_ml_per_h]:
                self._check_rate(rate)
        if program.vtbi_ml is not None:
            self.caps.check_vtbi(program.vtbi_ml)
            if channel.container_ml is not None and program.vtbi_ml > channel.container_ml - channel.drawn_ml:
                raise PumpError(
                    f"VTBI {program.vtbi_ml} mL is more than the "
                    f"{channel.container_ml - channel.drawn_ml} mL left in the container",
                    code="pump.vtbi_exceeds_container",
                )
        if verdict.entry_id is not None:
            entry = self._library().entry(verdict.entry_id)
            if entry.devices and self.caps.device_type not in entry.devices:
                raise PumpError(
                    f"entry {entry.id} is not for a {self.caps.device_type} pump",
                    code="pump.device_not_allowed",
                )

    def _check_rate(self, rate_ml_per_h: Decimal) -> None:
        """The model's range and resolution, then the configured rate cap."""
        self.caps.check_rate(rate_ml_per_h)
        self._check_rate_cap(rate_ml_per_h)

    def _check_rate_cap(self, rate_ml_per_h: Decimal) -> None:
        """Refuse a rate above the configuration's cap (a hard limit set by biomedical engineering)."""
        cap = self.settings.max_rate_ml_per_h
        if cap is not None and rate_ml_per_h > cap:
            raise PumpError(
                f"rate {rate_ml_per_h} mL/h is above the {cap} mL/h rate cap "
                f"of configuration v{self.configuration_version}",
                code="pump.rate_cap",
            )

    def _apply_titration(self, channel: Channel, pending: Pending) -> None:
        therapy = channel.therapy
        assert therapy is not None
        old = therapy.rate_ml_per_h
        therapy.program = pending.program
        therapy.verdict = pending.verdict
        therapy.rate_ml_per_h = pending.verdict.rate_ml_per_h
        therapy.kvo_rate_ml_per_h = self._kvo_rate(therapy.rate_ml_per_h)
        if pending.program.vtbi_ml is not None:
            therapy.vtbi_ml = max(pending.program.vtbi_ml, therapy.infused_ml)
        therapy.near_end_sent = False
        channel.pending = None
        self._rate_changed(channel, old, "titration")
        self._after_change()

    def _rate_changed(self, channel: Channel, old: Decimal, cause: str) -> None:
        therapy = channel.therapy
        assert therapy is not None
        self._emit(
            EventType.RATE_CHANGED,
            channel.id,
            old_rate_ml_per_h=old,
            new_rate_ml_per_h=therapy.rate_ml_per_h,
            dose=therapy.verdict.dose,
            dose_unit=therapy.verdict.dose_unit,
            cause=cause,
        )

    def _kvo_rate(self, rate: Decimal) -> Decimal:
        area_kvo = self.care_area.device.kvo_rate_ml_per_h if self.care_area else None
        kvo = area_kvo if area_kvo is not None else self.settings.kvo_rate_ml_per_h
        return min(kvo, rate) if rate > 0 else ZERO

    def _begin(self, channel: Channel) -> None:
        pending = channel.pending
        assert pending is not None
        program, verdict = pending.program, pending.verdict
        rate = verdict.rate_ml_per_h
        therapy = Therapy(
            program=program,
            verdict=verdict,
            drug=pending.drug,
            drug_id=pending.drug_id,
            rate_ml_per_h=rate,
            vtbi_ml=program.vtbi_ml,
            kvo_rate_ml_per_h=self._kvo_rate(rate),
            steps=list(pending.steps),
        )
        if program.kind is ProgramKind.PCA:
            self._setup_pca(therapy)
        channel.pending = None
        channel.therapy = therapy
        channel.state = ChannelState.RUNNING
        channel.settled_at_s = self._t
        self._emit(
            EventType.INFUSION_STARTED,
            channel.id,
            entry_id=verdict.entry_id,
            drug=pending.drug,
            care_area=verdict.care_area_id,
            rate_ml_per_h=therapy.rate_ml_per_h,
            vtbi_ml=therapy.vtbi_ml,
            dose=verdict.dose,
            dose_unit=verdict.dose_unit,
            library_version=self._library().version,
            is_basic=verdict.entry_id is None,
            auto_programmed=pending.auto_programmed,
        )
        self._check_duplicates(channel)
        if therapy.pca is not None and program.pca is not None and program.pca.loading_dose:
            self._pca_dose(channel, program.pca.loading_dose, DoseKind.LOADING, OverlayKind.PCA_LOADING)

    def _check_duplicates(self, channel: Channel) -> None:
        therapy = channel.therapy
        if therapy is None or therapy.drug_id is None:
            return
        same = [
            c.id
            for c in self.channels.values()
            if c.therapy is not None
            and c.therapy.drug_id == therapy.drug_id
            and c.state is not ChannelState.IDLE
        ]
        if len(same) > 1:
            self._emit(EventType.DUPLICATE_THERAPY_DETECTED, channel.id, drug=therapy.drug, channels=same)
            self._raise(AlarmId.DUPLICATE_THERAPY, channel.id, value=Decimal(len(same)), limit=Decimal(1))

    # ----------------------------------------------------------------- running infusion

    def pause(self, cid: str, *, reason: str = "user") -> None:
        """Pause a running channel (delivery stops at once)."""
        self.sync()
        channel = self.channel(cid)
        if channel.state not in (ChannelState.RUNNING, ChannelState.KVO):
            raise PumpError(f"channel {cid} is {channel.state}, not running", code="pump.not_running")
        channel.state = ChannelState.PAUSED
        channel.paused_since_s = self._t
        self._emit(EventType.INFUSION_PAUSED, cid, infused_ml=self._infused(channel), reason=reason)
        self._after_change()

    def resume(self, cid: str) -> None:
        """Resume a paused channel, or one stopped by an alarm once that alarm is cleared."""
        self.sync()
        channel = self.channel(cid)
        if channel.state not in (ChannelState.PAUSED, ChannelState.ALARM):
            raise PumpError(f"channel {cid} is {channel.state}, not paused", code="pump.not_paused")
        self._refuse_if_unsafe(channel)
        therapy = channel.therapy
        assert therapy is not None
        self._clear_paused(channel)
        done = therapy.remaining_ml is not None and therapy.remaining_ml <= 0
        channel.state = ChannelState.KVO if done else ChannelState.RUNNING
        self._emit(EventType.INFUSION_RESUMED, cid, rate_ml_per_h=channel.flow_ml_per_h)
        self._after_change()

    def _clear_paused(self, channel: Channel) -> None:
        channel.paused_since_s = None
        channel.paused_reminded = False
        channel.paused_escalated = False
        if self.alarms.drop(AlarmId.CHANNEL_PAUSED, channel.id, self._t):
            self._emit(
                EventType.ALARM_CLEARED,
                channel.id,
                alarm=AlarmId.CHANNEL_PAUSED.value,
                by="resumed",
                duration_s=None,
            )

    def stop(self, cid: str, *, reason: str = "user") -> None:
        """End the therapy on a channel; the channel returns to idle."""
        self.sync()
        channel = self.channel(cid)
        if channel.therapy is None and channel.state not in (ChannelState.DELAYED, ChannelState.STANDBY):
            raise PumpError(f"channel {cid} has no infusion to stop", code="pump.not_running")
        self._clear_paused(channel)
        self._emit(EventType.INFUSION_STOPPED, cid, infused_ml=self._infused(channel), reason=reason)
        for alarm in (AlarmId.INFUSION_COMPLETE, AlarmId.NEAR_END, AlarmId.DUPLICATE_THERAPY):
            if self.alarms.drop(alarm, cid, self._t):
                self._emit(EventType.ALARM_CLEARED, cid, alarm=alarm.value, by="stopped", duration_s=None)
        channel.therapy = None
        channel.pending = None
        channel.delayed_until_s = None
        channel.state = ChannelState.IDLE
        self._after_change()

    def _infused(self, channel: Channel) -> Decimal:
        return channel.therapy.infused_ml if channel.therapy is not None else ZERO

    def bolus(self, cid: str, program: InfusionProgram, *, override: OverrideReason | None = None) -> Verdict:
        """A bolus or loading dose from the running infusion, DERS-checked (dose over a duration)."""
        self.sync()
        channel = self.channel(cid)
        therapy = channel.therapy
        if channel.state is not ChannelState.RUNNING or therapy is None:
            raise PumpError("a bolus needs a running infusion", code="pump.not_running")
        if therapy.overlay is not None:
            raise PumpError("a bolus or secondary is already running", code="pump.overlay_running")
        if program.kind not in (ProgramKind.BOLUS, ProgramKind.LOADING):
            raise PumpError("a bolus program must be of kind bolus or loading", code="pump.bolus_kind")
        if program.duration_min is None:
            raise PumpError("a bolus needs a duration", code="pump.bolus_duration")
        verdict = self._overlay_check(channel, program, override)
        volume = round_half_up(
            verdict.rate_ml_per_h_exact * program.duration_min / 60, self.caps.vtbi_resolution_ml
        )
        if therapy.remaining_ml is not None and volume > therapy.remaining_ml:
            raise PumpError(
                f"bolus volume {volume} mL exceeds the {therapy.remaining_ml} mL left",
                code="pump.bolus_exceeds_vtbi",
            )
        kind = OverlayKind.BOLUS if program.kind is ProgramKind.BOLUS else OverlayKind.LOADING
        self._start_overlay(channel, kind, verdict.rate_ml_per_h, volume, verdict.dose, verdict.dose_unit)
        return verdict

    def secondary(
        self, cid: str, program: InfusionProgram, *, override: OverrideReason | None = None
    ) -> Verdict:
        """A secondary (piggyback) infusion; the primary resumes when its VTBI is delivered."""
        self.sync()
        channel = self.channel(cid)
        therapy = channel.therapy
        if channel.state is not ChannelState.RUNNING or therapy is None:
            raise PumpError("a secondary needs a running primary", code="pump.not_running")
        if therapy.overlay is not None:
            raise PumpError("a bolus or secondary is already running", code="pump.overlay_running")
        if not self._area().device.secondary_allowed:
            raise PumpError(
                "this care area does not allow secondary infusions", code="pump.secondary_not_allowed"
            )
        if program.vtbi_ml is None:
            raise PumpError("a secondary needs a VTBI", code="pump.secondary_vtbi")
        verdict = self._overlay_check(channel, program, override)
        overlay = Overlay(
            kind=OverlayKind.SECONDARY,
            rate_ml_per_h=verdict.rate_ml_per_h,
            volume_ml=program.vtbi_ml,
            dose=verdict.dose,
            dose_unit=verdict.dose_unit,
            entry_id=verdict.entry_id,
        )
        therapy.overlay = overlay
        self._emit(
            EventType.SECONDARY_STARTED,
            cid,
            entry_id=verdict.entry_id,
            rate_ml_per_h=verdict.rate_ml_per_h,
            vtbi_ml=program.vtbi_ml,
        )
        self._after_change()
        return verdict

    def _overlay_check(
        self, channel: Channel, program: InfusionProgram, override: OverrideReason | None
    ) -> Verdict:
        saved = channel.pending
        channel.pending = None
        try:
            verdict = self._check_and_hold(channel, program, (), False)
        finally:
            channel.pending = saved
        if verdict.level is VerdictLevel.HARD:
            self._refuse_start(channel.id, "pump.hard_stop", "a hard limit was crossed: reprogram")
        if verdict.level is VerdictLevel.SOFT:
            if override is None:
                self._refuse_start(
                    channel.id, "pump.override_required", "soft alerts need an override with a reason"
                )
            drug = None
            if verdict.entry_id is not None:
                library = self._library()
                drug = library.drug(library.entry(verdict.entry_id).drug_id).shown_name
            self._emit(
                EventType.ALERT_OVERRIDDEN,
                channel.id,
                reason=override.value,
                entry_id=verdict.entry_id,
                drug=drug,
                alerts=alert_data(verdict.alerts),
                library_version=self._library().version,
            )
        self._check_rate(verdict.rate_ml_per_h)
        return verdict

    def _start_overlay(
        self,
        channel: Channel,
        kind: OverlayKind,
        rate: Decimal,
        volume: Decimal,
        dose: Decimal | None,
        dose_unit: str | None,
    ) -> None:
        therapy = channel.therapy
        assert therapy is not None
        therapy.overlay = Overlay(
            kind=kind, rate_ml_per_h=rate, volume_ml=volume, dose=dose, dose_unit=dose_unit
        )
        self._emit(
            EventType.BOLUS_STARTED,
            channel.id,
            kind=kind.value,
            dose=dose,
            dose_unit=dose_unit,
            volume_ml=volume,
            rate_ml_per_h=rate,
        )
        self._after_change()

    # ----------------------------------------------------------------- PCA

    def _setup_pca(self, therapy: Therapy) -> None:
        program = therapy.program
        pca = program.pca
        assert pca is not None and therapy.verdict.entry_id is not None
        entry = self._library().entry(therapy.verdict.entry_id)
        assert entry.pca is not None
        unit = entry.pca.demand_dose.unit
        concentration = program.concentration or entry.concentrations[0]
        per_ml = concentration.per_ml_in(unit.amount)
        area = self._area()
        window_h = pca.max_dose_window_h or entry.pca.max_dose_window_h or area.pca.max_dose_window_h or 1
        basal = pca.basal or ZERO
        therapy.rate_ml_per_h = (
            round_half_up(basal / per_ml, self.caps.finest_resolution_ml_per_h) if basal else ZERO
        )
        if therapy.rate_ml_per_h:
            self._check_rate(therapy.rate_ml_per_h)
        therapy.kvo_rate_ml_per_h = ZERO
        therapy.pca_per_ml = per_ml
        therapy.pca_unit = str(unit)
        therapy.pca_bolus_rate_ml_per_h = self._pca_bolus_rate(program)
        therapy.pca = PcaLedger(
            demand_dose=pca.demand_dose,
            lockout_s=pca.lockout_min * 60,
            max_dose=pca.max_dose,
            window_s=Decimal(window_h) * 3600,
            basal_per_h=basal,
        )

    def _pca_bolus_rate(self, program: InfusionProgram) -> Decimal:
        """The rate PCA doses run at: the care area's, else the program's, else the default."""
        return (
            self._area().pca.bolus_delivery_rate_ml_per_h
            or program.rate_ml_per_h
            or DEFAULT_PCA_BOLUS_RATE_ML_PER_H
        )

    def _pca_dose(self, channel: Channel, amount: Decimal, kind: DoseKind, overlay: OverlayKind) -> None:
        therapy = channel.therapy
        assert therapy is not None and therapy.pca is not None and therapy.pca_per_ml is not None
        assert therapy.pca_bolus_rate_ml_per_h is not None
        therapy.pca.grant(self._t, amount, kind)
        self._start_overlay(
            channel,
            overlay,
            therapy.pca_bolus_rate_ml_per_h,
            amount / therapy.pca_per_ml,
            amount,
            therapy.pca_unit,
        )

    def pca_demand(self, cid: str) -> bool:
        """The patient presses the button: grant (True) or deny (False, logged with the reason)."""
        self.sync()
        channel = self.channel(cid)
        therapy = channel.therapy
        if therapy is None or therapy.pca is None:
            raise PumpError(f"channel {cid} is not running a PCA therapy", code="pump.not_pca")
        ledger = therapy.pca
        denial: Denial | None
        if self.alarms.is_active(AlarmId.PCA_PAUSED, cid):
            denial = Denial.PAUSED
        elif channel.state is not ChannelState.RUNNING:
            denial = Denial.NOT_RUNNING
        elif therapy.overlay is not None:
            denial = Denial.DOSE_IN_PROGRESS
        else:
            denial = ledger.evaluate(self._t, ledger.demand_dose, DoseKind.DEMAND)
        if denial is not None:
            self._emit(
                EventType.PCA_DEMAND_DENIED,
                cid,
                reason=denial.value,
                next_allowed_in_s=ledger.lockout_remaining_s(self._t),
                window_total=ledger.window_total(self._t),
                max_dose=ledger.max_dose,
            )
            return False
        self._emit(
            EventType.PCA_DEMAND_GRANTED,
            cid,
            dose=ledger.demand_dose,
            unit=therapy.pca_unit,
            window_total=ledger.window_total(self._t) + ledger.demand_dose,
            max_dose=ledger.max_dose,
        )
        self._pca_dose(channel, ledger.demand_dose, DoseKind.DEMAND, OverlayKind.PCA_DEMAND)
        return True

    def clinician_bolus(self, cid: str, amount: Decimal) -> None:
        """A clinician bolus on a PCA channel, within the entry's limits and the window maximum."""
        self.sync()
        channel = self.channel(cid)
        therapy = channel.therapy
        if therapy is None or therapy.pca is None or channel.state is not ChannelState.RUNNING:
            raise PumpError(f"channel {cid} is not running a PCA therapy", code="pump.not_pca")
        assert therapy.verdict.entry_id is not None
        limits = self._library().entry(therapy.verdict.entry_id).pca
        if limits is None or limits.clinician_bolus is None:
            raise PumpError(
                "this entry does not allow a clinician bolus", code="pump.clinician_bolus_not_allowed"
            )
        breach = limits.clinician_bolus.limits.classify(amount)
        if breach is not None:
            raise PumpError(
                f"clinician bolus {amount} is beyond the {breach.kind} {breach.limit}",
                code="pump.clinician_bolus_limit",
            )
        if therapy.overlay is not None:
            raise PumpError("a dose is already being delivered", code="pump.overlay_running")
        if therapy.pca.evaluate(self._t, amount, DoseKind.CLINICIAN) is not None:
            raise PumpError("the bolus would exceed the maximum over the window", code="pump.pca_max_dose")
        self._pca_dose(channel, amount, DoseKind.CLINICIAN, OverlayKind.CLINICIAN_BOLUS)

    def record_vitals(
        self,
        *,
        spo2_percent: Decimal | None = None,
        etco2_mmhg: Decimal | None = None,
        resp_rate_bpm: Decimal | None = None,
    ) -> None:
        """A monitor reading; crossing a care-area threshold pauses every PCA channel (physiologic pause)."""
        self.sync()
        self._emit(
            EventType.VITALS_RECORDED,
            None,
            spo2_percent=spo2_percent,
            etco2_mmhg=etco2_mmhg,
            resp_rate_bpm=resp_rate_bpm,
        )
        settings = self._area().pca
        if not settings.pause_enabled:
            return
        crossed: tuple[str, Decimal, Decimal] | None = None
        spo2_min, etco2_max = settings.pause_spo2_min_percent, settings.pause_etco2_max_mmhg
        rr_min = settings.pause_resp_rate_min_bpm
        if spo2_percent is not None and spo2_min is not None and spo2_percent < spo2_min:
            crossed = ("spo2", spo2_percent, spo2_min)
        if etco2_mmhg is not None and etco2_max is not None and etco2_mmhg > etco2_max:
            crossed = ("etco2", etco2_mmhg, etco2_max)
        if resp_rate_bpm is not None and rr_min is not None and resp_rate_bpm < rr_min:
            crossed = ("resp_rate", resp_rate_bpm, rr_min)
        if crossed is None:
            for channel in self.channels.values():
                self._condition_ended(AlarmId.PCA_PAUSED, channel.id)
            return
        reading, value, threshold = crossed
        for channel in self.channels.values():
            if channel.therapy is not None and channel.therapy.pca is not None:
                if not self.alarms.is_active(AlarmId.PCA_PAUSED, channel.id):
                    self._emit(
                        EventType.PCA_PAUSED, channel.id, reading=reading, value=value, threshold=threshold
                    )
                self._raise(AlarmId.PCA_PAUSED, channel.id, value=value, limit=threshold)
        self._after_change()

    # ----------------------------------------------------------------- sensors and faults

    def occlude_downstream(self, cid: str) -> None:
        """The line below the pump closes: pressure builds with compliance until the alarm."""
        self.sync()
        channel = self.channel(cid)
        if channel.closed_line_ml is None:
            channel.closed_line_ml = ZERO

    def release_downstream(self, cid: str) -> Decimal:
        """The occlusion is relieved; returns the unintended bolus after back-off (mL)."""
        self.sync()
        channel = self.channel(cid)
        stored = channel.closed_line_ml
        if stored is None:
            raise PumpError("the line is not occluded", code="pump.not_occluded")
        held = channel.state is ChannelState.OCCLUSION_HOLD
        alarmed = held or self.alarms.is_active(AlarmId.OCCLUSION_DOWNSTREAM, cid)
        backoff = min(stored, channel.line.backoff_ml) if alarmed else ZERO
        bolus = stored - backoff
        channel.closed_line_ml = None
        self._emit(EventType.OCCLUSION_RELEASED, cid, stored_ml=stored, backoff_ml=backoff, bolus_ml=bolus)
        self._condition_ended(AlarmId.OCCLUSION_DOWNSTREAM, cid)
        if held:
            assert channel.hold_from is not None
            channel.auto_restarts_s.append(self._t)
            channel.state = channel.hold_from
            channel.hold_until_s = None
            allowed = self.care_area.device.auto_restart_attempts if self.care_area else None
            self._emit(
                EventType.OCCLUSION_AUTO_RESTARTED,
                cid,
                attempt=len(channel.auto_restarts_s),
                max_attempts=allowed,
                window_s=AUTO_RESTART_WINDOW_S,
                rate_ml_per_h=channel.flow_ml_per_h,
            )
            self._after_change()
        return bolus

    def set_occlusion_threshold(self, cid: str, threshold_mmhg: Decimal) -> None:
        """Select the downstream occlusion threshold (within the model range and the care-area maximum)."""
        self.sync()
        channel = self.channel(cid)
        self.caps.check_occlusion(threshold_mmhg)
        area_max = self.care_area.device.max_occlusion_pressure_mmhg if self.care_area else None
        if area_max is not None and threshold_mmhg > area_max:
            raise PumpError(
                f"threshold {threshold_mmhg} mmHg is above the care area's {area_max} mmHg",
                code="pump.occlusion_above_care_area",
            )
        channel.line = replace(channel.line, threshold_mmhg=threshold_mmhg)

    def occlude_upstream(self, cid: str) -> None:
        """No flow above the pump (closed clamp, empty bag): immediate alarm."""
        self.sync()
        self._raise(AlarmId.OCCLUSION_UPSTREAM, cid, value=None, limit=None)
        self._after_change()

    def release_upstream(self, cid: str) -> None:
        """The upstream line is open again."""
        self.sync()
        self._condition_ended(AlarmId.OCCLUSION_UPSTREAM, cid)

    def air_bubble(self, cid: str, volume_ul: Decimal) -> None:
        """The air sensor sees a bubble; single and cumulative thresholds stop delivery."""
        self.sync()
        channel = self.channel(cid)
        if channel.flow_ml_per_h <= 0:
            return
        area = self.care_area
        if area is not None:
            channel.air.cumulative_enabled = area.device.accumulated_air_in_line
            if area.device.air_in_line_ul is not None:
                channel.air.single_ul = area.device.air_in_line_ul
        tripped, value = channel.air.add(self._t, volume_ul)
        if tripped == "single":
            self._raise(AlarmId.AIR_IN_LINE, cid, value=value, limit=channel.air.single_ul)
        elif tripped == "cumulative":
            self._raise(AlarmId.AIR_CUMULATIVE, cid, value=value, limit=channel.air.cumulative_ul)
        self._after_change()

    def air_cleared(self, cid: str) -> None:
        """The line was re-primed: air conditions end (the alarms stay until cleared)."""
        self.sync()
        channel = self.channel(cid)
        channel.air.reset()
        self._condition_ended(AlarmId.AIR_IN_LINE, cid)
        self._condition_ended(AlarmId.AIR_CUMULATIVE, cid)

    def open_door(self, cid: str) -> None:
        """The channel door opens: the set clamp closes, delivery stops, alarm."""
        self.sync()
        channel = self.channel(cid)
        channel.door_open = True
        if channel.state in (
            ChannelState.RUNNING,
            ChannelState.KVO,
            ChannelState.PAUSED,
            ChannelState.DELAYED,
            ChannelState.OCCLUSION_HOLD,
        ):
            self._raise(AlarmId.DOOR_OPEN, cid, value=None, limit=None)
        self._after_change()

    def close_door(self, cid: str) -> None:
        """The door closes again."""
        self.sync()
        self.channel(cid).door_open = False
        self._condition_ended(AlarmId.DOOR_OPEN, cid)

    def load_container(self, cid: str, volume_ml: Decimal) -> None:
        """Load a syringe (or a bag of known volume) on an idle channel; syringe sizes are checked."""
        self.sync()
        channel = self.channel(cid)
        if channel.therapy is not None:
            raise PumpError("load a container only on an idle channel", code="pump.channel_busy")
        sizes = self.caps.syringe_sizes_ml
        if sizes and volume_ml > max(sizes):
            raise PumpError(
                f"{volume_ml} mL is more than the largest syringe ({max(sizes)} mL)", code="pump.syringe"
            )
        if volume_ml <= 0:
            raise PumpError("container volume must be positive", code="pump.container_invalid")
        channel.container_ml = volume_ml
        channel.drawn_ml = ZERO
        channel.container_near_empty_sent = False
        self._condition_ended(AlarmId.SYRINGE_EMPTY, cid)

    def resistance_reading(self, cid: str, value: Decimal) -> None:
        """A downstream resistance reading; a sustained rise raises an infiltration advisory."""
        self.sync()
        channel = self.channel(cid)
        advisory, ratio = channel.trend.add(value)
        if advisory and not self.alarms.is_active(AlarmId.INFILTRATION, cid):
            self._emit(
                EventType.INFILTRATION_SUSPECTED,
                cid,
                baseline=channel.trend.readings[0],
                latest=value,
                ratio=ratio,
            )
            self._raise(AlarmId.INFILTRATION, cid, value=ratio, limit=Decimal("1.5"))

    def ac_power(self, connected: bool) -> None:
        """Mains connected or lost; on battery the pump keeps infusing and counts down."""
        self.sync()
        if connected == self.battery.on_ac:
            return
        self.battery.settle(self._t)
        self.battery.on_ac = connected
        remaining = self.battery.remaining_min(self._t)
        if connected:
            self._emit(EventType.POWER_AC_RESTORED, None, battery_remaining_min=remaining)
            for alarm in (AlarmId.AC_LOST, AlarmId.BATTERY_LOW):
                self._condition_ended(alarm, None)
            self.alarms.condition_ended(AlarmId.BATTERY_DEPLETED, None, self._t)
        else:
            self._emit(EventType.POWER_AC_LOST, None, battery_remaining_min=remaining)
            self._raise(AlarmId.AC_LOST, None, value=remaining, limit=None)
            self.sync()

    def fault(self, test: str, detail: str = "") -> None:
        """A self-test or watchdog failure: safe stop of every channel and a latching HIGH alarm."""
        self.sync()
        self.faulted = True
        self._emit(EventType.PUMP_SELF_TEST_FAILED, None, test=test, detail=detail)
        alarm = AlarmId.WATCHDOG if test == "watchdog" else AlarmId.SYSTEM_FAILURE
        self._raise(alarm, None, value=None, limit=None)
        self._after_change()

    # ----------------------------------------------------------------- set, verification, library

    def install_set(
        self, cid: str, *, set_type: str, lot: str, line_label: str | None = None
    ) -> AdministrationSet:
        """Record the administration set loaded on a channel; the change interval follows the care area."""
        self.sync()
        channel = self.channel(cid)
        area_h = self.care_area.device.tubing_change_h if self.care_area else None
        admin = AdministrationSet(
            set_type=set_type,
            lot=lot,
            installed_at_s=self._t,
            change_due_h=area_h or self.settings.set_change_interval_h,
            line_label=line_label,
        )
        channel.admin_set = admin
        channel.set_reminded = False
        if self.alarms.drop(AlarmId.SET_CHANGE_DUE, cid, self._t):
            self._emit(
                EventType.ALARM_CLEARED,
                cid,
                alarm=AlarmId.SET_CHANGE_DUE.value,
                by="set_changed",
                duration_s=None,
            )
        self._emit(
            EventType.SET_INSTALLED,
            cid,
            set_type=set_type,
            lot=lot,
            change_due_h=admin.change_due_h,
            line_label=line_label,
        )
        return admin

    def verify_bedside(self, cid: str, scan: BedsideScan) -> tuple[str, ...]:
        """Compare the bedside scan with the pending program; a mismatch blocks the start."""
        self.sync()
        channel = self.channel(cid)
        pending = self._pending(channel)
        library = self._library()
        entry = library.entry(pending.verdict.entry_id) if pending.verdict.entry_id else None
        concentration = pending.program.concentration
        if concentration is None and entry is not None and len(entry.concentrations) == 1:
            concentration = entry.concentrations[0]
        expected = Expected(
            patient_id=self.patient_id,
            drug=library.drug(entry.drug_id) if entry else None,
            concentration=concentration,
            route=pending.program.route,
            line_label=channel.admin_set.line_label if channel.admin_set else None,
        )
        reasons = mismatches(scan, expected)
        pending.verified = not reasons
        pending.verification_failed = reasons
        if reasons:
            self._emit(EventType.VERIFICATION_FAILED, cid, reasons=list(reasons))
        else:
            self._emit(
                EventType.VERIFICATION_PASSED,
                cid,
                patient_id=scan.patient_id,
                drug=scan.drug,
                concentration=str(concentration) if concentration else None,
                route=scan.route.value,
                line_label=scan.line_label,
            )
        return reasons

    def record_command_refused(self, *, command: str, nonce: str, code: str, reason: str) -> None:
        """Log a server command that failed verification (forged, replayed, expired, foreign)."""
        self._emit(EventType.COMMAND_REFUSED, None, command=command, nonce=nonce, code=code, reason=reason)

    def install_library(
        self, signed: SignedLibrary, public_key_pem: bytes, *, hospital_id: str | None = None
    ) -> None:
        """Install a signed library after verifying it; it becomes active when every channel is idle."""
        self.sync()
        try:
            library = verify(
                signed,
                public_key_pem,
                installed_version=self.library.version if self.library else None,
                hospital_id=hospital_id,
            )
        except SignatureError as error:
            self._emit(EventType.LIBRARY_REJECTED, None, code=error.code, reason=error.message)
            raise
        self.pending_library = library
        self._emit(
            EventType.LIBRARY_INSTALLED,
            None,
            version=library.version,
            name=library.name,
            pending=not self._all_idle(),
        )
        self._after_change()

    def install_configuration(
        self, signed: SignedConfiguration, public_key_pem: bytes, *, hospital_id: str | None = None
    ) -> None:
        """Install a signed configuration after verifying it (signature, hospital, model, a version above
        the one held); it becomes active when every channel is idle, never while delivering."""
        self.sync()
        held = self.pending_configuration or self.configuration
        try:
            configuration = verify_configuration(
                signed,
                public_key_pem,
                model=self.caps.model,
                held_version=held.version if held is not None else 0,
                hospital_id=hospital_id,
            )
        except SignatureError as error:
            self._emit(EventType.CONFIGURATION_REJECTED, None, code=error.code, reason=error.message)
            raise
        self.pending_configuration = configuration
        self._emit(
            EventType.CONFIGURATION_INSTALLED,
            None,
            version=configuration.version,
            pending=not self._all_idle(),
        )
        self._after_change()

    def _all_idle(self) -> bool:
        return all(c.therapy is None and c.pending is None for c in self.channels.values())

    def _activate_library(self) -> None:
        new = self.pending_library
        assert new is not None
        previous = self.library.version if self.library else None
        self.library = new
        self.pending_library = None
        if self.care_area is not None:
            try:
                self.care_area = new.care_area(self.care_area.id)
            except LibraryError:
                self.care_area = None
        self._emit(EventType.LIBRARY_ACTIVATED, None, version=new.version, previous_version=previous)

    def _activate_configuration(self) -> None:
        new = self.pending_configuration
        assert new is not None
        previous = self.configuration_version
        self.configuration = new
        self.pending_configuration = None
        self.settings = new.settings
        self.require_verification = new.settings.require_verification
        for channel in self.channels.values():
            channel.near_end_s = Decimal(new.settings.near_end_alert_min) * 60
        self._emit(
            EventType.CONFIGURATION_ACTIVATED,
            None,
            version=new.version,
            previous_version=previous,
            sha256=content_sha256(new),
        )

    # ----------------------------------------------------------------- restart (SAF-PWR-02)

    def to_state(self) -> dict[str, Any]:
        """What the pump persists to survive a power cycle: running programs, volume totals, PCA
        history, alarm settings, the active and pending configuration and ``next_seq`` (JSON-ready;
        times as ages before ``saved_at``)."""
        self.sync()
        now = self._t
        return {
            "format": STATE_FORMAT,
            "pump": self.id,
            "model": self.caps.model.value,
            "channels": len(self.channels),
            "next_seq": self.next_seq,
            "saved_at": self._ts(now).isoformat(),
            "library_version": self.library.version if self.library else None,
            "care_area": self.care_area.id if self.care_area else None,
            "patient_id": self.patient_id,
            "require_verification": self.require_verification,
            "configuration": None if self.configuration is None else self.configuration.to_dict(),
            "pending_configuration": None
            if self.pending_configuration is None
            else self.pending_configuration.to_dict(),
            "on_ac": self.battery.on_ac,
            "battery_charge_min": str(self.battery.charge_at(now)),
            "channel_state": {c.id: self._channel_state(c, now) for c in self.channels.values()},
        }

    def _channel_state(self, channel: Channel, now: Decimal) -> dict[str, Any]:
        admin = channel.admin_set
        therapy = channel.therapy
        return {
            "occlusion_threshold_mmhg": str(channel.line.threshold_mmhg),
            "admin_set": None
            if admin is None
            else {
                "set_type": admin.set_type,
                "lot": admin.lot,
                "installed_age_s": str(now - admin.installed_at_s),
                "change_due_h": admin.change_due_h,
                "line_label": admin.line_label,
            },
            "container_ml": text(channel.container_ml),
            "drawn_ml": str(channel.drawn_ml),
            "auto_restart_ages_s": [str(now - t) for t in channel.auto_restarts_s],
            "pending_dropped": channel.pending is not None,
            "therapy": None if therapy is None else self._therapy_state(therapy, now),
        }

    @staticmethod
    def _therapy_state(therapy: Therapy, now: Decimal) -> dict[str, Any]:
        ledger = therapy.pca
        return {
            "program": program_to_dict(therapy.program),
            "rate_ml_per_h": str(therapy.rate_ml_per_h),
            "vtbi_ml": text(therapy.vtbi_ml),
            "kvo_rate_ml_per_h": str(therapy.kvo_rate_ml_per_h),
            "steps": steps_to_list(therapy.steps),
            "step_index": therapy.step_index,
            "step_delivered_ml": str(therapy.step_delivered_ml),
            "infused_ml": str(therapy.infused_ml),
            "kvo_ml": str(therapy.kvo_ml),
            "secondary_ml": str(therapy.secondary_ml),
            "interrupted": None if therapy.overlay is None else therapy.overlay.kind.value,
            "pca": None
            if ledger is None
            else {
                "doses": [[str(now - t), str(amount), kind.value] for t, amount, kind in ledger.doses],
                "basal_segments": [
                    [str(now - start), "0" if end is None else str(now - end)]
                    for start, end in ledger.basal_segments
                ],
                "last_demand_age_s": None
                if ledger.last_demand_s is None
                else str(now - ledger.last_demand_s),
            },
        }

    def to_sealed_state(self, key: bytes) -> bytes:
        """``to_state()`` sealed for storage: canonical JSON under HMAC-SHA256 with the pump's own
        key (provisioned per device, handed in by the caller)."""
        return seal_state(self.to_state(), key)

    @classmethod
    def power_on(
        cls,
        stored: bytes | None,
        key: bytes,
        *,
        pump_id: str,
        model: PumpModel | str,
        clock: Clock,
        library: DrugLibrary | None,
        channels: int | None = None,
        min_next_seq: int = 1,
        hardware: HardwarePort | None = None,
    ) -> Pump:
        """Power on from sealed storage (SAF-STO-01). The saved state comes back when its tag verifies
        and it is this pump's, not older than ``min_next_seq`` (kept apart, e.g. by the event outbox);
        otherwise the pump starts with no programs on its factory default configuration, logs
        ``pump.state_rejected`` and raises the HIGH ``state.integrity_failed`` alarm, which blocks starts
        until the operator resets it."""
        check_key(key)
        refused: SmartpumpError | None = None
        if stored is not None:
            try:
                state = open_state(stored, key)
                cls._check_owner(state, pump_id, model, channels, min_next_seq)
                return cls.from_state(state, clock, library, hardware=hardware)
            except SmartpumpError as error:
                refused = error
        pump = cls(
            pump_id,
            model,
            clock,
            channels=channels,
            next_seq=min_next_seq,
            library=library,
            hardware=hardware,
        )
        if refused is not None:
            pump._emit(EventType.PUMP_STATE_REJECTED, None, code=refused.code, reason=refused.message)
            pump._raise(AlarmId.STATE_INTEGRITY, None, value=None, limit=None)
            pump.alarms.condition_ended(AlarmId.STATE_INTEGRITY, None, pump.now_s)
        return pump

    @staticmethod
    def _check_owner(
        state: dict[str, Any], pump_id: str, model: PumpModel | str, channels: int | None, min_next_seq: int
    ) -> None:
        if state.get("pump") != pump_id or state.get("model") != capabilities(model).model.value:
            raise PumpError(
                f"the stored state belongs to {state.get('pump')!r} ({state.get('model')!r})",
                code="pump.state_foreign",
            )
        if channels is not None and state.get("channels") != channels:
            raise PumpError("the stored state has another channel count", code="pump.state_foreign")
        next_seq = state.get("next_seq")
        if not isinstance(next_seq, int) or next_seq < min_next_seq:
            raise PumpError(
                f"the stored state (next seq {next_seq}) is older than the event log ({min_next_seq})",
                code="pump.state_stale",
            )

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        clock: Clock,
        library: DrugLibrary | None,
        *,
        hardware: HardwarePort | None = None,
    ) -> Pump:
        """Power on from a persisted state: totals, history and the configuration come back, delivery
        does not (every channel with a therapy is paused and needs ``resume``, the clinician's
        confirmation). A state without configuration keys was written before configurations existed:
        the pump keeps its factory default."""
        try:
            if state.get("format") != STATE_FORMAT:
                raise PumpError(f"not a {STATE_FORMAT} document", code="pump.state_invalid")
            version = library.version if library else None
            if state["library_version"] != version:
                raise PumpError(
                    f"the state was saved with library version {state['library_version']}, "
                    f"the pump has {version}",
                    code="pump.state_library_mismatch",
                )
            pump = cls(
                str(state["pump"]),
                str(state["model"]),
                clock,
                channels=int(state["channels"]),
                next_seq=int(state["next_seq"]),
                library=library,
                battery_charge_min=required(state["battery_charge_min"]),
                require_verification=bool(state["require_verification"]),
                hardware=hardware,
                configuration=_configuration(state.get("configuration")),
            )
            pump.pending_configuration = _configuration(state.get("pending_configuration"))
            pump._restore(state)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise PumpError(
                f"persisted pump state is not valid: {error!r}", code="pump.state_invalid"
            ) from None
        return pump

    def _restore(self, state: dict[str, Any]) -> None:
        saved_at = datetime.fromisoformat(str(state["saved_at"]))
        downtime = max(ZERO, seconds((self._clock.now() - saved_at).total_seconds()))
        off_at = self._t - downtime
        self.battery.on_ac = bool(state["on_ac"])
        if state["care_area"] is not None:
            self.select_care_area(str(state["care_area"]))
        if state["patient_id"] is not None:
            self.set_patient(str(state["patient_id"]))
        channel_state = state["channel_state"]
        if set(channel_state) != set(self.channels):
            raise PumpError("persisted channels do not match the pump", code="pump.state_invalid")
        restored: list[str] = []
        interrupted: list[str] = []
        for cid, raw in channel_state.items():
            channel = self.channels[cid]
            self._restore_channel(channel, raw, off_at)
            if raw["pending_dropped"]:
                interrupted.append(f"{cid}:pending_program")
            if raw["therapy"] is not None:
                restored.append(cid)
                if raw["therapy"]["interrupted"] is not None:
                    interrupted.append(f"{cid}:{raw['therapy']['interrupted']}")
        self._after_change()
        self._emit(
            EventType.PUMP_STATE_RESTORED,
            None,
            library_version=self.library.version if self.library else None,
            care_area=self.care_area.id if self.care_area else None,
            downtime_s=downtime,
            channels=restored,
            interrupted=interrupted,
        )

    def _restore_channel(self, channel: Channel, raw: dict[str, Any], off_at: Decimal) -> None:
        channel.line = replace(channel.line, threshold_mmhg=required(raw["occlusion_threshold_mmhg"]))
        self.caps.check_occlusion(channel.line.threshold_mmhg)
        admin = raw["admin_set"]
        if admin is not None:
            channel.admin_set = AdministrationSet(
                set_type=str(admin["set_type"]),
                lot=str(admin["lot"]),
                installed_at_s=off_at - required(admin["installed_age_s"]),
                change_due_h=int(admin["change_due_h"]),
                line_label=admin["line_label"],
            )
        channel.container_ml = number(raw["container_ml"])
        channel.drawn_ml = required(raw["drawn_ml"])
        channel.auto_restarts_s = [off_at - required(a) for a in raw["auto_restart_ages_s"]]
        if raw["therapy"] is not None:
            channel.therapy = self._restore_therapy(raw["therapy"], off_at)
            channel.state = ChannelState.PAUSED
            channel.paused_since_s = self._t
            channel.settled_at_s = self._t

    def _restore_therapy(self, raw: dict[str, Any], off_at: Decimal) -> Therapy:
        program = program_from_dict(raw["program"])
        verdict = self._check(program)
        if verdict.level is VerdictLevel.HARD:
            raise PumpError("a persisted program no longer passes DERS", code="pump.state_invalid")
        library = self._library()
        drug = library.drug(library.entry(verdict.entry_id).drug_id) if verdict.entry_id else None
        therapy = Therapy(
            program=program,
            verdict=verdict,
            drug=drug.shown_name if drug else None,
            drug_id=drug.id if drug else None,
            rate_ml_per_h=required(raw["rate_ml_per_h"]),
            vtbi_ml=number(raw["vtbi_ml"]),
            kvo_rate_ml_per_h=required(raw["kvo_rate_ml_per_h"]),
            steps=steps_from_list(raw["steps"]),
            step_index=int(raw["step_index"]),
            step_delivered_ml=required(raw["step_delivered_ml"]),
            infused_ml=required(raw["infused_ml"]),
            kvo_ml=required(raw["kvo_ml"]),
            secondary_ml=required(raw["secondary_ml"]),
        )
        pca = raw["pca"]
        if program.kind is ProgramKind.PCA:
            self._setup_pca(therapy)
            ledger = therapy.pca
            assert ledger is not None
            ledger.doses = [
                (off_at - required(age), required(amount), DoseKind(kind))
                for age, amount, kind in pca["doses"]
            ]
            ledger.basal_segments = [
                (off_at - required(start), off_at - required(end)) for start, end in pca["basal_segments"]
            ]
            last = number(pca["last_demand_age_s"])
            ledger.last_demand_s = None if last is None else off_at - last
        return therapy

    # ----------------------------------------------------------------- status

    def status(self) -> dict[str, object]:
        """What a display shows: library and configuration versions, care area, channels, alarms, battery."""
        self.sync()
        return {
            "pump": self.id,
            "model": self.caps.model.value,
            "library_version": self.library.version if self.library else None,
            "library_pending": self.pending_library.version if self.pending_library else None,
            "configuration_version": self.configuration_version,
            "configuration_pending": self.pending_configuration.version
            if self.pending_configuration
            else None,
            "care_area": self.care_area.id if self.care_area else None,
            "on_ac": self.battery.on_ac,
            "battery_remaining_min": self.battery.remaining_min(self._t),
            "audible": self.alarms.audible(self._t),
            "alarms": [
                {"alarm": a.id.value, "channel": a.channel, "priority": a.priority.value}
                for a in self.alarms.presented()
            ],
            "channels": {
                c.id: {
                    "state": c.state.value,
                    "drug": c.therapy.drug if c.therapy else None,
                    "rate_ml_per_h": c.flow_ml_per_h,
                    "infused_ml": c.therapy.infused_ml if c.therapy else ZERO,
                    "vtbi_ml": c.therapy.vtbi_ml if c.therapy else None,
                    "kvo_ml": c.therapy.kvo_ml if c.therapy else ZERO,
                }
                for c in self.channels.values()
            },
        }


def _configuration(raw: object) -> PumpConfiguration | None:
    """A persisted configuration document (None stays None); raises ConfigurationError when invalid."""
    return None if raw is None else PumpConfiguration.from_dict(raw)


def time_to_alarm_s(caps: Capabilities, rate_ml_per_h: Decimal, threshold_mmhg: Decimal) -> Decimal:
    """Declared time from downstream occlusion to alarm for a model, rate and threshold."""
    line = LineModel(
        threshold_mmhg=threshold_mmhg,
        compliance_ul_per_mmhg=caps.line_compliance_ul_per_mmhg,
        backoff_ml=caps.occlusion_backoff_ml,
    )
    return time_to_deliver(line.stored_at_alarm_ml, rate_ml_per_h)
