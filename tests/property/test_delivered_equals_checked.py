"""Issue 13, delivered equals checked: one property of the whole pump, on the demo and the real Alaris v66
library.

A Hypothesis state machine drives a real Pump on a ManualClock with what a ward does to it: new programs
(doses at and around the limits, rates that need rounding, intermittents with and without a VTBI),
overrides, confirms and starts, titrations (also to ANOTHER entry, concentration or weight), boluses and
loading doses (also with another entry), secondaries, PCA settings, demands and clinician boluses,
weight changes, occlusions, door openings, pause/resume/stop and time from seconds to hours. A refusal
(SmartpumpError) is a fine answer; after every step ``DeliveryWatch`` (tests/property/delivered.py)
recomputes from volumes, concentrations and the patient what the pump really delivered and asserts it
stays within the hard limits of the entry in force and equals what DERS checked.

The first tests below pin the independent physics on hand-computed cases.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from smartpump.clock import ManualClock
from smartpump.ders.program import InfusionProgram, PCAProgram, ProgramKind, VerdictLevel
from smartpump.errors import SmartpumpError
from smartpump.library.model import CareArea, DeliveryMode, DoseLimits, DrugLibrary, Entry, match_key
from smartpump.pump import ChannelState, Pump, PumpModel
from smartpump.pump.capabilities import capabilities
from smartpump.pump.delivery import Step
from smartpump.pump.device import OverrideReason
from smartpump.units import Concentration, DoseUnit, round_half_up
from tests.property.delivered import (
    DeliveryWatch,
    Patient,
    VolumeRecord,
    alaris_v66,
    amount_in,
    demo_library,
    dose_rate,
    flow_for,
    same_dose,
    trailing_window_ml,
    volume_for,
)

D = Decimal

MACHINE_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    report_multiple_bugs=False,
)
"""Explicit, so the CI profile (max_examples=200) does not apply: a passing run takes a few seconds per
test (measured: 1.5-4 s of generation each on a loaded 2-core machine)."""
PCA_MACHINE_SETTINGS = settings(MACHINE_SETTINGS, max_examples=120, stateful_step_count=60)
"""A PCA ceiling is reached only after many demands over hours: longer runs, still a few seconds."""

FACTORS = (D(1), D("0.5"), D("1.2"), D(10), D("1.001"), D("0.999"))
PCA_FACTORS = (D(1), D("0.5"), D("0.999"), D("1.2"))
"""PCA settings stay mostly inside their limits (four of them must pass for a PCA to start)."""
ODD_RATES_ML_PER_H = tuple(
    D(r)
    for r in ("0.013", "0.07", "0.125", "0.25", "1.05", "3.333", "13.125", "47.77", "99.95", "123.4", "250.5")
)
VTBI_CHOICES = ("none", "matching", "ten_times", "1000")
ADVANCE_S = (1, 37, 600, 1800, 3600, 4 * 3600)
CHUNK_S = 300
"""Time advances in chunks of at most 5 min so the watch records volumes often (PCA windows)."""

WEIGHTS_KG = {
    "neonatal": tuple(D(w) for w in ("0.5", "0.83", "1.37", "2.9", "3.3")),
    "pediatric": tuple(D(w) for w in ("0.5", "3.3", "12.7", "20", "33.3")),
    "adult": tuple(D(w) for w in ("48.5", "70", "73.3", "81.7", "123.4")),
}
MOSTLY = st.sampled_from([True, True, True, False])
HEIGHTS_CM = {"neonatal": D(45), "pediatric": D(110), "adult": D(170)}


# ----------------------------------------------------------------- the physics on hand-computed cases


def _patient(weight: str, height: str = "170", area: CareArea | None = None) -> Patient:
    area = area or demo_library().care_area("ADULT_ICU")
    return Patient.of(D(weight), D(height), area)


def test_dose_rate_of_dopamine_at_a_rounded_rate_is_the_exact_rational() -> None:
    # 13.1 mL/h x 1600 mcg/mL / 70 kg / 60 min/h = 20960/4200 mcg/kg/min = 524/105
    rate = dose_rate(
        D("13.1"), DoseUnit.parse("mcg/kg/min"), Concentration.parse("400 mg/250 mL"), _patient("70")
    )
    assert rate == Fraction(524, 105)


def test_dose_rate_of_nicu_morphine_at_0_3_ml_per_h_for_half_a_kilo_is_60_mcg_per_kg_per_h() -> None:
    # 0.3 mL/h x 100 mcg/mL / 0.5 kg = 60 mcg/kg/h: 1.2 x the NICU hard max of 50
    rate = dose_rate(D("0.3"), DoseUnit.parse("mcg/kg/h"), Concentration.parse("5 mg/50 mL"), _patient("0.5"))
    assert rate == 60


def test_amounts_in_volumes_of_kcl_heparin_and_a_per_day_bsa_dose() -> None:
    kcl = amount_in(D(1000), DoseUnit.parse("mEq"), Concentration.parse("10 mEq/100 mL"), _patient("70"))
    assert kcl == 100
    heparin = amount_in(
        D(10), DoseUnit.parse("units/kg"), Concentration.parse("25000 units/250 mL"), _patient("80")
    )
    assert heparin == Fraction(25, 2)
    oncology = demo_library().care_area("ONCOLOGY")
    patient = Patient.of(D(64), D(225), oncology)  # Mosteller: sqrt(225 x 64 / 3600) = 2 m2
    assert patient.bsa_m2 == 2
    per_day = dose_rate(D("2.1"), DoseUnit.parse("mg/m2/day"), Concentration.parse("5000 mg/100 mL"), patient)
    assert per_day == 1260  # 2.1 mL/h x 50 mg/mL x 24 h / 2 m2
    assert volume_for(
        D(20), DoseUnit.parse("mcg/kg"), Concentration.parse("30 mg/30 mL"), _patient("20")
    ) == Fraction(2, 5)


def test_volume_units_need_no_concentration_and_foreign_drugs_are_refused() -> None:
    assert dose_rate(D("12.5"), DoseUnit.parse("mL/h"), None, _patient("70")) == Fraction(25, 2)
    with pytest.raises(AssertionError, match="another drug"):
        amount_in(D(1), DoseUnit.parse("units"), Concentration.parse("400 mg/250 mL"), _patient("70"))


def test_same_dose_is_exact_for_terminating_decimals_and_40_digit_close_otherwise() -> None:
    unit = DoseUnit.parse("mcg/kg/min")
    assert same_dose(D(60), Fraction(60), unit)
    assert not same_dose(D("60.0000000001"), Fraction(60), unit)
    assert same_dose(D("4.990476190476190476190476190476190476190"), Fraction(524, 105), unit)
    assert not same_dose(D(5), Fraction(524, 105), unit)
    assert not same_dose(None, Fraction(1), unit)


def test_trailing_window_counts_recorded_volumes_and_leaves_out_doses_granted_before_it() -> None:
    def record(t: int, ml: int, in_flight: int = 0, since: int = 0) -> VolumeRecord:
        return VolumeRecord(
            t_s=D(t), delivered_ml=D(ml), in_flight_ml=D(in_flight), in_flight_since_s=D(since)
        )

    history = [record(0, 0), record(1800, 4), record(3600, 9), record(5400, 12)]
    assert trailing_window_ml(history[:2], D(3600)) == (D(0), D(1800), D(4))
    assert trailing_window_ml(history[:3], D(3600)) == (D(0), D(3600), D(9))
    assert trailing_window_ml(history, D(3600)) == (D(1800), D(5400), D(8))
    # a 5 mL dose running at 100 s, first seen after the record at 0 s or at 60 s; the window is (50, 3650]
    granted_maybe_before = [record(0, 0), record(100, 0, in_flight=5, since=0), record(3650, 9)]
    assert trailing_window_ml(granted_maybe_before, D(3600)) == (D(100), D(3650), D(4))
    granted_inside = [record(0, 0), record(100, 0, in_flight=5, since=60), record(3650, 9)]
    assert trailing_window_ml(granted_inside, D(3600)) == (D(100), D(3650), D(9))


def test_watch_accepts_an_exact_dopamine_run_and_catches_a_rate_raised_past_the_hard_max() -> None:
    library = demo_library()
    clock = ManualClock()
    pump = Pump("watch-1", PumpModel.LVP, clock, library=library, channels=1)
    area = pump.select_care_area("ADULT_ICU")
    patient = _patient("64", area=area)  # 5 mcg/kg/min x 64 kg = 12 mL/h exactly
    watch = DeliveryWatch(library, area)
    pump.program("A", _dopamine(D(5), patient))
    pump.confirm("A")
    pump.start("A")
    for _ in range(3):
        clock.advance(600)
        pump.sync()
        watch.observe(pump, patient)
    therapy = pump.channels["A"].therapy
    assert therapy is not None
    therapy.rate_ml_per_h = D(73)  # a defect re-introduced by hand: 30.4 mcg/kg/min, hard max 30
    with pytest.raises(AssertionError, match="above the hard max"):
        watch.observe(pump, patient)


def _dopamine(dose: Decimal, patient: Patient) -> InfusionProgram:
    return InfusionProgram(
        entry_id="ADULT_ICU.dopamine",
        dose=dose,
        concentration=Concentration.parse("400 mg/250 mL"),
        patient=patient.parameters,
        vtbi_ml=D(250),
    )


# ----------------------------------------------------------------- programs drawn around the limits


def _bases(limits: DoseLimits | None) -> tuple[Decimal, ...]:
    """Values a clinician lands on: the configured limits and default (1 when none is configured)."""
    if limits is None:
        return (D(1),)
    ls = limits.limits
    found = tuple(
        v for v in (ls.hard_max, ls.soft_max, ls.soft_min, ls.hard_min, limits.default) if v is not None
    )
    return found or (D(1), D(10))


def _near_limits(
    data: st.DataObject, limits: DoseLimits | None, label: str, factors: tuple[Decimal, ...] = FACTORS
) -> Decimal:
    base = data.draw(st.sampled_from(_bases(limits)), label=f"{label} base")
    return base * data.draw(st.sampled_from(factors), label=f"{label} factor")


def _concentration(data: st.DataObject, entry: Entry) -> Concentration | None:
    """One of the entry's concentrations, else a custom one inside its custom limits."""
    if entry.dose.unit.is_volume:
        return None
    if entry.concentrations:
        shown = [str(c) for c in entry.concentrations]
        return entry.concentrations[shown.index(data.draw(st.sampled_from(shown), label="concentration"))]
    custom = entry.custom_concentration
    assert custom is not None
    ls = custom.limits
    per_ml = next((v for v in (ls.soft_min, ls.hard_min, ls.soft_max, ls.hard_max) if v is not None), D(1))
    return Concentration(per_ml * 100, custom.unit, D(100))


def _duration_min(data: st.DataObject, entry: Entry) -> Decimal:
    b = entry.duration_min
    found = [v for v in (b.default, b.limits.soft_min, b.limits.hard_min, b.limits.soft_max) if v is not None]
    return data.draw(st.sampled_from(found or [D(60)]), label="duration")


class DeliveredMachine(RuleBasedStateMachine):
    """A pump in one care area of a library, with a patient, a clinician and faults."""

    def __init__(self, library: DrugLibrary, area_ids: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.library = library
        self.area_ids = area_ids or tuple(a.id for a in library.care_areas)

    # --------------------------------------------------------------- setup

    @initialize(data=st.data())
    def setup(self, data: st.DataObject) -> None:
        area = self.library.care_area(data.draw(st.sampled_from(self.area_ids), label="care area"))
        kind = _area_kind(area)
        entries = tuple(self.library.entries_in(area.id))
        model = data.draw(st.sampled_from(_models_for(area, kind, entries)), label="model")
        device = capabilities(model).device_type
        usable = tuple(e for e in entries if not e.devices or device in e.devices)
        self.pca_entries = tuple(e for e in usable if e.mode is DeliveryMode.PCA)
        self.plain_entries = tuple(e for e in usable if e.mode is not DeliveryMode.PCA)
        self.bolus_entries = tuple(
            e for e in self.plain_entries if e.bolus is not None or e.loading is not None
        )
        self.clock = ManualClock()
        self.pump = Pump(
            "machine-1",
            model,
            self.clock,
            library=self.library,
            channels=min(2, capabilities(model).max_channels),
        )
        self.area = self.pump.select_care_area(area.id)
        self.weights = WEIGHTS_KG[kind]
        self.height_cm = HEIGHTS_CM[kind]
        self.patient = Patient.of(
            data.draw(st.sampled_from(self.weights), label="weight"), self.height_cm, self.area
        )
        self._try(self._tell_pump_the_patient)
        self.watch = DeliveryWatch(self.library, self.area)

    def _tell_pump_the_patient(self) -> None:
        """The patient on the pump: ``Pump.set_patient_parameters`` re-checks every running therapy."""
        parameters = self.patient.parameters
        self.pump.set_patient_parameters(
            weight_kg=parameters.weight_kg, height_cm=parameters.height_cm, bsa_m2=parameters.bsa_m2
        )

    # --------------------------------------------------------------- helpers

    def _try(self, action: Callable[[], object]) -> Any:
        with contextlib.suppress(SmartpumpError):
            return action()
        return None

    def _entry(self, data: st.DataObject, pool: tuple[Entry, ...], label: str) -> Entry:
        """An entry of the pool, drawn by id (short to print and to shrink)."""
        return self.library.entry(data.draw(st.sampled_from([e.id for e in pool]), label=label))

    def _channels(self, *states: ChannelState, therapy: bool | None = None) -> list[str]:
        return [
            cid
            for cid, c in self.pump.channels.items()
            if (not states or c.state in states) and (therapy is None or (c.therapy is not None) is therapy)
        ]

    def _program_for(
        self, data: st.DataObject, entry: Entry, *, weight_kg: Decimal | None = None
    ) -> InfusionProgram:
        """A program of the entry drawn at and around its limits (dose, or an odd rate; VTBI choices)."""
        patient = self.patient if weight_kg is None else Patient.of(weight_kg, self.height_cm, self.area)
        concentration = _concentration(data, entry)
        if entry.mode is DeliveryMode.PCA:
            return self._pca_program(data, entry, concentration, patient)
        if entry.mode is DeliveryMode.INTERMITTENT:
            dose = _near_limits(data, entry.dose, "dose")
            vtbi = self._vtbi(data, dose, entry.dose.unit, concentration, patient)
            return InfusionProgram(
                entry_id=entry.id,
                kind=ProgramKind.INTERMITTENT,
                dose=dose,
                concentration=concentration,
                patient=patient.parameters,
                duration_min=_duration_min(data, entry),
                vtbi_ml=vtbi,
                route=entry.route,
            )
        vtbi = data.draw(st.sampled_from([None, D(50), D(250), D(1000)]), label="vtbi")
        if data.draw(st.booleans(), label="by rate"):
            return InfusionProgram(
                entry_id=entry.id,
                rate_ml_per_h=data.draw(st.sampled_from(ODD_RATES_ML_PER_H), label="rate"),
                concentration=concentration,
                patient=patient.parameters,
                vtbi_ml=vtbi,
                route=entry.route,
            )
        return InfusionProgram(
            entry_id=entry.id,
            dose=_near_limits(data, entry.dose, "dose"),
            concentration=concentration,
            patient=patient.parameters,
            vtbi_ml=vtbi,
            route=entry.route,
        )

    def _vtbi(
        self,
        data: st.DataObject,
        dose: Decimal,
        unit: DoseUnit,
        concentration: Concentration | None,
        patient: Patient,
    ) -> Decimal | None:
        """None, the volume that holds the dose, ten times it, or 1000 mL (the KCl case)."""
        choice = data.draw(st.sampled_from(VTBI_CHOICES), label="vtbi")
        if choice == "none":
            return None
        if choice == "1000":
            return D(1000)
        exact = volume_for(dose, unit, concentration, patient)
        step = self.pump.caps.vtbi_resolution_ml
        holds = round_half_up(D(exact.numerator) / D(exact.denominator), step)
        holds = max(holds, step)
        return holds * 10 if choice == "ten_times" else holds

    def _pca_program(
        self, data: st.DataObject, entry: Entry, concentration: Concentration | None, patient: Patient
    ) -> InfusionProgram:
        pca = entry.pca
        assert pca is not None
        lockout = pca.lockout_min
        lockouts = [
            v for v in (lockout.default, lockout.limits.soft_min, lockout.limits.hard_min) if v is not None
        ]
        basal = (
            _near_limits(data, pca.basal, "basal", PCA_FACTORS)
            if pca.basal and data.draw(st.booleans(), label="basal?")
            else None
        )
        loading = (
            _near_limits(data, pca.loading_dose, "loading", PCA_FACTORS)
            if pca.loading_dose and data.draw(st.booleans(), label="loading?")
            else None
        )
        max_dose = None
        if pca.max_dose is not None and data.draw(st.booleans(), label="max?"):
            max_dose = _near_limits(data, pca.max_dose, "max", PCA_FACTORS)
        return InfusionProgram(
            entry_id=entry.id,
            kind=ProgramKind.PCA,
            concentration=concentration,
            patient=patient.parameters,
            vtbi_ml=D(30),
            route=entry.route,
            pca=PCAProgram(
                demand_dose=_near_limits(data, pca.demand_dose, "demand", PCA_FACTORS),
                lockout_min=data.draw(st.sampled_from(lockouts or [D(10)]), label="lockout"),
                basal=basal,
                loading_dose=loading,
                max_dose=max_dose,
                max_dose_window_h=data.draw(st.sampled_from([None, 1, 4, 12]), label="window"),
            ),
        )

    def _settable_rate(self, exact: Fraction) -> Decimal:
        """The nearest rate the pump can be set to (a multiple of its resolution there, at least one step)."""
        approx = D(exact.numerator) / D(exact.denominator)
        step = self.pump.caps.resolution_at(approx)
        return step * max(1, round(exact / Fraction(step)))

    def _accept(self, cid: str, data: st.DataObject) -> None:
        """What a nurse does with a checked program: override a soft verdict (mostly), then confirm."""
        pending = self.pump.channels[cid].pending
        if pending is None:
            return
        if pending.verdict.level is VerdictLevel.SOFT and data.draw(MOSTLY, label="override"):
            self._try(lambda: self.pump.override(cid, OverrideReason.PRESCRIBER_ORDER))
        self._try(lambda: self.pump.confirm(cid))

    def _with_therapy(self, *states: ChannelState) -> list[str]:
        return self._channels(*states, therapy=True)

    def _pca_channels(self) -> list[str]:
        return [
            cid
            for cid, c in self.pump.channels.items()
            if c.therapy is not None and c.therapy.program.kind is ProgramKind.PCA
        ]

    # --------------------------------------------------------------- programming

    @precondition(lambda self: bool(self._channels(therapy=False)))
    @rule(data=st.data())
    def program_and_start(self, data: st.DataObject) -> None:
        pool = self.pca_entries if self.pump.caps.model is PumpModel.PCA else self.plain_entries
        if not pool:
            return
        cid = data.draw(st.sampled_from(self._channels(therapy=False)), label="channel")
        program = self._program_for(data, self._entry(data, pool, "entry"))
        if self.pump.channels[cid].pending is not None:
            self._try(lambda: self.pump.cancel(cid))
        if self._try(lambda: self.pump.program(cid, program)) is None:
            return
        self._accept(cid, data)
        if data.draw(MOSTLY, label="start now"):
            self._try(lambda: self.pump.start(cid))

    @precondition(lambda self: bool(self._channels(therapy=False)))
    @rule(data=st.data())
    def multistep(self, data: st.DataObject) -> None:
        """A ramp or taper: two or three rates around the one at the hard max, each held for a volume."""
        pool = tuple(e for e in self.plain_entries if e.mode is not DeliveryMode.INTERMITTENT)
        if not pool or self.pump.caps.model is PumpModel.PCA:
            return
        cid = data.draw(st.sampled_from(self._channels(therapy=False)), label="channel")
        entry = self._entry(data, pool, "entry")
        concentration = _concentration(data, entry)
        top = _bases(entry.dose)[0]
        exact = flow_for(top, entry.dose.unit, concentration, self.patient)
        factors = data.draw(
            st.lists(st.sampled_from([Fraction(1, 2), Fraction(1), Fraction(6, 5)]), min_size=2, max_size=3),
            label="step factors",
        )
        steps = tuple(
            Step(
                rate_ml_per_h=self._settable_rate(exact * factor),
                volume_ml=data.draw(st.sampled_from([D(1), D(5), D(20)]), label="step volume"),
            )
            for factor in factors
        )
        program = InfusionProgram(
            entry_id=entry.id,
            rate_ml_per_h=steps[0].rate_ml_per_h,
            concentration=concentration,
            patient=self.patient.parameters,
            route=entry.route,
        )
        if self.pump.channels[cid].pending is not None:
            self._try(lambda: self.pump.cancel(cid))
        if self._try(lambda: self.pump.program(cid, program, steps=steps)) is None:
            return
        self._accept(cid, data)
        self._try(lambda: self.pump.start(cid))

    @precondition(lambda self: any(c.pending is not None for c in self.pump.channels.values()))
    @rule(data=st.data())
    def override_confirm_start_or_cancel(self, data: st.DataObject) -> None:
        pending = [cid for cid, c in self.pump.channels.items() if c.pending is not None]
        cid = data.draw(st.sampled_from(pending), label="channel")
        action = data.draw(st.sampled_from(["override", "confirm", "start", "cancel"]), label="action")
        if action == "override":
            self._try(lambda: self.pump.override(cid, OverrideReason.OTHER))
        else:
            self._try(lambda: getattr(self.pump, action)(cid))

    @precondition(lambda self: bool(self._with_therapy()))
    @rule(data=st.data())
    def titrate(self, data: st.DataObject) -> None:
        """A new program on a running channel: same entry, or another entry, concentration or weight."""
        cid = data.draw(st.sampled_from(self._with_therapy()), label="channel")
        therapy = self.pump.channels[cid].therapy
        assert therapy is not None
        pool = self.pca_entries if therapy.program.kind is ProgramKind.PCA else self.plain_entries
        running = self.library.entry(therapy.verdict.entry_id) if therapy.verdict.entry_id else None
        how = data.draw(st.sampled_from(["same entry", "another entry", "another weight"]), label="titration")
        if running is None or how == "another entry":
            entry = self._entry(data, pool, "other entry")
        else:
            entry = running
        weight = data.draw(st.sampled_from(self.weights), label="weight") if how == "another weight" else None
        program = self._program_for(data, entry, weight_kg=weight)
        if self.pump.channels[cid].pending is not None:
            self._try(lambda: self.pump.cancel(cid))
        if self._try(lambda: self.pump.program(cid, program)) is None:
            return
        self._accept(cid, data)

    @precondition(lambda self: bool(self._with_therapy(ChannelState.RUNNING)) and bool(self.plain_entries))
    @rule(data=st.data())
    def bolus(self, data: st.DataObject) -> None:
        """A bolus or loading dose on a running channel, from its own entry or from another one."""
        cid = data.draw(st.sampled_from(self._with_therapy(ChannelState.RUNNING)), label="channel")
        therapy = self.pump.channels[cid].therapy
        assert therapy is not None
        own = self.library.entry(therapy.verdict.entry_id) if therapy.verdict.entry_id else None
        choices = tuple(e for e in (own,) if e is not None) + self.bolus_entries
        if not choices:
            return
        entry = self._entry(data, choices, "bolus entry")
        kind = ProgramKind.LOADING if entry.bolus is None and entry.loading is not None else ProgramKind.BOLUS
        limits = entry.bolus if kind is ProgramKind.BOLUS else entry.loading
        program = InfusionProgram(
            entry_id=entry.id,
            kind=kind,
            dose=_near_limits(data, limits, "bolus"),
            concentration=_concentration(data, entry),
            patient=self.patient.parameters,
            duration_min=data.draw(st.sampled_from([D(1), D(2), D(5), D(15)]), label="duration"),
            route=entry.route,
        )
        override = OverrideReason.PRESCRIBER_ORDER if data.draw(MOSTLY, label="override") else None
        self._try(lambda: self.pump.bolus(cid, program, override=override))

    @precondition(lambda self: bool(self._with_therapy(ChannelState.RUNNING)) and bool(self.plain_entries))
    @rule(data=st.data())
    def secondary(self, data: st.DataObject) -> None:
        """A piggyback on a running primary, from any entry of the care area (allowed or not)."""
        cid = data.draw(st.sampled_from(self._with_therapy(ChannelState.RUNNING)), label="channel")
        program = self._program_for(data, self._entry(data, self.plain_entries, "secondary entry"))
        if program.vtbi_ml is None:
            program = replace(program, vtbi_ml=D(50))
        self.watch.secondary_programmed(cid, program)
        override = OverrideReason.PRESCRIBER_ORDER if data.draw(MOSTLY, label="override") else None
        self._try(lambda: self.pump.secondary(cid, program, override=override))

    # --------------------------------------------------------------- PCA

    @precondition(lambda self: bool(self._pca_channels()))
    @rule(data=st.data())
    def pca_demand(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(self._pca_channels()), label="channel")
        self._try(lambda: self.pump.pca_demand(cid))

    @precondition(lambda self: bool(self._pca_channels()))
    @rule(data=st.data(), presses=st.integers(2, 8), every_s=st.sampled_from([60, 300, 360, 600]))
    def pca_patient_keeps_pressing(self, data: st.DataObject, presses: int, every_s: int) -> None:
        """A patient in pain presses again and again: each press a while after the last."""
        cid = data.draw(st.sampled_from(self._pca_channels()), label="channel")
        for _ in range(presses):
            self._advance(every_s)
            self.watch.observe(self.pump, self.patient)
            self._try(lambda: self.pump.pca_demand(cid))
            self.watch.observe(self.pump, self.patient)

    @precondition(lambda self: bool(self._pca_channels()))
    @rule(data=st.data())
    def clinician_bolus(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(self._pca_channels()), label="channel")
        therapy = self.pump.channels[cid].therapy
        assert therapy is not None and therapy.verdict.entry_id is not None
        pca = self.library.entry(therapy.verdict.entry_id).pca
        assert pca is not None
        amount = _near_limits(data, pca.clinician_bolus or pca.demand_dose, "clinician bolus")
        self._try(lambda: self.pump.clinician_bolus(cid, amount))

    # --------------------------------------------------------------- patient, faults, time

    @rule(data=st.data())
    def weight_change(self, data: st.DataObject) -> None:
        """A new weight for the patient on the pump: it re-checks every running therapy (or refuses)."""
        previous = self.patient
        self.patient = Patient.of(
            data.draw(st.sampled_from(self.weights), label="weight"), self.height_cm, self.area
        )
        try:
            self._tell_pump_the_patient()
        except SmartpumpError:
            self.patient = previous

    @precondition(lambda self: bool(self._with_therapy()))
    @rule(data=st.data())
    def fault(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(self._with_therapy()), label="channel")
        what = data.draw(st.sampled_from(["occlude", "release", "door", "clear and resume"]), label="fault")
        if what == "occlude":
            self._try(lambda: self.pump.occlude_downstream(cid))
        elif what == "release":
            self._try(lambda: self.pump.release_downstream(cid))
        elif what == "door":
            self._try(lambda: self.pump.open_door(cid))
            self._try(lambda: self.pump.close_door(cid))
        else:
            for alarm in list(self.pump.alarms.active.values()):
                self._try(functools.partial(self.pump.clear_alarm, alarm.id, alarm.channel))
            self._try(lambda: self.pump.resume(cid))

    @precondition(lambda self: bool(self._with_therapy()))
    @rule(data=st.data())
    def pause_resume_stop(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(self._with_therapy()), label="channel")
        what = data.draw(st.sampled_from(["pause", "resume", "stop"]), label="action")
        self._try(lambda: getattr(self.pump, what)(cid))

    @rule(seconds=st.sampled_from(ADVANCE_S))
    def advance(self, seconds: int) -> None:
        self._advance(seconds)

    def _advance(self, seconds: int) -> None:
        """Let time pass in chunks of at most CHUNK_S; the watch records each (the last: the invariant)."""
        left = seconds
        while left > 0:
            step = min(left, CHUNK_S)
            self.clock.advance(step)
            self.pump.sync()
            left -= step
            if left:
                self.watch.observe(self.pump, self.patient)

    @invariant()
    def delivered_equals_checked(self) -> None:
        self.watch.observe(self.pump, self.patient)


def _area_kind(area: CareArea) -> str:
    key = match_key(f"{area.id} {area.name}")
    if any(word in key for word in ("nicu", "nursery", "neonat")):
        return "neonatal"
    if "pediatric" in key or "peds" in key:
        return "pediatric"
    return "adult"


def _models_for(area: CareArea, kind: str, entries: tuple[Entry, ...]) -> list[PumpModel]:
    """PCA pumps for PCA care areas; syringe (0.01 mL/h) or LVP for neonates and children; LVP else."""
    if entries and all(e.mode is DeliveryMode.PCA for e in entries):
        return [PumpModel.PCA]
    wanted = [PumpModel.SYRINGE, PumpModel.LVP] if kind != "adult" else [PumpModel.LVP]
    usable = [
        m for m in wanted if any(not e.devices or capabilities(m).device_type in e.devices for e in entries)
    ]
    return usable or [PumpModel.LVP]


# ----------------------------------------------------------------- the property, on both libraries


def _machine_on(library: DrugLibrary, area_ids: tuple[str, ...] | None = None) -> type[DeliveredMachine]:
    """The machine bound to one library (and care areas): a class hypothesis builds with no arguments."""

    class MachineOnLibrary(DeliveredMachine):
        def __init__(self) -> None:
            super().__init__(library, area_ids)

    return MachineOnLibrary


def test_demo_library_delivers_what_was_checked() -> None:
    library = demo_library()
    run_state_machine_as_test(_machine_on(library), settings=MACHINE_SETTINGS)


def test_demo_library_pca_care_area_delivers_what_was_checked() -> None:
    library = demo_library()
    pca_areas = tuple(sorted({e.care_area_id for e in library.entries if e.mode is DeliveryMode.PCA}))
    run_state_machine_as_test(_machine_on(library, pca_areas), settings=PCA_MACHINE_SETTINGS)


def test_real_alaris_v66_library_delivers_what_was_checked() -> None:
    library = alaris_v66()
    run_state_machine_as_test(_machine_on(library), settings=MACHINE_SETTINGS)
