"""The pump's PCA actions: set a PCA therapy up from its entry, demand and clinician doses through
the ledger, the basal stopped at a ceiling and resumed by the nurse, the physiologic pause on vitals,
and the basal segments the ledger counts.

Rules (issue 13, "delivered equals checked"):

- Ceilings. The library's ceiling applies whenever the entry's PCA max dose has a hard max: that
  hard max over the entry's ``max_dose_window_h``, else the care area's ``pca.max_dose_window_h``,
  else 1 h. A program's ``max_dose`` only adds a second ceiling, over the program's window, else the
  library's window; it never replaces or loosens the library's.
- Units. The ledger counts in the entry's PCA unit (the demand dose's, e.g. mg or mcg/kg: per kg
  stays per kg); loading, clinician bolus and maxima are converted to it exactly (mg <-> mcg).
- Volumes. A dose becomes the volume amount x weight (or BSA) / concentration, multiplied first and
  divided once, rounded down at the 40th digit (exact whenever the true volume is), so the volume
  never holds more than the dose granted.
- Basal. It runs at the verdict's rounded basal rate; the ledger counts the dose per hour that rate
  delivers (rate x concentration / weight, rounded up at the 40th digit) while it flows (not while
  a PCA dose replaces it on the channel). When a ceiling is reached the basal is suspended at that
  exact time: flow 0, the channel stays running (demands are then refused by the ceilings),
  ``pca.max_dose_reached`` and the latching MEDIUM alarm ``pca.max_dose_reached``.
- Resume policy. The basal resumes only when the nurse clears that alarm and every ceiling has room
  again (``PcaLedger.may_resume_basal``); otherwise the clear is refused with
  ``pump.pca_max_dose_persists`` and the alarm stays. Resuming emits ``pca.basal_resumed``.
- A loading dose is checked against the ceilings before the channel starts; one that would exceed
  a ceiling refuses the start (``pump.pca_loading_max_dose``).
- Doses count in full when granted and run at once at the PCA dose rate. A dose still running when
  the channel stops running (paused, occlusion hold) is cancelled, never finished later: delivered
  late, it could fall in a window the ledger no longer counts it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, DivisionByZero, InvalidOperation
from typing import Final

from smartpump.ders.program import InfusionProgram, PCAProgram, ProgramKind, Verdict
from smartpump.errors import PumpError, UnitError
from smartpump.library.model import CareArea, PCALimits
from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmId, EndedBy
from smartpump.pump.channel import Channel, ChannelState, Therapy
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import SECONDS_PER_HOUR, ZERO, OverlayKind
from smartpump.pump.events import EventType, EventValue
from smartpump.pump.pca import Ceiling, CeilingSource, Denial, DoseKind, PcaLedger
from smartpump.pump.rates import check_rate, pca_bolus_rate, start_overlay
from smartpump.units import (
    Basis,
    Concentration,
    DoseUnit,
    convert_amount,
    convert_dose,
    dose_units_convertible,
)

DEFAULT_WINDOW_H: Final = 1
_DOWN: Final = Context(prec=40, rounding=ROUND_FLOOR, traps=[InvalidOperation, DivisionByZero])
_UP: Final = Context(prec=40, rounding=ROUND_CEILING, traps=[InvalidOperation, DivisionByZero])
_ONE: Final = Decimal(1)


def library_window_h(limits: PCALimits, area: CareArea) -> int:
    """The library ceiling's window: the entry's, else the care area's, else 1 h."""
    return limits.max_dose_window_h or area.pca.max_dose_window_h or DEFAULT_WINDOW_H


def _in_unit(value: Decimal, given: DoseUnit, unit: DoseUnit, what: str) -> Decimal:
    """``value`` in ``given`` expressed in the ledger's ``unit``; refused when not convertible."""
    if not dose_units_convertible(given, unit):
        raise PumpError(
            f"the {what} in {given} cannot be counted in the PCA unit {unit}", code="pump.pca_unit_mismatch"
        )
    return convert_dose(value, given, unit)


def ceilings_for(
    limits: PCALimits, area: CareArea, settings: PCAProgram, unit: DoseUnit
) -> tuple[Ceiling, ...]:
    """The library's ceiling (when the entry's max dose has a hard max) and the program's (when it
    sets a max dose), in the ledger's ``unit``."""
    window_h = library_window_h(limits, area)
    found: list[Ceiling] = []
    library_max = limits.max_dose
    if library_max is not None and library_max.limits.hard_max is not None:
        found.append(
            Ceiling(
                max_amount=_in_unit(
                    library_max.limits.hard_max, library_max.unit, unit, "library PCA maximum"
                ),
                window_s=window_h * SECONDS_PER_HOUR,
                source=CeilingSource.LIBRARY,
            )
        )
    if settings.max_dose is not None:
        given = library_max.unit if library_max is not None else unit
        found.append(
            Ceiling(
                max_amount=_in_unit(settings.max_dose, given, unit, "programmed PCA maximum"),
                window_s=(settings.max_dose_window_h or window_h) * SECONDS_PER_HOUR,
                source=CeilingSource.PROGRAM,
            )
        )
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class PcaDosing:
    """How amounts in the ledger's unit become volumes for one patient: x ``basis`` (weight in kg,
    BSA in m2, or 1) / the container's concentration."""

    unit: DoseUnit
    concentration: Concentration | None
    basis: Decimal

    @property
    def delivered_unit(self) -> str:
        """The unit of an absolute amount (the ledger unit without its basis: mcg for mcg/kg)."""
        return str(DoseUnit(amount=self.unit.amount))

    def delivered_amount(self, amount: Decimal) -> Decimal:
        """The absolute amount a dose of ``amount`` (ledger unit) is for this patient."""
        return _DOWN.multiply(amount, self.basis)

    def volume_ml(self, amount: Decimal) -> Decimal:
        """The volume holding ``amount`` (ledger unit), rounded down at the 40th digit."""
        absolute = self.delivered_amount(amount)
        concentration = self.concentration
        if self.unit.is_volume:
            return absolute
        assert concentration is not None
        in_container_unit = convert_amount(absolute, self.unit.amount, concentration.unit)
        return _DOWN.divide(_DOWN.multiply(in_container_unit, concentration.volume_ml), concentration.amount)

    def per_hour(self, rate_ml_per_h: Decimal) -> Decimal:
        """The ledger amount per hour a flow delivers, rounded up at the 40th digit."""
        concentration = self.concentration
        if self.unit.is_volume:
            return _UP.divide(rate_ml_per_h, self.basis)
        assert concentration is not None
        per_container = convert_amount(concentration.amount, concentration.unit, self.unit.amount)
        return _UP.divide(
            _UP.multiply(rate_ml_per_h, per_container), _UP.multiply(concentration.volume_ml, self.basis)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PcaPlan:
    """What a PCA program runs as: its dosing, basal rate (mL/h), the ledger's basal per hour and
    ceilings, and the loading dose in the ledger's unit."""

    dosing: PcaDosing
    basal_rate_ml_per_h: Decimal
    ledger: PcaLedger
    loading: Decimal | None


class PcaControl:
    """PCA therapy set-up, doses, the basal at a ceiling and the physiologic pause of one pump."""

    def __init__(self, core: PumpCore, alarming: AlarmControl) -> None:
        self.core = core
        self.alarming = alarming

    # ----------------------------------------------------------------- set-up

    def dosing_for(self, program: InfusionProgram, verdict: Verdict) -> PcaDosing:
        """How a checked PCA program's amounts become volumes (its entry's unit and concentration,
        the patient's weight or BSA).

        Raises:
            PumpError: ``pump.pca_weight_required``/``pump.pca_bsa_required`` for a per-kg/per-m2
                unit without the patient's weight/BSA; ``pump.pca_concentration`` without one.
        """
        assert verdict.entry_id is not None
        entry = self.core.active_library().entry(verdict.entry_id)
        assert entry.pca is not None
        unit = entry.pca.demand_dose.unit
        concentration = program.concentration or (entry.concentrations[0] if entry.concentrations else None)
        if concentration is None and not unit.is_volume:
            raise PumpError(f"{entry.id} has no concentration to dose from", code="pump.pca_concentration")
        return PcaDosing(unit=unit, concentration=concentration, basis=self._basis(unit, program, verdict))

    def plan(self, program: InfusionProgram, verdict: Verdict) -> PcaPlan:
        """The dosing, basal and ledger of a checked PCA program (the ledger without history).

        Raises:
            PumpError: as ``dosing_for``; ``pump.pca_unit_mismatch`` for an amount that does not
                convert to the PCA unit; the device's rate refusal of the basal rate.
        """
        core = self.core
        settings = program.pca
        assert settings is not None and verdict.entry_id is not None
        limits = core.active_library().entry(verdict.entry_id).pca
        assert limits is not None
        dosing = self.dosing_for(program, verdict)
        unit = dosing.unit
        rate = verdict.rate_ml_per_h
        if settings.basal:
            check_rate(core, rate)
        area = core.area()
        try:
            ledger = PcaLedger(
                demand_dose=settings.demand_dose,
                lockout_s=settings.lockout_min * 60,
                ceilings=ceilings_for(limits, area, settings, unit),
                basal_per_h=dosing.per_hour(rate) if rate > 0 else ZERO,
                window_s=library_window_h(limits, area) * SECONDS_PER_HOUR,
            )
            dosing.volume_ml(settings.demand_dose)
        except UnitError as error:
            raise PumpError(error.message, code="pump.pca_unit_mismatch") from None
        loading = settings.loading_dose
        if loading is not None and limits.loading_dose is not None:
            loading = _in_unit(loading, limits.loading_dose.unit, unit, "loading dose")
        return PcaPlan(dosing=dosing, basal_rate_ml_per_h=rate, ledger=ledger, loading=loading)

    @staticmethod
    def _basis(unit: DoseUnit, program: InfusionProgram, verdict: Verdict) -> Decimal:
        if unit.basis is Basis.KG:
            weight = program.patient.weight_kg
            if weight is None or weight <= 0:
                raise PumpError(
                    f"a dose in {unit} needs the patient's weight", code="pump.pca_weight_required"
                )
            return weight
        if unit.basis is Basis.M2:
            bsa = verdict.bsa_m2 or program.patient.bsa_m2
            if bsa is None or bsa <= 0:
                raise PumpError(f"a dose in {unit} needs the patient's BSA", code="pump.pca_bsa_required")
            return bsa
        return _ONE

    def check_start(self, channel: Channel) -> None:
        """Refuse (``start.refused``) a PCA start that cannot run: no weight for a per-kg unit, a
        unit that does not convert, or a loading dose beyond a ceiling (``pump.pca_loading_max_dose``);
        nothing changes on the channel."""
        pending = channel.pending
        if pending is None or pending.program.kind is not ProgramKind.PCA:
            return
        core = self.core
        try:
            plan = self.plan(pending.program, pending.verdict)
        except PumpError as error:
            core.refuse_start(channel.id, error.code, error.message)
        if plan.loading and plan.ledger.evaluate(core.t, plan.loading, DoseKind.LOADING) is not None:
            tight = plan.ledger.reference_ceiling
            assert tight is not None
            core.refuse_start(
                channel.id,
                "pump.pca_loading_max_dose",
                f"the loading dose of {plan.loading} {plan.dosing.unit} exceeds the PCA maximum of "
                f"{tight.max_amount} {plan.dosing.unit} per {tight.window_s / SECONDS_PER_HOUR} h",
            )

    def setup(self, therapy: Therapy) -> None:
        """Fill a PCA therapy's basal rate (the verdict's), dose rate and ledger from its entry."""
        plan = self.plan(therapy.program, therapy.verdict)
        therapy.rate_ml_per_h = plan.basal_rate_ml_per_h
        therapy.kvo_rate_ml_per_h = ZERO
        therapy.pca_unit = str(plan.dosing.unit)
        therapy.pca_bolus_rate_ml_per_h = pca_bolus_rate(self.core, therapy.program)
        therapy.pca = plan.ledger

    def restored(self, channel: Channel, basal_suspended: bool) -> None:
        """A therapy restored after a power cycle: a basal that was suspended at a ceiling stays
        suspended and its alarm is shown again (the nurse's clear resumes it)."""
        therapy = channel.therapy
        assert therapy is not None and therapy.pca is not None
        if basal_suspended:
            therapy.pca.basal_suspended = True
            therapy.rate_ml_per_h = ZERO
            self._raise_max_dose(channel)

    # ----------------------------------------------------------------- doses

    def _ceiling_data(self, ledger: PcaLedger) -> dict[str, EventValue]:
        """The ceiling that binds now (least headroom): its source, maximum, window and total."""
        t = self.core.t
        headroom = ledger.headroom(t)
        if headroom is None:
            window_s = ledger.window_s
            return {
                "window_total": ledger.window_total(t),
                "max_dose": None,
                "window_h": None if window_s is None else window_s / SECONDS_PER_HOUR,
                "ceiling": None,
            }
        return {
            "window_total": headroom.window_total,
            "max_dose": headroom.ceiling.max_amount,
            "window_h": headroom.ceiling.window_s / SECONDS_PER_HOUR,
            "ceiling": headroom.ceiling.source.value,
        }

    def dose(self, channel: Channel, amount: Decimal, kind: DoseKind, overlay: OverlayKind) -> None:
        """Grant a dose (``amount`` in the entry's unit for that kind of dose) in the ledger, log it
        with its absolute amount and volume, and deliver that volume as an overlay."""
        core = self.core
        therapy = channel.therapy
        assert therapy is not None and therapy.pca is not None
        assert therapy.pca_bolus_rate_ml_per_h is not None and therapy.verdict.entry_id is not None
        dosing = self.dosing_for(therapy.program, therapy.verdict)
        limits = core.active_library().entry(therapy.verdict.entry_id).pca
        assert limits is not None
        given = {DoseKind.LOADING: limits.loading_dose, DoseKind.CLINICIAN: limits.clinician_bolus}.get(kind)
        if given is not None:
            amount = _in_unit(amount, given.unit, dosing.unit, f"{kind} dose")
        therapy.pca.grant(core.t, amount, kind)
        volume = dosing.volume_ml(amount)
        doses: dict[str, EventValue] = {
            "dose": amount,
            "unit": therapy.pca_unit,
            "delivered_amount": dosing.delivered_amount(amount),
            "delivered_unit": dosing.delivered_unit,
            "volume_ml": volume,
        }
        if kind is DoseKind.DEMAND:
            core.emit(EventType.PCA_DEMAND_GRANTED, channel.id, **doses, **self._ceiling_data(therapy.pca))
        else:
            core.emit(
                EventType.PCA_DOSE_GRANTED,
                channel.id,
                kind=kind.value,
                **doses,
                **self._ceiling_data(therapy.pca),
            )
        start_overlay(
            core, channel, overlay, therapy.pca_bolus_rate_ml_per_h, volume, amount, therapy.pca_unit
        )

    def demand(self, cid: str) -> bool:
        """The patient presses the button: grant (True) or deny (False, logged with the reason)."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        therapy = channel.therapy
        if therapy is None or therapy.pca is None:
            raise PumpError(f"channel {cid} is not running a PCA therapy", code="pump.not_pca")
        ledger = therapy.pca
        denial: Denial | None
        if core.alarms.is_active(AlarmId.PCA_PAUSED, cid):
            denial = Denial.PAUSED
        elif channel.state is not ChannelState.RUNNING:
            denial = Denial.NOT_RUNNING
        elif therapy.overlay is not None:
            denial = Denial.DOSE_IN_PROGRESS
        else:
            denial = ledger.evaluate(core.t, ledger.demand_dose, DoseKind.DEMAND)
        if denial is not None:
            core.emit(
                EventType.PCA_DEMAND_DENIED,
                cid,
                reason=denial.value,
                next_allowed_in_s=ledger.lockout_remaining_s(core.t),
                **self._ceiling_data(ledger),
            )
            return False
        self.dose(channel, ledger.demand_dose, DoseKind.DEMAND, OverlayKind.PCA_DEMAND)
        return True

    def clinician_bolus(self, cid: str, amount: Decimal) -> None:
        """A clinician bolus on a PCA channel, within the entry's limits and every ceiling."""
        core = self.core
        core.sync()
        channel = core.channel(cid)
        therapy = channel.therapy
        if therapy is None or therapy.pca is None or channel.state is not ChannelState.RUNNING:
            raise PumpError(f"channel {cid} is not running a PCA therapy", code="pump.not_pca")
        assert therapy.verdict.entry_id is not None
        limits = core.active_library().entry(therapy.verdict.entry_id).pca
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
        in_unit = _in_unit(amount, limits.clinician_bolus.unit, limits.demand_dose.unit, "clinician bolus")
        if therapy.pca.evaluate(core.t, in_unit, DoseKind.CLINICIAN) is not None:
            raise PumpError("the bolus would exceed the maximum over the window", code="pump.pca_max_dose")
        self.dose(channel, amount, DoseKind.CLINICIAN, OverlayKind.CLINICIAN_BOLUS)

    # ----------------------------------------------------------------- the basal at a ceiling

    def ceiling_due(self, channel: Channel) -> None:
        """The basal alone reaches a ceiling now: suspend it (flow 0, the channel keeps running),
        log ``pca.max_dose_reached`` and raise the alarm. When a dose left a window meanwhile there
        is room again and nothing happens (the next due is computed afresh)."""
        core = self.core
        therapy = channel.therapy
        assert therapy is not None and therapy.pca is not None
        ledger = therapy.pca
        if not ledger.basal_at_ceiling(core.t):
            return
        ledger.suspend_basal(core.t)
        therapy.rate_ml_per_h = ZERO
        core.emit(
            EventType.PCA_MAX_DOSE_REACHED, channel.id, unit=therapy.pca_unit, **self._max_dose_data(ledger)
        )
        self._raise_max_dose(channel)

    def _max_dose_data(self, ledger: PcaLedger) -> dict[str, EventValue]:
        data = self._ceiling_data(ledger)
        return {k: data[k] for k in ("ceiling", "max_dose", "window_h", "window_total")}

    def _raise_max_dose(self, channel: Channel) -> None:
        therapy = channel.therapy
        assert therapy is not None and therapy.pca is not None
        headroom = therapy.pca.headroom(self.core.t)
        assert headroom is not None
        self.alarming.raise_(
            AlarmId.PCA_MAX_DOSE, channel.id, value=headroom.window_total, limit=headroom.ceiling.max_amount
        )

    def clear_max_dose(self, cid: str | None) -> None:
        """The nurse clears the PCA maximum alarm: the basal resumes when every ceiling has room
        again (``pca.basal_resumed``); while one is still reached the clear is refused
        (``pump.pca_max_dose_persists``) and the alarm stays."""
        core = self.core
        core.sync()
        channel = core.channels.get(cid) if cid is not None else None
        therapy = channel.therapy if channel is not None else None
        ledger = therapy.pca if therapy is not None else None
        if channel is None or therapy is None or ledger is None or not ledger.basal_suspended:
            self.alarming.clear_alarm(AlarmId.PCA_MAX_DOSE, cid)
            return
        if not ledger.may_resume_basal(core.t):
            data = self._ceiling_data(ledger)
            raise PumpError(
                f"the PCA maximum is still reached ({data['window_total']} of {data['max_dose']} "
                f"{therapy.pca_unit} over {data['window_h']} h): the basal stays suspended",
                code="pump.pca_max_dose_persists",
            )
        self.alarming.clear_alarm(AlarmId.PCA_MAX_DOSE, channel.id)
        ledger.resume_basal(core.t)
        therapy.rate_ml_per_h = therapy.verdict.rate_ml_per_h
        core.emit(
            EventType.PCA_BASAL_RESUMED,
            channel.id,
            rate_ml_per_h=therapy.rate_ml_per_h,
            unit=therapy.pca_unit,
            **self._max_dose_data(ledger),
        )
        core.after_change()

    # ----------------------------------------------------------------- physiologic pause

    def record_vitals(
        self,
        *,
        spo2_percent: Decimal | None,
        etco2_mmhg: Decimal | None,
        resp_rate_bpm: Decimal | None,
    ) -> None:
        """A monitor reading; crossing a care-area threshold pauses every PCA channel (physiologic pause)."""
        core = self.core
        core.sync()
        core.emit(
            EventType.VITALS_RECORDED,
            None,
            spo2_percent=spo2_percent,
            etco2_mmhg=etco2_mmhg,
            resp_rate_bpm=resp_rate_bpm,
        )
        settings = core.area().pca
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
            for channel in core.channels.values():
                self.alarming.condition_ended(AlarmId.PCA_PAUSED, channel.id)
            return
        reading, value, threshold = crossed
        for channel in core.channels.values():
            if channel.therapy is not None and channel.therapy.pca is not None:
                if not core.alarms.is_active(AlarmId.PCA_PAUSED, channel.id):
                    core.emit(
                        EventType.PCA_PAUSED, channel.id, reading=reading, value=value, threshold=threshold
                    )
                self.alarming.raise_(AlarmId.PCA_PAUSED, channel.id, value=value, limit=threshold)
        core.after_change()

    # ----------------------------------------------------------------- derived state

    def after_change(self) -> None:
        """Cancel the rest of a PCA dose on a channel that stopped running (a dose is never delivered
        later than the ledger counts it); open or close each ledger's basal segment as the basal
        really flows (running, no dose in progress, not suspended); drop the maximum alarm of a
        channel whose PCA therapy ended."""
        core = self.core
        for channel in core.channels.values():
            therapy = channel.therapy
            if therapy is not None and therapy.pca is not None:
                overlay = therapy.overlay
                if overlay is not None and channel.state is not ChannelState.RUNNING:
                    core.emit(
                        EventType.BOLUS_CANCELLED,
                        channel.id,
                        kind=overlay.kind.value,
                        delivered_ml=overlay.delivered_ml,
                        reason=channel.state.value,
                    )
                    therapy.overlay = None
                basal_flowing = (
                    channel.state is ChannelState.RUNNING
                    and therapy.overlay is None
                    and therapy.rate_ml_per_h > 0
                )
                therapy.pca.basal_running(core.t, basal_flowing)
            else:
                self.alarming.end(AlarmId.PCA_MAX_DOSE, channel.id, EndedBy.STOPPED)
