"""Programming a channel: DERS check of what the pump will run (the rate at the model's resolution, the
volume at its VTBI step, the device's limits as hard alerts), override with a coded reason, reprogram,
cancel, confirm, a titration bound to the running therapy (same entry, concentration, kind and
patient), and the bolus (from the running therapy's container) and secondary (piggyback) over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from enum import StrEnum
from functools import partial

from smartpump.ders.check import check
from smartpump.ders.program import (
    NO_PATIENT,
    Alert,
    DeviceLimits,
    InfusionProgram,
    PatientParameters,
    ProgramKind,
    Verdict,
    VerdictLevel,
)
from smartpump.errors import LibraryError, ProgramError, PumpError
from smartpump.library.model import CareArea, Drug, DrugLibrary
from smartpump.pump.capabilities import Capabilities
from smartpump.pump.channel import Channel, ChannelState, Pending, Therapy
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import Overlay, OverlayKind, Step, steps_total_ml
from smartpump.pump.events import EventType, EventValue
from smartpump.pump.rates import check_rate_cap, kvo_rate, pca_bolus_rate, rate_changed, start_overlay
from smartpump.units import Concentration

Binding = Callable[[InfusionProgram], InfusionProgram]
"""Binds a program to what the channel runs (titration, bolus) or may run (secondary), or refuses it."""


class OverrideReason(StrEnum):
    """Coded reasons a clinician gives when overriding a soft limit."""

    PRESCRIBER_ORDER = "prescriber_order"
    PATIENT_CONDITION = "patient_condition"
    TITRATION_PROTOCOL = "titration_protocol"
    VERIFIED_WITH_PHARMACY = "verified_with_pharmacy"
    OTHER = "other"


class DeclineReason(StrEnum):
    """Coded reasons a nurse gives when declining an auto-programmed order at the pump."""

    WRONG_PATIENT = "wrong_patient"
    ORDER_DISCREPANCY = "order_discrepancy"
    PATIENT_CONDITION = "patient_condition"
    NOT_DUE = "not_due"
    OTHER = "other"


def decline_reason(reason: DeclineReason | str) -> DeclineReason:
    """The decline reason as one of the codes; anything else is refused (``pump.decline_reason``)."""
    try:
        return DeclineReason(reason)
    except ValueError:
        raise PumpError(
            f"unknown decline reason {reason!r} (known: {', '.join(r.value for r in DeclineReason)})",
            code="pump.decline_reason",
        ) from None


def coded_reason(reason: OverrideReason | str) -> OverrideReason:
    """The override reason as one of the codes; anything else is refused (``pump.override_reason``)."""
    try:
        return OverrideReason(reason)
    except ValueError:
        raise PumpError(
            f"override reason {reason!r} is not one of {', '.join(r.value for r in OverrideReason)}",
            code="pump.override_reason",
        ) from None


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
        return self._hold(channel, program, steps, auto_programmed)

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
        return self._hold(channel, program, steps, auto_programmed)

    def cancel(self, cid: str, *, reason: DeclineReason | str | None = None) -> None:
        """Abandon a pending program (an auto-programmed one is declined, with the nurse's coded reason); a
        running infusion continues unchanged."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        coded = "" if reason is None else decline_reason(reason).value
        core.emit(
            EventType.PROGRAM_CANCELLED,
            cid,
            verdict=pending.verdict.level.value,
            entry_id=pending.verdict.entry_id,
            alerts=alert_data(pending.verdict.alerts),
            auto_programmed=pending.auto_programmed,
            reason=coded,
        )
        channel.pending = None
        if channel.state in (ChannelState.PROGRAMMED, ChannelState.STANDBY):
            channel.move_to(ChannelState.IDLE)
        core.after_change()

    def decline_offer(self, cid: str, *, entry_id: str, reason: DeclineReason | str) -> None:
        """Log an auto-programmed offer the pump held outside its channels (a bolus, loading dose or
        piggyback waiting for confirmation) declined by the nurse: program.cancelled, never checked."""
        core = self.core
        core.sync()
        core.channel(cid)
        core.emit(
            EventType.PROGRAM_CANCELLED,
            cid,
            verdict="unchecked",
            entry_id=entry_id,
            alerts=[],
            auto_programmed=True,
            reason=decline_reason(reason).value,
        )
        core.after_change()

    def override(self, cid: str, reason: OverrideReason | str) -> None:
        """Accept the soft alerts of the pending program with a coded reason; emits alert.overridden."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        code = coded_reason(reason)
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
            core.refuse_start(
                cid, "pump.hard_stop", f"{hard_limits_text(pending.verdict)}: reprogram or cancel"
            )
        if pending.verdict.level is VerdictLevel.SOFT and not pending.overridden:
            core.refuse_start(cid, "pump.override_required", "soft alerts need an override with a reason")
        pending.confirmed = True
        core.emit(
            EventType.PROGRAM_CONFIRMED,
            cid,
            entry_id=pending.verdict.entry_id,
            rate_ml_per_h=pending.verdict.rate_ml_per_h,
            vtbi_ml=pending.verdict.vtbi_ml,
            verdict=pending.verdict.level.value,
            overridden=pending.overridden,
        )
        if pending.is_titration:
            self._apply_titration(channel, pending)

    # ----------------------------------------------------------------- checks

    def check(self, program: InfusionProgram) -> Verdict:
        """DERS verdict at the model's resolutions and device limits, no container (a program without
        a patient takes the pump's patient parameters)."""
        return self._resolved(self.with_patient(program), None)[1]

    def with_patient(self, program: InfusionProgram) -> InfusionProgram:
        """The program for the patient on the pump when it names none (NO_PATIENT)."""
        patient = self.core.patient_parameters
        if program.patient != NO_PATIENT or patient == NO_PATIENT:
            return program
        return replace(program, patient=patient)

    def _resolved(
        self, program: InfusionProgram, container_left_ml: Decimal | None
    ) -> tuple[InfusionProgram, Verdict]:
        """The program at this pump's resolutions and its verdict under this pump's device limits
        (the configuration's rate cap and ``container_left_ml`` included)."""
        core = self.core
        device = model_device_limits(
            core.caps,
            rate_cap_ml_per_h=core.settings.max_rate_ml_per_h,
            container_left_ml=container_left_ml,
        )
        return check_on_model(core.active_library(), core.area(), program, core.caps, device)

    def recheck(self, channel: Channel, program: InfusionProgram) -> tuple[InfusionProgram, Verdict]:
        """A new version of the channel's running program (same dose, another patient), checked as a
        titration is: every multistep step, the container holding what is infused plus what is left."""
        therapy = channel.therapy
        assert therapy is not None
        return self._verdict(program, tuple(therapy.steps), _container_left_ml(channel, therapy))

    def _verdict(
        self, program: InfusionProgram, steps: tuple[Step, ...], container_left_ml: Decimal | None
    ) -> tuple[InfusionProgram, Verdict]:
        """The checked program and its verdict; a multistep program is held at every step's rate
        (each a rate the pump runs exactly) and takes the most severe level and every alert."""
        checked, verdict = self._resolved(program, container_left_ml)
        for number, step in enumerate(steps, start=1):
            resolution = self.core.caps.resolution_at(step.rate_ml_per_h)
            if step.rate_ml_per_h % resolution != 0:
                raise PumpError(
                    f"step {number} rate {step.rate_ml_per_h} mL/h is not a multiple of the "
                    f"{resolution} mL/h resolution",
                    code="pump.rate_resolution",
                )
            if number > 1:
                _, step_verdict = self._resolved(
                    replace(program, rate_ml_per_h=step.rate_ml_per_h), container_left_ml
                )
                verdict = _merged(verdict, step_verdict)
        vtbi = verdict.vtbi_ml
        step_ml = self.core.caps.vtbi_resolution_ml
        if verdict.level is not VerdictLevel.HARD and vtbi is not None and vtbi % step_ml != 0:
            raise PumpError(
                f"VTBI {vtbi} mL is not a multiple of the {step_ml} mL resolution",
                code="pump.vtbi_resolution",
            )
        return checked, verdict

    def _hold(
        self, channel: Channel, program: InfusionProgram, steps: tuple[Step, ...], auto_programmed: bool
    ) -> Verdict:
        """Check a program (a titration when the channel has a therapy) and hold it as pending."""
        therapy = channel.therapy
        is_titration = therapy is not None and channel.state is not ChannelState.IDLE
        binding = partial(self._titration, therapy) if therapy is not None and is_titration else None
        program, verdict, drug = self._checked(
            channel,
            program,
            steps,
            auto_programmed,
            binding=binding,
            is_titration=is_titration,
            container_left_ml=_container_left_ml(channel, therapy if is_titration else None),
        )
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
        return verdict

    def _checked(
        self,
        channel: Channel,
        program: InfusionProgram,
        steps: tuple[Step, ...],
        auto_programmed: bool,
        *,
        binding: Binding | None,
        is_titration: bool,
        container_left_ml: Decimal | None,
    ) -> tuple[InfusionProgram, Verdict, Drug | None]:
        """Bind the program to the patient (and to the running therapy through ``binding``), check it
        and log program.checked; a program that cannot be checked or run is logged as program.refused."""
        core = self.core
        library, area = core.active_library(), core.area()
        try:
            program = self.with_patient(program)
            if binding is not None:
                program = binding(program)
            if steps:
                program = replace(
                    program, rate_ml_per_h=steps[0].rate_ml_per_h, vtbi_ml=steps_total_ml(steps)
                )
            if program.entry_id is not None:
                entry = library.entry(program.entry_id)
                if entry.devices and core.caps.device_type not in entry.devices:
                    raise PumpError(
                        f"entry {entry.id} is not for a {core.caps.device_type} pump",
                        code="pump.device_not_allowed",
                    )
            if program.kind is ProgramKind.PCA:
                check_rate_cap(core, pca_bolus_rate(core, program))
            program, verdict = self._verdict(program, steps, container_left_ml)
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
        return program, verdict, drug

    # ----------------------------------------------------------------- binding to the running therapy

    def _running_concentration(self, therapy: Therapy) -> Concentration | None:
        """The concentration of the container the therapy runs (the entry's only one when not named)."""
        program = therapy.program
        if program.concentration is not None or program.entry_id is None:
            return program.concentration
        listed = self.core.active_library().entry(program.entry_id).concentrations
        return listed[0] if len(listed) == 1 else None

    def _same_container(self, therapy: Therapy, program: InfusionProgram, code: str) -> InfusionProgram:
        """The program on the running therapy's container: a concentration of the same strength (or
        None) is read as the container on the channel; another is refused."""
        if program.concentration is not None:
            running = self._running_concentration(therapy)
            if running is None or not program.concentration.same_strength(running):
                raise PumpError(
                    f"the channel runs {_running_drug(therapy)} at {running or 'no concentration'}, not "
                    f"{program.concentration}: a new container needs stop, a new program and start",
                    code=code,
                )
        return replace(program, concentration=therapy.program.concentration)

    def _titration(self, therapy: Therapy, program: InfusionProgram) -> InfusionProgram:
        """A titration keeps the running therapy's entry, concentration, kind and patient; a multistep
        program (checked as a whole) or a PCA therapy is not titrated."""
        running = therapy.program
        drug = _running_drug(therapy)
        if program.entry_id != running.entry_id:
            asked = program.entry_id or "a basic infusion"
            raise PumpError(
                f"the channel is running {drug}: a titration keeps its drug and entry; "
                f"stop it to program {asked}",
                code="pump.titration_entry",
            )
        program = self._same_container(therapy, program, "pump.titration_concentration")
        if running.kind is ProgramKind.PCA:
            raise PumpError(
                f"the channel runs {drug} as PCA: its settings change only through stop, a new program "
                "and start (the dose history and window maxima belong to the running settings)",
                code="pump.titration_pca",
            )
        if therapy.steps:
            raise PumpError(
                f"the channel runs {drug} as a multistep program: its steps were checked as one program, "
                "so its rates change only through stop and a new program",
                code="pump.titration_multistep",
            )
        if program.kind is not running.kind:
            raise PumpError(
                f"the channel runs {drug} as a {running.kind} infusion: "
                f"a titration cannot make it {program.kind}",
                code="pump.titration_kind",
            )
        if program.patient != running.patient:
            raise PumpError(
                f"{drug} runs for {_patient_text(running.patient)}, the titration is for "
                f"{_patient_text(program.patient)}: change the patient's weight first",
                code="pump.titration_weight",
            )
        return program

    def _bolus_binding(self, therapy: Therapy, program: InfusionProgram) -> InfusionProgram:
        """A bolus or loading dose comes from the running therapy's container: same entry,
        concentration and patient."""
        drug = _running_drug(therapy)
        if program.entry_id != therapy.program.entry_id:
            raise PumpError(
                f"the channel is running {drug}: a bolus or loading dose comes from its container "
                f"and uses its entry, not {program.entry_id or 'none'}",
                code="pump.bolus_entry",
            )
        program = self._same_container(therapy, program, "pump.bolus_entry")
        if program.patient != therapy.program.patient:
            raise PumpError(
                f"{drug} runs for {_patient_text(therapy.program.patient)}, the bolus is for "
                f"{_patient_text(program.patient)}: change the patient's weight first",
                code="pump.bolus_entry",
            )
        return program

    def _secondary_binding(self, program: InfusionProgram) -> InfusionProgram:
        """A piggyback needs a care area that allows secondaries and an entry that may run as one."""
        area = self.core.area()
        if not area.device.secondary_allowed:
            raise PumpError(
                f"care area {area.id} does not allow secondary infusions", code="pump.secondary_not_allowed"
            )
        entry = self.core.active_library().entry(program.entry_id) if program.entry_id else None
        if entry is None or not entry.allows_secondary:
            named = entry.id if entry is not None else "a basic infusion"
            raise PumpError(
                f"{named} may not run as a secondary (the library entry does not allow it)",
                code="pump.secondary_not_allowed",
            )
        return program

    def _apply_titration(self, channel: Channel, pending: Pending) -> None:
        therapy = channel.therapy
        assert therapy is not None
        old = therapy.rate_ml_per_h
        therapy.program = pending.program
        therapy.verdict = pending.verdict
        therapy.rate_ml_per_h = pending.verdict.rate_ml_per_h
        therapy.kvo_rate_ml_per_h = kvo_rate(self.core, therapy.rate_ml_per_h)
        if pending.verdict.vtbi_ml is not None:
            therapy.vtbi_ml = max(pending.verdict.vtbi_ml, therapy.infused_ml)
        therapy.near_end_sent = False
        channel.pending = None
        rate_changed(self.core, channel, old, "titration")
        self.core.after_change()

    # ----------------------------------------------------------------- bolus and secondary

    def bolus(self, cid: str, program: InfusionProgram, *, override: OverrideReason | str | None) -> Verdict:
        """A bolus or loading dose from the running therapy's container, entry and patient, DERS-checked;
        it runs the volume that holds the dose (``Verdict.vtbi_ml``) at the verdict's rate."""
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
        verdict = self._overlay_check(
            channel,
            program,
            partial(self._bolus_binding, therapy),
            _container_left_ml(channel, None),
            override,
        )
        volume = verdict.vtbi_ml
        assert volume is not None, "DERS gives a bolus over a duration the volume it runs"
        if therapy.remaining_ml is not None and volume > therapy.remaining_ml:
            raise PumpError(
                f"bolus volume {volume} mL exceeds the {therapy.remaining_ml} mL left",
                code="pump.bolus_exceeds_vtbi",
            )
        kind = OverlayKind.BOLUS if program.kind is ProgramKind.BOLUS else OverlayKind.LOADING
        start_overlay(core, channel, kind, verdict.rate_ml_per_h, volume, verdict.dose, verdict.dose_unit)
        return verdict

    def secondary(
        self, cid: str, program: InfusionProgram, *, override: OverrideReason | str | None, callback: bool
    ) -> Verdict:
        """A secondary (piggyback) infusion from its own container, for an entry that allows it in a
        care area that allows it; runs ``Verdict.vtbi_ml``, then the primary resumes (with ``callback``,
        the ``secondary.callback`` alarm calls the nurse back when it ends)."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        therapy = channel.therapy
        if channel.state is not ChannelState.RUNNING or therapy is None:
            raise PumpError("a secondary needs a running primary", code="pump.not_running")
        if therapy.overlay is not None:
            raise PumpError("a bolus or secondary is already running", code="pump.overlay_running")
        verdict = self._overlay_check(channel, program, self._secondary_binding, None, override)
        volume = verdict.vtbi_ml
        if volume is None:
            raise PumpError("a secondary needs a VTBI", code="pump.secondary_vtbi")
        therapy.overlay = Overlay(
            kind=OverlayKind.SECONDARY,
            rate_ml_per_h=verdict.rate_ml_per_h,
            volume_ml=volume,
            dose=verdict.dose,
            dose_unit=verdict.dose_unit,
            entry_id=verdict.entry_id,
            callback=callback,
        )
        core.emit(
            EventType.SECONDARY_STARTED,
            cid,
            entry_id=verdict.entry_id,
            rate_ml_per_h=verdict.rate_ml_per_h,
            vtbi_ml=volume,
            callback=callback,
        )
        core.after_change()
        return verdict

    def _overlay_check(
        self,
        channel: Channel,
        program: InfusionProgram,
        binding: Binding,
        container_left_ml: Decimal | None,
        override: OverrideReason | str | None,
    ) -> Verdict:
        """Check a bolus or secondary (program.checked, not held as pending); a hard verdict, or a soft
        one without an override, is refused with start.refused; an override logs alert.overridden."""
        core = self.core
        reason = None if override is None else coded_reason(override)
        _, verdict, drug = self._checked(
            channel,
            program,
            (),
            False,
            binding=binding,
            is_titration=False,
            container_left_ml=container_left_ml,
        )
        if verdict.level is VerdictLevel.HARD:
            core.refuse_start(channel.id, "pump.hard_stop", f"{hard_limits_text(verdict)}: reprogram")
        if verdict.level is VerdictLevel.SOFT:
            if reason is None:
                core.refuse_start(
                    channel.id, "pump.override_required", "soft alerts need an override with a reason"
                )
            core.emit(
                EventType.ALERT_OVERRIDDEN,
                channel.id,
                reason=reason.value,
                entry_id=verdict.entry_id,
                drug=drug.shown_name if drug else None,
                alerts=alert_data(verdict.alerts),
                library_version=core.active_library().version,
            )
        return verdict


def model_device_limits(
    caps: Capabilities,
    *,
    rate_cap_ml_per_h: Decimal | None = None,
    container_left_ml: Decimal | None = None,
) -> DeviceLimits:
    """What a pump of this model can run: its rate range and largest VTBI, a configuration's rate cap
    and what is left in the container (each a hard limit in the verdict, ``ders.device.*``)."""
    return DeviceLimits(
        min_rate_ml_per_h=caps.min_rate_ml_per_h,
        max_rate_ml_per_h=caps.max_rate_ml_per_h,
        max_vtbi_ml=caps.max_vtbi_ml,
        rate_cap_ml_per_h=rate_cap_ml_per_h,
        container_left_ml=container_left_ml,
    )


def check_on_model(
    library: DrugLibrary,
    care_area: CareArea,
    program: InfusionProgram,
    caps: Capabilities,
    device: DeviceLimits,
) -> tuple[InfusionProgram, Verdict]:
    """The program at the resolutions a pump of this model runs it (the step of the rate band its
    exact rate falls in, the model's VTBI step) and its DERS verdict under ``device``: checked first
    at the finest rate step, then again at its band's step when that is coarser."""
    program = replace(
        program,
        rate_resolution_ml_per_h=caps.finest_resolution_ml_per_h,
        vtbi_resolution_ml=caps.vtbi_resolution_ml,
    )
    verdict = check(library, care_area, program, device)
    resolution = caps.resolution_at(verdict.rate_ml_per_h_exact)
    if resolution != program.rate_resolution_ml_per_h:
        program = replace(program, rate_resolution_ml_per_h=resolution)
        verdict = check(library, care_area, program, device)
    return program, verdict


def hard_limits_text(verdict: Verdict) -> str:
    """The hard alerts of a verdict for a refusal message: rule, value and limit with their unit."""
    hard = [a for a in verdict.alerts if a.level is VerdictLevel.HARD]
    listed = "; ".join(f"{a.rule} {a.value} {a.unit} (limit {a.limit} {a.unit})" for a in hard)
    return f"a hard limit was crossed: {listed}" if listed else "a hard limit was crossed"


def _merged(first: Verdict, other: Verdict) -> Verdict:
    """The first step's verdict with the most severe level of both and the other step's new alerts."""
    level = other.level if other.level.rank > first.level.rank else first.level
    extra = tuple(a for a in other.alerts if a not in first.alerts)
    return first._replace(level=level, alerts=first.alerts + extra)


def _container_left_ml(channel: Channel, therapy: Therapy | None) -> Decimal | None:
    """The volume a program's VTBI may hold on this channel: what is left in a loaded container, plus
    what the running ``therapy`` already infused when its VTBI counts from its start (titration)."""
    if channel.container_ml is None:
        return None
    left = channel.container_ml - channel.drawn_ml
    return left if therapy is None else left + therapy.infused_ml


def _running_drug(therapy: Therapy) -> str:
    """The running drug as the display names it (or 'a basic infusion')."""
    if therapy.program.entry_id is None:
        return "a basic infusion"
    return f"{therapy.drug or therapy.program.entry_id} ({therapy.program.entry_id})"


def _patient_text(patient: PatientParameters) -> str:
    """A patient's parameters as shown in a refusal: '70 kg, 170 cm' or 'no weight'."""
    parts = [
        f"{value} {unit}"
        for value, unit in (
            (patient.weight_kg, "kg"),
            (patient.height_cm, "cm"),
            (patient.bsa_m2, "m2"),
        )
        if value is not None
    ]
    return ", ".join(parts) or "no weight"
