"""Programming a channel: DERS check of the rate the pump will run (at the model's resolution),
device limits, override with a coded reason, reprogram, cancel, confirm, titration of a running
therapy, and the bolus and secondary (piggyback) programs over it."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

from smartpump.ders.check import check
from smartpump.ders.program import Alert, InfusionProgram, ProgramKind, Verdict, VerdictLevel
from smartpump.errors import LibraryError, ProgramError, PumpError
from smartpump.pump.channel import Channel, ChannelState, Pending
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import Overlay, OverlayKind, Step, steps_total_ml
from smartpump.pump.events import EventType, EventValue
from smartpump.pump.rates import (
    check_rate,
    check_rate_cap,
    kvo_rate,
    pca_bolus_rate,
    rate_changed,
    start_overlay,
)
from smartpump.units import round_half_up


class OverrideReason(StrEnum):
    """Coded reasons a clinician gives when overriding a soft limit."""

    PRESCRIBER_ORDER = "prescriber_order"
    PATIENT_CONDITION = "patient_condition"
    TITRATION_PROTOCOL = "titration_protocol"
    VERIFIED_WITH_PHARMACY = "verified_with_pharmacy"
    OTHER = "other"


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


class Programming:
    """DERS-checked programs, titrations, boluses and secondaries on one pump's channels."""

    def __init__(self, core: PumpCore) -> None:
        self.core = core

    # ----------------------------------------------------------------- the pending program

    def program(
        self, cid: str, program: InfusionProgram, *, steps: tuple[Step, ...], auto_programmed: bool
    ) -> Verdict:
        """Check a new program (or, on a running channel, a titration) with DERS; emits program.checked."""
        self.core.sync()
        channel = self.core.channel(cid)
        if channel.pending is not None:
            raise PumpError(
                "a program is already pending on this channel: reprogram or cancel it",
                code="pump.program_pending",
            )
        return self._check_and_hold(channel, program, steps, auto_programmed)

    def reprogram(
        self, cid: str, program: InfusionProgram, *, steps: tuple[Step, ...], auto_programmed: bool
    ) -> Verdict:
        """Replace a pending program (answer to a hard stop or soft alert); emits program.reprogrammed."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        core.emit(
            EventType.PROGRAM_REPROGRAMMED,
            cid,
            previous_verdict=pending.verdict.level.value,
            previous_alerts=alert_data(pending.verdict.alerts),
            entry_id=pending.verdict.entry_id,
        )
        channel.pending = None
        if channel.therapy is None:
            channel.move_to(ChannelState.IDLE)
        return self._check_and_hold(channel, program, steps, auto_programmed)

    def cancel(self, cid: str) -> None:
        """Abandon a pending program; a running infusion continues unchanged."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        core.emit(
            EventType.PROGRAM_CANCELLED,
            cid,
            verdict=pending.verdict.level.value,
            entry_id=pending.verdict.entry_id,
            alerts=alert_data(pending.verdict.alerts),
        )
        channel.pending = None
        if channel.state in (ChannelState.PROGRAMMED, ChannelState.STANDBY):
            channel.move_to(ChannelState.IDLE)
        core.after_change()

    def override(self, cid: str, reason: OverrideReason | str) -> None:
        """Accept the soft alerts of the pending program with a coded reason; emits alert.overridden."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
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
        core.emit(
            EventType.ALERT_OVERRIDDEN,
            cid,
            reason=code.value,
            entry_id=pending.verdict.entry_id,
            drug=pending.drug,
            alerts=alert_data(pending.verdict.alerts),
            library_version=core.active_library().version,
        )

    def confirm(self, cid: str) -> None:
        """Confirm the pending program (applies a titration at once); refused after a hard stop."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        if pending.is_hard:
            core.refuse_start(cid, "pump.hard_stop", "a hard limit was crossed: reprogram or cancel")
        if pending.verdict.level is VerdictLevel.SOFT and not pending.overridden:
            core.refuse_start(cid, "pump.override_required", "soft alerts need an override with a reason")
        pending.confirmed = True
        core.emit(
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

    # ----------------------------------------------------------------- checks

    def check(self, program: InfusionProgram) -> Verdict:
        """DERS verdict at the rate resolution the model has at the program's rate."""
        core = self.core
        library, area = core.active_library(), core.area()
        first = check(
            library, area, replace(program, rate_resolution_ml_per_h=core.caps.finest_resolution_ml_per_h)
        )
        resolution = core.caps.resolution_at(first.rate_ml_per_h_exact)
        if resolution == core.caps.finest_resolution_ml_per_h:
            return first
        return check(library, area, replace(program, rate_resolution_ml_per_h=resolution))

    def _check_and_hold(
        self, channel: Channel, program: InfusionProgram, steps: tuple[Step, ...], auto_programmed: bool
    ) -> Verdict:
        core = self.core
        library, area = core.active_library(), core.area()
        if steps:
            program = replace(program, rate_ml_per_h=steps[0].rate_ml_per_h, vtbi_ml=steps_total_ml(steps))
        try:
            verdict = self.check(program)
            for step in steps[1:]:
                step_verdict = self.check(replace(program, rate_ml_per_h=step.rate_ml_per_h))
                if step_verdict.level.rank > verdict.level.rank:
                    verdict = step_verdict
            if verdict.level is not VerdictLevel.HARD:
                self._device_limits(channel, program, verdict, steps)
        except (ProgramError, PumpError, LibraryError) as error:
            core.emit(
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
            channel.move_to(ChannelState.PROGRAMMED)
        core.emit(
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
        core = self.core
        if program.kind is ProgramKind.PCA:
            check_rate_cap(core, pca_bolus_rate(core, program))
        else:
            for rate in [s.rate_ml_per_h for s in steps] or [verdict.rate_ml_per_h]:
                check_rate(core, rate)
        if program.vtbi_ml is not None:
            core.caps.check_vtbi(program.vtbi_ml)
            if channel.container_ml is not None and program.vtbi_ml > channel.container_ml - channel.drawn_ml:
                raise PumpError(
                    f"VTBI {program.vtbi_ml} mL is more than the "
                    f"{channel.container_ml - channel.drawn_ml} mL left in the container",
                    code="pump.vtbi_exceeds_container",
                )
        if verdict.entry_id is not None:
            entry = core.active_library().entry(verdict.entry_id)
            if entry.devices and core.caps.device_type not in entry.devices:
                raise PumpError(
                    f"entry {entry.id} is not for a {core.caps.device_type} pump",
                    code="pump.device_not_allowed",
                )

    def _apply_titration(self, channel: Channel, pending: Pending) -> None:
        therapy = channel.therapy
        assert therapy is not None
        old = therapy.rate_ml_per_h
        therapy.program = pending.program
        therapy.verdict = pending.verdict
        therapy.rate_ml_per_h = pending.verdict.rate_ml_per_h
        therapy.kvo_rate_ml_per_h = kvo_rate(self.core, therapy.rate_ml_per_h)
        if pending.program.vtbi_ml is not None:
            therapy.vtbi_ml = max(pending.program.vtbi_ml, therapy.infused_ml)
        therapy.near_end_sent = False
        channel.pending = None
        rate_changed(self.core, channel, old, "titration")
        self.core.after_change()

    # ----------------------------------------------------------------- bolus and secondary

    def bolus(self, cid: str, program: InfusionProgram, *, override: OverrideReason | None) -> Verdict:
        """A bolus or loading dose from the running infusion, DERS-checked (dose over a duration)."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
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
            verdict.rate_ml_per_h_exact * program.duration_min / 60, core.caps.vtbi_resolution_ml
        )
        if therapy.remaining_ml is not None and volume > therapy.remaining_ml:
            raise PumpError(
                f"bolus volume {volume} mL exceeds the {therapy.remaining_ml} mL left",
                code="pump.bolus_exceeds_vtbi",
            )
        kind = OverlayKind.BOLUS if program.kind is ProgramKind.BOLUS else OverlayKind.LOADING
        start_overlay(core, channel, kind, verdict.rate_ml_per_h, volume, verdict.dose, verdict.dose_unit)
        return verdict

    def secondary(self, cid: str, program: InfusionProgram, *, override: OverrideReason | None) -> Verdict:
        """A secondary (piggyback) infusion; the primary resumes when its VTBI is delivered."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        therapy = channel.therapy
        if channel.state is not ChannelState.RUNNING or therapy is None:
            raise PumpError("a secondary needs a running primary", code="pump.not_running")
        if therapy.overlay is not None:
            raise PumpError("a bolus or secondary is already running", code="pump.overlay_running")
        if not core.area().device.secondary_allowed:
            raise PumpError(
                "this care area does not allow secondary infusions", code="pump.secondary_not_allowed"
            )
        if program.vtbi_ml is None:
            raise PumpError("a secondary needs a VTBI", code="pump.secondary_vtbi")
        verdict = self._overlay_check(channel, program, override)
        therapy.overlay = Overlay(
            kind=OverlayKind.SECONDARY,
            rate_ml_per_h=verdict.rate_ml_per_h,
            volume_ml=program.vtbi_ml,
            dose=verdict.dose,
            dose_unit=verdict.dose_unit,
            entry_id=verdict.entry_id,
        )
        core.emit(
            EventType.SECONDARY_STARTED,
            cid,
            entry_id=verdict.entry_id,
            rate_ml_per_h=verdict.rate_ml_per_h,
            vtbi_ml=program.vtbi_ml,
        )
        core.after_change()
        return verdict

    def _overlay_check(
        self, channel: Channel, program: InfusionProgram, override: OverrideReason | None
    ) -> Verdict:
        core = self.core
        saved = channel.pending
        channel.pending = None
        try:
            verdict = self._check_and_hold(channel, program, (), False)
        finally:
            channel.pending = saved
        if verdict.level is VerdictLevel.HARD:
            core.refuse_start(channel.id, "pump.hard_stop", "a hard limit was crossed: reprogram")
        if verdict.level is VerdictLevel.SOFT:
            if override is None:
                core.refuse_start(
                    channel.id, "pump.override_required", "soft alerts need an override with a reason"
                )
            drug = None
            if verdict.entry_id is not None:
                library = core.active_library()
                drug = library.drug(library.entry(verdict.entry_id).drug_id).shown_name
            core.emit(
                EventType.ALERT_OVERRIDDEN,
                channel.id,
                reason=override.value,
                entry_id=verdict.entry_id,
                drug=drug,
                alerts=alert_data(verdict.alerts),
                library_version=core.active_library().version,
            )
        check_rate(core, verdict.rate_ml_per_h)
        return verdict
