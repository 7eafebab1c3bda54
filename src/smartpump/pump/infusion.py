"""A channel's therapy from start to stop: start (now, delayed or from standby), pause, resume,
stop, multistep steps, near end, the end of an overlay and the VTBI reached (complete -> KVO).

A therapy runs what DERS checked: the verdict's rate and the verdict's VTBI (the volume that holds an
intermittent's dose, a multistep program's steps total), never the program's own numbers."""

from __future__ import annotations

from decimal import Decimal

from smartpump.ders.program import ProgramKind
from smartpump.errors import PumpError
from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmId, EndedBy
from smartpump.pump.channel import Channel, ChannelState, Therapy
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import ZERO, OverlayKind
from smartpump.pump.events import EventType
from smartpump.pump.pca import DoseKind
from smartpump.pump.pca_control import PcaControl
from smartpump.pump.programming import hard_limits_text
from smartpump.pump.rates import kvo_rate, rate_changed


class Infusion:
    """Starts, holds, stops and completes the therapies of one pump's channels."""

    def __init__(self, core: PumpCore, alarming: AlarmControl, pca: PcaControl) -> None:
        self.core = core
        self.alarming = alarming
        self.pca = pca

    # ----------------------------------------------------------------- start

    def start(self, cid: str, *, delay_s: Decimal | None) -> None:
        """Start (or schedule) the confirmed program; refused with the reason when not allowed."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = channel.pending
        if pending is None or pending.is_titration:
            core.refuse_start(cid, "pump.nothing_to_start", "no confirmed program on this channel")
        if pending.is_hard:
            core.refuse_start(
                cid, "pump.hard_stop", f"{hard_limits_text(pending.verdict)}: reprogram or cancel"
            )
        if not pending.confirmed:
            core.refuse_start(cid, "pump.not_confirmed", "confirm the program before starting")
        if core.require_verification and not pending.verified:
            reason = "; ".join(pending.verification_failed) or "bedside verification not done"
            core.refuse_start(cid, "pump.not_verified", reason)
        self.refuse_if_unsafe(channel)
        self.pca.check_start(channel)
        if delay_s is not None:
            if delay_s <= 0:
                raise PumpError("a delayed start needs a positive delay", code="pump.delay_invalid")
            channel.move_to(ChannelState.DELAYED)
            channel.delayed_until_s = core.t + delay_s
            core.emit(EventType.INFUSION_SCHEDULED, cid, start_in_s=delay_s)
            return
        self._begin(channel)
        core.after_change()

    def standby(self, cid: str) -> None:
        """Hold a confirmed program without delivering until ``start`` is called."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        if not pending.confirmed or channel.state is not ChannelState.PROGRAMMED:
            raise PumpError(
                "only a confirmed program that has not started can go to standby", code="pump.standby"
            )
        channel.move_to(ChannelState.STANDBY)
        core.emit(EventType.INFUSION_STANDBY, cid, until_s=None)

    def refuse_if_unsafe(self, channel: Channel) -> None:
        """Refuse a start or resume on a faulted pump, a failed motor, an open door or a stopping alarm."""
        core = self.core
        if core.faulted:
            core.refuse_start(channel.id, "pump.faulted", "the pump failed a safety check")
        if channel.motor_fault:
            core.refuse_start(channel.id, "pump.motor_fault", "the motor rate check failed: service the pump")
        if channel.door_open:
            core.refuse_start(channel.id, "pump.door_open", "close the door before starting")
        if core.alarms.stops_delivery(channel.id):
            core.refuse_start(channel.id, "pump.alarm_active", "clear the stopping alarm first")

    def delayed_start(self, channel: Channel) -> None:
        """The delay of a scheduled start ran out: begin."""
        channel.delayed_until_s = None
        self._begin(channel)

    def _begin(self, channel: Channel) -> None:
        core = self.core
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
            vtbi_ml=verdict.vtbi_ml,
            kvo_rate_ml_per_h=kvo_rate(core, rate),
            steps=list(pending.steps),
        )
        if program.kind is ProgramKind.PCA:
            self.pca.setup(therapy)
        channel.pending = None
        channel.therapy = therapy
        channel.move_to(ChannelState.RUNNING)
        channel.settled_at_s = core.t
        core.emit(
            EventType.INFUSION_STARTED,
            channel.id,
            entry_id=verdict.entry_id,
            drug=pending.drug,
            care_area=verdict.care_area_id,
            rate_ml_per_h=therapy.rate_ml_per_h,
            vtbi_ml=therapy.vtbi_ml,
            dose=verdict.dose,
            dose_programmed=verdict.dose_programmed,
            dose_unit=verdict.dose_unit,
            library_version=core.active_library().version,
            is_basic=verdict.entry_id is None,
            auto_programmed=pending.auto_programmed,
        )
        self._check_duplicates(channel)
        if therapy.pca is not None and program.pca is not None and program.pca.loading_dose:
            self.pca.dose(channel, program.pca.loading_dose, DoseKind.LOADING, OverlayKind.PCA_LOADING)

    def _check_duplicates(self, channel: Channel) -> None:
        therapy = channel.therapy
        if therapy is None or therapy.drug_id is None:
            return
        same = [
            c.id
            for c in self.core.channels.values()
            if c.therapy is not None
            and c.therapy.drug_id == therapy.drug_id
            and c.state is not ChannelState.IDLE
        ]
        if len(same) > 1:
            self.core.emit(EventType.DUPLICATE_THERAPY_DETECTED, channel.id, drug=therapy.drug, channels=same)
            self.alarming.raise_(
                AlarmId.DUPLICATE_THERAPY, channel.id, value=Decimal(len(same)), limit=Decimal(1)
            )

    # ----------------------------------------------------------------- pause, resume, stop

    def pause(self, cid: str, *, reason: str) -> None:
        """Pause a running channel (delivery stops at once)."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        if channel.state not in (ChannelState.RUNNING, ChannelState.KVO):
            raise PumpError(f"channel {cid} is {channel.state}, not running", code="pump.not_running")
        channel.move_to(ChannelState.PAUSED)
        channel.paused_since_s = core.t
        core.emit(EventType.INFUSION_PAUSED, cid, infused_ml=_infused(channel), reason=reason)
        core.after_change()

    def resume(self, cid: str) -> None:
        """Resume a paused channel, or one stopped by an alarm once that alarm is cleared."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        if channel.state not in (ChannelState.PAUSED, ChannelState.ALARM):
            raise PumpError(f"channel {cid} is {channel.state}, not paused", code="pump.not_paused")
        self.refuse_if_unsafe(channel)
        therapy = channel.therapy
        assert therapy is not None
        self.alarming.clear_paused(channel)
        done = therapy.remaining_ml is not None and therapy.remaining_ml <= 0
        channel.move_to(ChannelState.KVO if done else ChannelState.RUNNING)
        core.emit(EventType.INFUSION_RESUMED, cid, rate_ml_per_h=channel.flow_ml_per_h)
        core.after_change()

    def stop(self, cid: str, *, reason: str) -> None:
        """End the therapy on a channel; the channel returns to idle."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        if channel.therapy is None and channel.state not in (ChannelState.DELAYED, ChannelState.STANDBY):
            raise PumpError(f"channel {cid} has no infusion to stop", code="pump.not_running")
        self.alarming.clear_paused(channel, EndedBy.STOPPED)
        core.emit(EventType.INFUSION_STOPPED, cid, infused_ml=_infused(channel), reason=reason)
        for alarm in (
            AlarmId.INFUSION_COMPLETE,
            AlarmId.NEAR_END,
            AlarmId.DUPLICATE_THERAPY,
            AlarmId.SECONDARY_CALLBACK,
        ):
            self.alarming.end(alarm, cid, EndedBy.STOPPED)
        channel.therapy = None
        channel.pending = None
        channel.delayed_until_s = None
        channel.move_to(ChannelState.IDLE)
        core.after_change()

    # ----------------------------------------------------------------- computed occurrences

    def near_end(self, channel: Channel) -> None:
        """The VTBI is minutes from its end: event and reminder alarm."""
        therapy = channel.therapy
        assert therapy is not None and therapy.remaining_ml is not None
        therapy.near_end_sent = True
        self.core.emit(
            EventType.NEAR_END_REACHED,
            channel.id,
            remaining_ml=therapy.remaining_ml,
            remaining_min=therapy.remaining_ml * 60 / therapy.rate_ml_per_h,
        )
        self.alarming.raise_(AlarmId.NEAR_END, channel.id, value=therapy.remaining_ml, limit=None)

    def step_done(self, channel: Channel) -> None:
        """A multistep step delivered its volume: the next step's rate applies."""
        therapy = channel.therapy
        assert therapy is not None
        therapy.step_index += 1
        therapy.step_delivered_ml = ZERO
        step = therapy.steps[therapy.step_index]
        old = therapy.rate_ml_per_h
        therapy.rate_ml_per_h = step.rate_ml_per_h
        self.core.emit(
            EventType.STEP_STARTED,
            channel.id,
            step=therapy.step_index + 1,
            rate_ml_per_h=step.rate_ml_per_h,
            volume_ml=step.volume_ml,
        )
        rate_changed(self.core, channel, old, "multistep")

    def overlay_done(self, channel: Channel) -> None:
        """A bolus or secondary delivered its volume; the therapy completes if its VTBI is reached. A
        secondary with a callback raises ``secondary.callback`` as the primary runs again."""
        therapy = channel.therapy
        assert therapy is not None and therapy.overlay is not None
        overlay = therapy.overlay
        therapy.overlay = None
        if overlay.kind is OverlayKind.SECONDARY:
            self.core.emit(
                EventType.SECONDARY_COMPLETED,
                channel.id,
                volume_ml=overlay.delivered_ml,
                primary_rate_ml_per_h=therapy.rate_ml_per_h,
                callback=overlay.callback,
            )
            if overlay.callback:
                self.alarming.raise_(
                    AlarmId.SECONDARY_CALLBACK,
                    channel.id,
                    value=overlay.delivered_ml,
                    limit=overlay.volume_ml,
                )
        else:
            self.core.emit(
                EventType.BOLUS_COMPLETED, channel.id, kind=overlay.kind.value, volume_ml=overlay.delivered_ml
            )
        if therapy.remaining_ml is not None and therapy.remaining_ml <= 0:
            self.complete(channel)

    def complete(self, channel: Channel) -> None:
        """The VTBI is delivered: a running overlay is cancelled, the channel goes to KVO and alarms."""
        core = self.core
        therapy = channel.therapy
        assert therapy is not None
        if therapy.overlay is not None:
            core.emit(
                EventType.BOLUS_CANCELLED,
                channel.id,
                kind=therapy.overlay.kind.value,
                delivered_ml=therapy.overlay.delivered_ml,
                reason="vtbi_reached",
            )
            therapy.overlay = None
        self.alarming.condition_ended(
            AlarmId.NEAR_END, channel.id, EndedBy.SUPERSEDED, superseded_by=AlarmId.INFUSION_COMPLETE
        )
        core.emit(
            EventType.INFUSION_COMPLETED, channel.id, infused_ml=therapy.infused_ml, vtbi_ml=therapy.vtbi_ml
        )
        channel.move_to(ChannelState.KVO)
        self.alarming.raise_(
            AlarmId.INFUSION_COMPLETE, channel.id, value=therapy.infused_ml, limit=therapy.vtbi_ml
        )
        core.emit(EventType.KVO_STARTED, channel.id, rate_ml_per_h=therapy.kvo_rate_ml_per_h)


def _infused(channel: Channel) -> Decimal:
    return channel.therapy.infused_ml if channel.therapy is not None else ZERO
