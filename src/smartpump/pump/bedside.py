"""What the clinician sets up at the bedside: care area, patient (and the patient's weight, height and
BSA, which every therapy on the pump shares), administration set (and its change reminder), and the
barcode verification of a pending program."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind, Verdict, VerdictLevel
from smartpump.errors import LibraryError, ProgramError, PumpError, UnitError
from smartpump.library.model import CareArea
from smartpump.pump.administration_set import AdministrationSet
from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmId, EndedBy
from smartpump.pump.channel import Channel, ChannelState
from smartpump.pump.core import PumpCore
from smartpump.pump.events import EventType, EventValue
from smartpump.pump.patient import AssociationSource, PatientIdentity
from smartpump.pump.programming import (
    OverrideReason,
    Programming,
    alert_data,
    coded_reason,
    hard_limits_text,
)
from smartpump.pump.rates import kvo_rate, rate_changed
from smartpump.pump.verification import BedsideScan, Expected, mismatches
from smartpump.units import format_decimal, round_half_up, to_decimal, volume_to_dose


@dataclass(frozen=True, slots=True, kw_only=True)
class _Recheck:
    """A running therapy's program for the new patient parameters, and its verdict."""

    channel: Channel
    drug: str
    program: InfusionProgram
    verdict: Verdict


class Bedside:
    """Care area, patient, administration sets and bedside verification of one pump."""

    def __init__(self, core: PumpCore, alarming: AlarmControl, programming: Programming) -> None:
        self.core = core
        self.alarming = alarming
        self.programming = programming

    def select_care_area(self, care_area: str) -> CareArea:
        """Choose the care area (profile) whose limits apply; refused while any channel infuses."""
        core = self.core
        core.sync()
        library = core.active_library()
        if not core.all_idle():
            raise PumpError(
                "the care area cannot change while a channel is in use", code="pump.care_area_locked"
            )
        area = library.care_area(care_area)
        core.care_area = area
        core.emit(EventType.CARE_AREA_SELECTED, None, care_area=area.id, library_version=library.version)
        return area

    def set_patient(self, patient_id: str) -> None:
        """Take back a saved patient identifier (restore, scenarios); emits nothing."""
        if not patient_id.strip():
            raise PumpError("patient id is empty", code="pump.patient_invalid")
        self.core.patient_id = patient_id
        if self.core.patient is None or self.core.patient.patient_id != patient_id:
            self.core.patient = PatientIdentity(patient_id=patient_id.strip())

    def associate_patient(self, patient: PatientIdentity, source: AssociationSource) -> PatientIdentity:
        """Associate the pump with a patient; another patient is refused while a channel is in use
        (``pump.patient_locked``), the same one may be re-associated (a name added). Emits
        patient.associated."""
        core = self.core
        core.sync()
        previous = core.patient_id
        if previous is not None and previous != patient.patient_id and not core.all_idle():
            raise PumpError(
                f"the pump is infusing for patient {previous}: stop every channel before associating "
                "another patient",
                code="pump.patient_locked",
            )
        core.patient_id = patient.patient_id
        core.patient = patient
        core.emit(
            EventType.PATIENT_ASSOCIATED,
            None,
            patient_id=patient.patient_id,
            authority=patient.authority,
            id_type=patient.id_type,
            family_name=patient.family_name,
            given_name=patient.given_name,
            source=source.value,
            previous_patient_id=previous,
        )
        return patient

    def set_patient_parameters(
        self,
        weight_kg: Decimal | None,
        height_cm: Decimal | None,
        bsa_m2: Decimal | None,
        *,
        override: OverrideReason | str | None,
    ) -> PatientParameters:
        """Set the patient's weight, height and BSA, which programs without a patient take. Every
        therapy on the pump is re-checked with its dose for the new parameters first: a hard verdict
        refuses the change (``pump.patient_change_refused``, nothing changes), a soft one needs
        ``override``; then dose-programmed therapies run the new rate (rate.changed, cause
        ``patient_parameters``). Emits patient.parameters_changed."""
        core = self.core
        core.sync()
        patient = PatientParameters(
            weight_kg=_positive(weight_kg, "weight"),
            height_cm=_positive(height_cm, "height"),
            bsa_m2=_positive(bsa_m2, "BSA"),
        )
        reason = None if override is None else coded_reason(override)
        rechecks = self._rechecks(patient)
        hard = [r for r in rechecks if r.verdict.level is VerdictLevel.HARD]
        if hard:
            listed = "; ".join(
                f"channel {r.channel.id} {r.drug}: {hard_limits_text(r.verdict)}" for r in hard
            )
            raise PumpError(
                f"the new patient parameters are refused: {listed}", code="pump.patient_change_refused"
            )
        soft = [r for r in rechecks if r.verdict.level is VerdictLevel.SOFT]
        if soft and reason is None:
            listed = ", ".join(f"channel {r.channel.id} {r.drug}" for r in soft)
            raise PumpError(
                f"the new patient parameters cross soft limits ({listed}): override with a reason",
                code="pump.override_required",
            )
        previous = core.patient_parameters
        core.patient_parameters = patient
        core.emit(
            EventType.PATIENT_PARAMETERS_CHANGED,
            None,
            weight_kg=patient.weight_kg,
            height_cm=patient.height_cm,
            bsa_m2=patient.bsa_m2,
            previous_weight_kg=previous.weight_kg,
            previous_height_cm=previous.height_cm,
            previous_bsa_m2=previous.bsa_m2,
            rechecked=[_recheck_data(r) for r in rechecks],
            override_reason=reason.value if soft and reason is not None else None,
        )
        library_version = core.active_library().version
        for recheck in rechecks:
            if recheck.verdict.level is VerdictLevel.SOFT:
                assert reason is not None
                core.emit(
                    EventType.ALERT_OVERRIDDEN,
                    recheck.channel.id,
                    reason=reason.value,
                    entry_id=recheck.verdict.entry_id,
                    drug=recheck.channel.therapy.drug if recheck.channel.therapy else None,
                    alerts=alert_data(recheck.verdict.alerts),
                    library_version=library_version,
                )
            self._run_rechecked(recheck)
        core.after_change()
        return patient

    def _rechecks(self, patient: PatientParameters) -> list[_Recheck]:
        """Every therapy's program for ``patient`` with its verdict; refused while a program is pending,
        a bolus or piggyback runs, or a weight-based PCA runs, and when a program cannot be checked."""
        core = self.core
        found: list[_Recheck] = []
        for channel in core.channels.values():
            if channel.pending is not None:
                raise PumpError(
                    f"a program is pending on channel {channel.id}: start or cancel it before changing "
                    "the patient's parameters",
                    code="pump.patient_change_refused",
                )
            therapy = channel.therapy
            if therapy is None:
                continue
            drug = therapy.drug or "a basic infusion"
            if therapy.overlay is not None:
                raise PumpError(
                    f"a {therapy.overlay.kind} runs on channel {channel.id}: wait for it to end before "
                    "changing the patient's parameters",
                    code="pump.patient_change_refused",
                )
            program = therapy.program
            try:
                if program.kind is ProgramKind.PCA and program.entry_id is not None:
                    entry = core.active_library().entry(program.entry_id)
                    if entry.needs_weight or entry.needs_bsa:
                        raise PumpError(
                            "its PCA doses are weight-based: stop the PCA therapy first", code="pump.pca"
                        )
                checked, verdict = self.programming.recheck(channel, replace(program, patient=patient))
                self._refuse_if_already_beyond(therapy.infused_ml, checked, verdict)
            except (ProgramError, PumpError, LibraryError, UnitError) as error:
                raise PumpError(
                    f"channel {channel.id} {drug}: {error.message}", code="pump.patient_change_refused"
                ) from None
            found.append(_Recheck(channel=channel, drug=drug, program=checked, verdict=verdict))
        return found

    def _refuse_if_already_beyond(
        self, infused_ml: Decimal, program: InfusionProgram, verdict: Verdict
    ) -> None:
        """Refuse new patient parameters for which the volume a total dose has already infused holds more
        than the entry's hard maximum (a weight corrected down after a raise): what went in cannot be
        undone, so the therapy must be stopped, not continued as if it were within its limits."""
        if program.entry_id is None or verdict.vtbi_ml is None or infused_ml <= verdict.vtbi_ml:
            return
        entry = self.core.active_library().entry(program.entry_id)
        unit = entry.dose.unit
        if unit.is_rate:
            return
        concentration = program.concentration or (entry.concentrations[0] if entry.concentrations else None)
        given = volume_to_dose(
            infused_ml, unit, concentration, weight_kg=program.patient.weight_kg, bsa_m2=verdict.bsa_m2
        )
        breach = entry.dose.limits.classify(given)
        if breach is not None and breach.kind.is_hard:
            shown = format_decimal(round_half_up(given, Decimal("0.01")))
            bound = breach.kind.value.replace("_", " ")
            raise PumpError(
                f"{format_decimal(infused_ml)} mL already infused hold {shown} {unit} for these parameters, "
                f"beyond the {bound} {format_decimal(breach.limit)}: stop the infusion to change them",
                code="pump.patient_change_refused",
            )

    def _run_rechecked(self, recheck: _Recheck) -> None:
        """The therapy takes its re-checked program; a dose-programmed one (not PCA, not multistep)
        runs the rate, and until it is complete the volume, that now hold its dose."""
        core = self.core
        channel = recheck.channel
        therapy = channel.therapy
        assert therapy is not None
        therapy.program = recheck.program
        therapy.verdict = recheck.verdict
        if recheck.program.dose is None or recheck.program.kind is ProgramKind.PCA or therapy.steps:
            return
        old = therapy.rate_ml_per_h
        therapy.rate_ml_per_h = recheck.verdict.rate_ml_per_h
        therapy.kvo_rate_ml_per_h = kvo_rate(core, therapy.rate_ml_per_h)
        if recheck.verdict.vtbi_ml is not None and channel.state is not ChannelState.KVO:
            therapy.vtbi_ml = max(recheck.verdict.vtbi_ml, therapy.infused_ml)
            therapy.near_end_sent = False
        if therapy.rate_ml_per_h != old:
            rate_changed(core, channel, old, "patient_parameters")

    def install_set(self, cid: str, *, set_type: str, lot: str, line_label: str | None) -> AdministrationSet:
        """Record the administration set loaded on a channel; the change interval follows the care area."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        area_h = core.care_area.device.tubing_change_h if core.care_area else None
        admin = AdministrationSet(
            set_type=set_type,
            lot=lot,
            installed_at_s=core.t,
            change_due_h=area_h or core.settings.set_change_interval_h,
            line_label=line_label,
        )
        channel.admin_set = admin
        channel.set_reminded = False
        self.alarming.end(AlarmId.SET_CHANGE_DUE, cid, EndedBy.SET_CHANGED)
        core.emit(
            EventType.SET_INSTALLED,
            cid,
            set_type=set_type,
            lot=lot,
            change_due_h=admin.change_due_h,
            line_label=line_label,
        )
        return admin

    def set_change_due(self, channel: Channel) -> None:
        """The administration set reached its change interval: event and reminder alarm."""
        core = self.core
        channel.set_reminded = True
        admin = channel.admin_set
        assert admin is not None
        core.emit(
            EventType.SET_CHANGE_DUE,
            channel.id,
            set_type=admin.set_type,
            lot=admin.lot,
            installed_h_ago=(core.t - admin.installed_at_s) / 3600,
        )
        self.alarming.raise_(
            AlarmId.SET_CHANGE_DUE, channel.id, value=None, limit=Decimal(admin.change_due_h)
        )

    def verify_bedside(self, cid: str, scan: BedsideScan) -> tuple[str, ...]:
        """Compare the bedside scan with the pending program; a mismatch blocks the start."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        pending = core.pending(channel)
        library = core.active_library()
        entry = library.entry(pending.verdict.entry_id) if pending.verdict.entry_id else None
        concentration = pending.program.concentration
        if concentration is None and entry is not None and len(entry.concentrations) == 1:
            concentration = entry.concentrations[0]
        expected = Expected(
            patient_id=core.patient_id,
            drug=library.drug(entry.drug_id) if entry else None,
            concentration=concentration,
            route=pending.program.route,
            line_label=channel.admin_set.line_label if channel.admin_set else None,
        )
        reasons = mismatches(scan, expected)
        pending.verified = not reasons
        pending.verification_failed = reasons
        if reasons:
            core.emit(EventType.VERIFICATION_FAILED, cid, reasons=list(reasons))
        else:
            core.emit(
                EventType.VERIFICATION_PASSED,
                cid,
                patient_id=scan.patient_id,
                drug=scan.drug,
                concentration=str(concentration) if concentration else None,
                route=scan.route.value,
                line_label=scan.line_label,
            )
        return reasons


def _positive(value: Decimal | None, what: str) -> Decimal | None:
    """A patient measure as an exact positive Decimal (None: not given); refused otherwise."""
    if value is None:
        return None
    try:
        number = to_decimal(value, what=what)
    except UnitError as error:
        raise PumpError(error.message, code="pump.patient_invalid") from None
    if number <= 0:
        raise PumpError(f"{what} must be greater than zero, got {number}", code="pump.patient_invalid")
    return number


def _recheck_data(recheck: _Recheck) -> dict[str, EventValue]:
    """A re-checked therapy as event data: channel, entry, verdict, rate, dose and alerts."""
    verdict = recheck.verdict
    return {
        "channel": recheck.channel.id,
        "entry_id": verdict.entry_id,
        "verdict": verdict.level.value,
        "rate_ml_per_h": verdict.rate_ml_per_h,
        "dose": verdict.dose,
        "dose_unit": verdict.dose_unit,
        "alerts": alert_data(verdict.alerts),
    }
