"""What a pump channel really delivered, computed independently of DERS, and the invariant of issue 13.

The physics reads only what a pump shows: ``pump.channels[cid]`` (state, flow, therapy: program,
verdict, rate, VTBI, volumes, overlay), the library entry in force, the concentration of the
container hung on the channel (the program's, or the entry's only one) and the patient's weight or
BSA. Quantities are exact rationals (``fractions.Fraction`` over the pump's Decimals); amounts are
converted between units of one dimension with ``smartpump.units.convert_amount`` (powers of ten)
and time bases with the exact table below. ``ders.check`` is never called: the point is to check it.

``DeliveryWatch.observe`` asserts, for every channel with a library therapy, after every step:

- the drug, entry and concentration on the channel never change while the therapy exists;
- continuous: the dose rate of the rate the pump runs (and of the motor's flow, KVO included) is
  within the entry's hard limits, and the verdict's dose IS that dose (delivered equals checked; a
  multistep program is held to the limits at every step);
- intermittent: the VTBI is finite and holds the checked dose; the amount infused never exceeds the
  entry's hard maximum nor the checked dose;
- bolus and loading: allowed by the entry of the running therapy, within its hard maximum, and the
  volume holds the dose the overlay was checked for;
- secondary: allowed by its entry and the care area, within its entry's hard maximum;
- PCA: demand, clinician and loading doses within their hard maxima and equal to what was checked
  (per kg times the weight); basal within its hard maximum; and the library's maximum over its window
  is a ceiling on the amount delivered in every trailing window (from volumes this watch recorded; a
  dose counts in the window it was granted in, as a PCA ledger counts it).
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any, Final

from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind, Verdict
from smartpump.library.formats import json_format
from smartpump.library.limits import LimitSet
from smartpump.library.model import CareArea, DoseLimits, DrugLibrary, Entry
from smartpump.pump import ChannelState, Pump
from smartpump.pump.delivery import OverlayKind
from smartpump.units import (
    Basis,
    Concentration,
    DoseUnit,
    TimeUnit,
    bsa_mosteller_m2,
    convert_amount,
    round_half_up,
)
from tests import vendor_libraries
from tests.conftest import REPO

HOURS_PER_TIME_UNIT: Final = {
    TimeUnit.MIN: Fraction(1, 60),
    TimeUnit.H: Fraction(1),
    TimeUnit.DAY: Fraction(24),
}
SAME_DOSE_RELATIVE: Final = Fraction(1, 10**30)
"""Tolerance of ``same_dose`` where exact equality cannot be asked: smartpump.units computes in 40
digits, so a non-terminating quotient (or the 1/24 of a per-day unit) is rounded there."""

SECONDS_PER_HOUR: Final = 3600
_WIDE: Final = Context(prec=400)
_DELIVERING: Final = (ChannelState.RUNNING, ChannelState.KVO)


# ----------------------------------------------------------------- libraries under test


@functools.cache
def demo_library() -> DrugLibrary:
    """examples/demo-library.json (EXAMPLE DATA, not for clinical use), read once per session."""
    return json_format.read(REPO / "examples" / "demo-library.json")


def alaris_v66() -> DrugLibrary:
    """The real BD Alaris v66 library imported from ../shared/data (fails when absent), once per session."""
    return vendor_libraries.alaris(66).library


# ----------------------------------------------------------------- patient and exact physics


@dataclass(frozen=True, slots=True)
class Patient:
    """The patient on the pump: weight (kg), height (cm), and the BSA the care area reads from them."""

    weight_kg: Decimal
    height_cm: Decimal
    bsa_m2: Decimal

    @classmethod
    def of(cls, weight_kg: Decimal, height_cm: Decimal, area: CareArea) -> Patient:
        """BSA by Mosteller, rounded half-up to the care area's BSA resolution when it has one."""
        bsa = bsa_mosteller_m2(weight_kg, height_cm)
        if area.bsa_resolution_m2 is not None:
            bsa = round_half_up(bsa, area.bsa_resolution_m2)
        return cls(weight_kg=weight_kg, height_cm=height_cm, bsa_m2=bsa)

    @property
    def parameters(self) -> PatientParameters:
        """The patient as a program carries it (weight and height; BSA is derived)."""
        return PatientParameters(weight_kg=self.weight_kg, height_cm=self.height_cm)


def per_ml(concentration: Concentration | None, unit: DoseUnit) -> Fraction:
    """Drug per mL of the container, in the amount unit of ``unit`` (1 mL/mL for volume units).

    Raises AssertionError when the container's drug cannot be measured in that unit (mg vs units).
    """
    if unit.is_volume:
        return Fraction(1)
    assert concentration is not None, f"a dose in {unit} needs the container's concentration"
    assert concentration.unit.dimension is unit.amount.dimension, (
        f"the container holds {concentration} but the dose is measured in {unit}: another drug"
    )
    amount = convert_amount(concentration.amount, concentration.unit, unit.amount)
    return Fraction(amount) / Fraction(concentration.volume_ml)


def basis(unit: DoseUnit, patient: Patient) -> Fraction:
    """What a dose in ``unit`` is normalised by: the weight (kg), the BSA (m2) or 1."""
    if unit.basis is Basis.KG:
        return Fraction(patient.weight_kg)
    if unit.basis is Basis.M2:
        return Fraction(patient.bsa_m2)
    return Fraction(1)


def amount_in(
    volume_ml: Decimal, unit: DoseUnit, concentration: Concentration | None, patient: Patient
) -> Fraction:
    """The drug held by ``volume_ml`` of the container, in a total-dose unit (mEq, mg/kg, mg/m2)."""
    assert unit.time is None, f"{unit} is a dose rate, not an amount"
    return Fraction(volume_ml) * per_ml(concentration, unit) / basis(unit, patient)


def dose_rate(
    flow_ml_per_h: Decimal, unit: DoseUnit, concentration: Concentration | None, patient: Patient
) -> Fraction:
    """The dose rate a flow delivers, in a dose-rate unit (mcg/kg/min, units/h, mg/m2/day, mL/h)."""
    assert unit.time is not None, f"{unit} is an amount, not a dose rate"
    per_hour = Fraction(flow_ml_per_h) * per_ml(concentration, unit) / basis(unit, patient)
    return per_hour * HOURS_PER_TIME_UNIT[unit.time]


def flow_for(
    dose: Decimal, unit: DoseUnit, concentration: Concentration | None, patient: Patient
) -> Fraction:
    """The flow (mL/h) that delivers a dose rate (inverse of dose_rate)."""
    assert unit.time is not None, f"{unit} is an amount, not a dose rate"
    return Fraction(dose) / (
        per_ml(concentration, unit) / basis(unit, patient) * HOURS_PER_TIME_UNIT[unit.time]
    )


def volume_for(
    amount: Decimal, unit: DoseUnit, concentration: Concentration | None, patient: Patient
) -> Fraction:
    """The container volume (mL) that holds ``amount`` in a total-dose unit (inverse of amount_in)."""
    assert unit.time is None, f"{unit} is a dose rate, not an amount"
    return Fraction(amount) * basis(unit, patient) / per_ml(concentration, unit)


def _terminates(value: Fraction) -> bool:
    """True when the value has a finite decimal expansion of at most 40 significant digits."""
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return False
    quotient = _WIDE.divide(Decimal(value.numerator), Decimal(value.denominator))
    return len(quotient.normalize(_WIDE).as_tuple().digits) <= 40


def same_dose(checked: Decimal | None, exact: Fraction, unit: DoseUnit) -> bool:
    """True when a Decimal dose is the exact dose: equal when the exact dose is a terminating decimal
    (and the unit has no per-day base), otherwise equal to 30 significant digits."""
    if checked is None:
        return False
    if _terminates(exact) and unit.time is not TimeUnit.DAY:
        return Fraction(checked) == exact
    return abs(Fraction(checked) - exact) <= abs(exact) * SAME_DOSE_RELATIVE


def container_concentration(entry: Entry | None, chosen: Concentration | None) -> Concentration | None:
    """The concentration of the container a program hangs: its own, else the entry's only one."""
    if chosen is not None or entry is None:
        return chosen
    if len(entry.concentrations) == 1:
        return entry.concentrations[0]
    return None


def same_container(a: Concentration | None, b: Concentration | None) -> bool:
    """True when two containers hold the same strength in the same volume (or both are None)."""
    if a is None or b is None:
        return a is b
    return a.same_strength(b) and a.volume_ml == b.volume_ml


def hard_max(limits: LimitSet) -> Fraction | None:
    """The hard maximum as an exact rational, or None when not configured."""
    return None if limits.hard_max is None else Fraction(limits.hard_max)


def hard_min(limits: LimitSet) -> Fraction | None:
    """The hard minimum as an exact rational, or None when not configured."""
    return None if limits.hard_min is None else Fraction(limits.hard_min)


def show(value: Fraction) -> str:
    """A rational as people read it (8 significant digits)."""
    return f"{float(value):.8g}"


# ----------------------------------------------------------------- trailing windows


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    """What the watch saw of a container at one moment: the cumulative volume out of it, and a dose
    still running then with the time of the observation before it appeared (it was granted after)."""

    t_s: Decimal
    delivered_ml: Decimal
    in_flight_ml: Decimal = Decimal(0)
    in_flight_since_s: Decimal = Decimal(0)


def _time_of(record: VolumeRecord) -> Decimal:
    return record.t_s


def trailing_window_ml(history: list[VolumeRecord], window_s: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """A lower bound of the volume delivered in the window of ``window_s`` ending at the last record:
    from the earliest record inside the window to the last. A dose still running at that first record
    that may have been granted before the window counts in the window it was granted in (as a PCA ledger
    counts a dose in full from its grant), so its rest is left out.

    Returns (first record time, end time, volume).
    """
    end = history[-1]
    first = history[bisect_left(history, end.t_s - window_s, key=_time_of)]
    volume = end.delivered_ml - first.delivered_ml
    if first.in_flight_since_s < end.t_s - window_s:
        volume -= first.in_flight_ml
    return first.t_s, end.t_s, volume


# ----------------------------------------------------------------- the watch


@dataclass(slots=True)
class _Secondary:
    overlay: Any
    entry: Entry | None
    concentration: Concentration | None


@dataclass(slots=True)
class _Therapy:
    """What hung on a channel when its therapy started, and what this watch saw since."""

    therapy: Any
    entry: Entry | None
    concentration: Concentration | None
    kind: ProgramKind
    start_verdict: Verdict
    verdict: Verdict
    infused_at_verdict_ml: Decimal
    volumes: list[VolumeRecord] = field(default_factory=list)
    in_flight: tuple[Any, Decimal] | None = None
    secondary: _Secondary | None = None


def _volume_record(t_s: Decimal, seen: _Therapy, therapy: Any, previous_s: Decimal) -> VolumeRecord:
    """The container's volume now, and the dose from it still running (first seen after previous_s)."""
    overlay = therapy.overlay
    delivered = therapy.infused_ml + therapy.kvo_ml
    if overlay is None or not overlay.kind.from_primary_container:
        return VolumeRecord(t_s=t_s, delivered_ml=delivered)
    if seen.in_flight is None or seen.in_flight[0] is not overlay:
        seen.in_flight = (overlay, previous_s)
    return VolumeRecord(
        t_s=t_s,
        delivered_ml=delivered,
        in_flight_ml=overlay.volume_ml - overlay.delivered_ml,
        in_flight_since_s=seen.in_flight[1],
    )


class DeliveryWatch:
    """Observes a pump after every step and asserts issue 13's invariant on each channel."""

    def __init__(self, library: DrugLibrary, area: CareArea) -> None:
        self.library = library
        self.area = area
        self._therapies: dict[str, _Therapy] = {}
        self._secondary_programs: dict[str, InfusionProgram] = {}
        self._observed_s: Decimal | None = None

    def secondary_programmed(self, cid: str, program: InfusionProgram) -> None:
        """Note the secondary container about to be hung on a channel (its program describes it)."""
        self._secondary_programs[cid] = program

    def observe(self, pump: Pump, patient: Patient) -> None:
        """Assert the invariant on every channel of the pump now."""
        previous_s = pump.now_s if self._observed_s is None else self._observed_s
        self._observed_s = pump.now_s
        for cid, channel in pump.channels.items():
            therapy = channel.therapy
            if therapy is None:
                self._therapies.pop(cid, None)
                continue
            seen = self._therapies.get(cid)
            if seen is None or seen.therapy is not therapy:
                seen = self._started(therapy)
                self._therapies[cid] = seen
            where = f"channel {cid} ({seen.entry.id if seen.entry else 'basic'})"
            self._same_drug(where, seen, therapy)
            if seen.entry is None:
                continue
            if therapy.verdict is not seen.verdict:
                seen.verdict = therapy.verdict
                seen.infused_at_verdict_ml = therapy.infused_ml
            seen.volumes.append(_volume_record(pump.now_s, seen, therapy, previous_s))
            if seen.kind is ProgramKind.CONTINUOUS:
                self._continuous(where, seen, channel, patient)
            elif seen.kind is ProgramKind.INTERMITTENT:
                self._intermittent(where, seen, therapy, patient)
            elif seen.kind is ProgramKind.PCA:
                self._pca(where, seen, channel, patient)
            self._overlay(where, cid, seen, therapy, patient)

    # --------------------------------------------------------------- per therapy

    def _started(self, therapy: Any) -> _Therapy:
        verdict: Verdict = therapy.verdict
        program: InfusionProgram = therapy.program
        entry = self.library.entry(verdict.entry_id) if verdict.entry_id is not None else None
        return _Therapy(
            therapy=therapy,
            entry=entry,
            concentration=container_concentration(entry, program.concentration),
            kind=program.kind,
            start_verdict=verdict,
            verdict=verdict,
            infused_at_verdict_ml=therapy.infused_ml,
        )

    def _same_drug(self, where: str, seen: _Therapy, therapy: Any) -> None:
        verdict: Verdict = therapy.verdict
        program: InfusionProgram = therapy.program
        was = seen.entry.id if seen.entry else None
        assert verdict.entry_id == was, (
            f"{where}: the running therapy switched from entry {was} to {verdict.entry_id} "
            "without stop -> new program -> start (a titration may not switch the drug)"
        )
        if seen.entry is None:
            return
        drug_id = getattr(therapy, "drug_id", seen.entry.drug_id)
        assert drug_id == seen.entry.drug_id, (
            f"{where}: the drug became {drug_id}, the bag holds {seen.entry.drug_id}"
        )
        now = container_concentration(seen.entry, program.concentration)
        assert same_container(now, seen.concentration), (
            f"{where}: the program now says {now}, the container on the channel holds {seen.concentration}"
        )
        assert program.kind is seen.kind, (
            f"{where}: the therapy changed kind from {seen.kind} to {program.kind}"
        )

    def _continuous(self, where: str, seen: _Therapy, channel: Any, patient: Patient) -> None:
        assert seen.entry is not None
        therapy = channel.therapy
        unit, limits = seen.entry.dose.unit, seen.entry.dose.limits
        verdict: Verdict = therapy.verdict
        top, bottom = hard_max(limits), hard_min(limits)
        runs = dose_rate(therapy.rate_ml_per_h, unit, seen.concentration, patient)
        running = f"{where}: runs {therapy.rate_ml_per_h} mL/h = {show(runs)} {unit}"
        assert top is None or runs <= top, f"{running}, above the hard max {limits.hard_max}"
        assert bottom is None or runs >= bottom, f"{running}, below the hard min {limits.hard_min}"
        flow = channel.flow_ml_per_h
        if channel.state in _DELIVERING and therapy.overlay is None:
            now = dose_rate(flow, unit, seen.concentration, patient)
            assert top is None or now <= top, (
                f"{where}: the motor runs {flow} mL/h = {show(now)} {unit}, "
                f"above the hard max {limits.hard_max}"
            )
        rate_top = hard_max(seen.entry.rate_ml_per_h.limits)
        assert rate_top is None or therapy.rate_ml_per_h <= rate_top, (
            f"{where}: runs {therapy.rate_ml_per_h} mL/h, above the entry's rate hard max {rate_top}"
        )
        if getattr(therapy, "steps", None):
            return  # a multistep verdict is its worst step's: each step is held to the limits above
        assert therapy.rate_ml_per_h == verdict.rate_ml_per_h, (
            f"{where}: runs {therapy.rate_ml_per_h} mL/h, the verdict checked {verdict.rate_ml_per_h} mL/h"
        )
        assert verdict.dose_unit == str(unit), (
            f"{where}: the verdict's dose is in {verdict.dose_unit}, not {unit}"
        )
        assert same_dose(verdict.dose, runs, unit), (
            f"{where}: delivered {show(runs)} {unit} at {therapy.rate_ml_per_h} mL/h, "
            f"the verdict says {verdict.dose} {verdict.dose_unit} (delivered must equal checked)"
        )

    def _intermittent(self, where: str, seen: _Therapy, therapy: Any, patient: Patient) -> None:
        assert seen.entry is not None
        unit, limits = seen.entry.dose.unit, seen.entry.dose.limits
        vtbi: Decimal | None = therapy.vtbi_ml
        infused: Decimal = therapy.infused_ml
        assert vtbi is not None, f"{where}: an intermittent infusion without a VTBI never ends at its dose"
        given = amount_in(infused, unit, seen.concentration, patient)
        top = hard_max(limits)
        assert top is None or given <= top, (
            f"{where}: infused {infused} mL = {show(given)} {unit}, above the hard max {limits.hard_max}"
        )
        checked = seen.verdict.dose
        if checked is not None:
            allowed = max(
                Fraction(checked), amount_in(seen.infused_at_verdict_ml, unit, seen.concentration, patient)
            )
            assert given <= allowed or same_dose(checked, given, unit), (
                f"{where}: infused {infused} mL = {show(given)} {unit}, more than the checked {checked} "
                "(the infusion must end at its dose)"
            )
        start = seen.start_verdict
        if seen.verdict is start and start.dose is not None:
            held = amount_in(vtbi, unit, seen.concentration, patient)
            assert same_dose(start.dose, held, unit), (
                f"{where}: the VTBI {vtbi} mL holds {show(held)} {unit}, the verdict checked {start.dose} "
                f"{start.dose_unit} (delivered must equal checked)"
            )

    def _pca(self, where: str, seen: _Therapy, channel: Any, patient: Patient) -> None:
        assert seen.entry is not None
        pca = seen.entry.pca
        assert pca is not None, f"{where}: a PCA therapy on an entry without PCA limits"
        therapy = channel.therapy
        flow = channel.flow_ml_per_h
        if channel.state is ChannelState.RUNNING and therapy.overlay is None and flow > 0:
            assert pca.basal is not None, f"{where}: a basal of {flow} mL/h runs on an entry without a basal"
            basal = dose_rate(flow, pca.basal.unit, seen.concentration, patient)
            top = hard_max(pca.basal.limits)
            assert top is None or basal <= top, (
                f"{where}: the basal runs {flow} mL/h = {show(basal)} {pca.basal.unit}, "
                f"above the hard max {pca.basal.limits.hard_max}"
            )
        if pca.max_dose is None or pca.max_dose.limits.hard_max is None:
            return
        window_h = pca.max_dose_window_h or self.area.pca.max_dose_window_h
        if window_h is None:
            return
        ceiling = Fraction(pca.max_dose.limits.hard_max)
        start_t, end_t, volume = trailing_window_ml(seen.volumes, Decimal(window_h * SECONDS_PER_HOUR))
        given = amount_in(volume, pca.max_dose.unit, seen.concentration, patient)
        # the pump integrates volumes in Decimal's 28-digit context: 1e-20 of the ceiling is that rounding
        assert given <= ceiling * (1 + Fraction(1, 10**20)), (
            f"{where}: delivered {volume} mL = {show(given)} {pca.max_dose.unit} between "
            f"t={start_t}s and t={end_t}s, above the library's maximum {pca.max_dose.limits.hard_max} "
            f"over {window_h} h (a ceiling the basal counts toward)"
        )

    def _overlay(self, where: str, cid: str, seen: _Therapy, therapy: Any, patient: Patient) -> None:
        overlay = therapy.overlay
        if overlay is None:
            return
        if overlay.kind is OverlayKind.SECONDARY:
            self._secondary(where, cid, seen, overlay, patient)
            return
        assert seen.entry is not None
        limits = self._overlay_limits(where, seen.entry, overlay.kind)
        unit = limits.unit
        given = amount_in(overlay.delivered_ml, unit, seen.concentration, patient)
        top = hard_max(limits.limits)
        assert top is None or given <= top, (
            f"{where}: the {overlay.kind} delivered {overlay.delivered_ml} mL = {show(given)} {unit}, "
            f"above the hard max {limits.limits.hard_max}"
        )
        dose_unit = getattr(overlay, "dose_unit", None)
        assert dose_unit in (None, str(unit)), (
            f"{where}: the {overlay.kind} was checked in {dose_unit}, the running entry doses it in {unit}: "
            "a bolus must use the running therapy's entry"
        )
        checked = self._overlay_checked(seen, overlay)
        held = amount_in(overlay.volume_ml, unit, seen.concentration, patient)
        assert checked is not None and same_dose(checked, held, unit), (
            f"{where}: the {overlay.kind} runs {overlay.volume_ml} mL = {show(held)} {unit} "
            f"from the container on the channel, but {checked} {unit} was checked"
        )

    @staticmethod
    def _overlay_checked(seen: _Therapy, overlay: Any) -> Decimal | None:
        """The dose an overlay was checked for: the overlay's own, else the PCA program's."""
        dose: Decimal | None = getattr(overlay, "dose", None)
        if dose is not None:
            return dose
        pca: PCAProgram | None = seen.therapy.program.pca
        if pca is None:
            return None
        if overlay.kind is OverlayKind.PCA_DEMAND:
            return pca.demand_dose
        if overlay.kind is OverlayKind.PCA_LOADING:
            return pca.loading_dose
        return None

    @staticmethod
    def _overlay_limits(where: str, entry: Entry, kind: OverlayKind) -> DoseLimits:
        limits: DoseLimits | None
        if kind is OverlayKind.BOLUS:
            limits = entry.bolus
        elif kind is OverlayKind.LOADING:
            limits = entry.loading
        else:
            assert entry.pca is not None, f"{where}: a {kind} on an entry without PCA limits"
            limits = {
                OverlayKind.PCA_DEMAND: entry.pca.demand_dose,
                OverlayKind.PCA_LOADING: entry.pca.loading_dose,
                OverlayKind.CLINICIAN_BOLUS: entry.pca.clinician_bolus,
            }[kind]
        assert limits is not None, f"{where}: a {kind} runs but the entry {entry.id} does not allow one"
        return limits

    def _secondary(self, where: str, cid: str, seen: _Therapy, overlay: Any, patient: Patient) -> None:
        if seen.secondary is None or seen.secondary.overlay is not overlay:
            program = self._secondary_programs.get(cid)
            assert program is not None, f"{where}: a secondary runs that nobody programmed"
            entry = self.library.entry(program.entry_id) if program.entry_id is not None else None
            seen.secondary = _Secondary(
                overlay=overlay,
                entry=entry,
                concentration=container_concentration(entry, program.concentration),
            )
        secondary = seen.secondary
        entry = secondary.entry
        if entry is None:
            return
        assert entry.allows_secondary, (
            f"{where}: a secondary of {entry.id} runs, the entry does not allow secondaries"
        )
        assert self.area.device.secondary_allowed, (
            f"{where}: a secondary runs, the care area does not allow them"
        )
        unit, limits = entry.dose.unit, entry.dose.limits
        top = hard_max(limits)
        if top is None:
            return
        if unit.time is None:
            given = amount_in(overlay.delivered_ml, unit, secondary.concentration, patient)
        else:
            given = dose_rate(overlay.rate_ml_per_h, unit, secondary.concentration, patient)
        assert given <= top, (
            f"{where}: the secondary of {entry.id} gives {show(given)} {unit}, above {limits.hard_max}"
        )
