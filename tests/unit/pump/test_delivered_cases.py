"""Issue 13 cases the scenario format cannot express (volumes, flows, deliverable alternatives), and the
cases reproduced on the real BD Alaris v66 library.

What was delivered is recomputed by tests/property/delivered.py from volumes, the container's
concentration and the patient, never by DERS. Libraries: examples/demo-library.json and
tests/scenarios/fixtures/delivered-library.json (EXAMPLE DATA, synthetic), and the real v66 library read
from ../shared/data.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from smartpump.clock import ManualClock
from smartpump.ders.program import InfusionProgram, PCAProgram, ProgramKind, Verdict, VerdictLevel
from smartpump.library.formats import json_format
from smartpump.library.model import CareArea, DrugLibrary
from smartpump.pump import ChannelState, Pump, PumpModel
from smartpump.pump.device import OverrideReason
from smartpump.units import Concentration, DoseUnit
from tests.conftest import REPO
from tests.property.delivered import (
    DeliveryWatch,
    Patient,
    alaris_v66,
    amount_in,
    demo_library,
    dose_rate,
    same_dose,
)

D = Decimal
SYNTHETIC = REPO / "tests" / "scenarios" / "fixtures" / "delivered-library.json"


@pytest.fixture(scope="module")
def synthetic() -> DrugLibrary:
    return json_format.read(SYNTHETIC)


@pytest.fixture(scope="module")
def v66() -> DrugLibrary:
    return alaris_v66()


def _pump(library: DrugLibrary, model: PumpModel, area_id: str) -> tuple[Pump, ManualClock, CareArea]:
    clock = ManualClock()
    pump = Pump("cases-1", model, clock, library=library, channels=1)
    return pump, clock, pump.select_care_area(area_id)


def _deliverable_inside_hard_limits(
    verdict: Verdict, unit: DoseUnit, concentration: Concentration, patient: Patient, hard_max: Decimal
) -> None:
    """A hard stop caused by rounding offers the neighbouring deliverable rates, each inside the limits
    and each showing the dose it really delivers."""
    alternatives = getattr(verdict, "deliverable", ())
    assert alternatives, "a hard stop caused by rate rounding shows the deliverable alternatives"
    for alternative in alternatives:
        delivered = dose_rate(alternative.rate_ml_per_h, unit, concentration, patient)
        assert delivered <= hard_max, f"alternative {alternative.rate_ml_per_h} mL/h delivers {delivered}"
        assert same_dose(alternative.dose, delivered, unit)


# ----------------------------------------------------------------- case 4: rounding past a hard max


def test_nicu_morphine_at_its_hard_max_on_a_0_1_ml_per_h_pump_is_a_hard_stop_with_alternatives() -> None:
    pump, _, area = _pump(demo_library(), PumpModel.LVP, "NICU")
    patient = Patient.of(D("0.5"), D(45), area)
    concentration = Concentration.parse("5 mg/50 mL")
    unit = DoseUnit.parse("mcg/kg/h")
    program = InfusionProgram(
        entry_id="NICU.morphine",
        dose=D(50),
        concentration=concentration,
        patient=patient.parameters,
        vtbi_ml=D(10),
    )
    verdict = pump.program("A", program)
    runs = dose_rate(verdict.rate_ml_per_h, unit, concentration, patient)
    assert verdict.level is VerdictLevel.HARD, (
        f"verdict {verdict.level} at {verdict.rate_ml_per_h} mL/h, which delivers {float(runs):g} mcg/kg/h "
        "(hard max 50)"
    )
    _deliverable_inside_hard_limits(verdict, unit, concentration, patient, D(50))


def test_real_v66_pediatric_dopamine_at_its_hard_max_never_delivers_more(v66: DrugLibrary) -> None:
    pump, _, area = _pump(v66, PumpModel.LVP, "pediatrics")
    patient = Patient.of(D("0.5"), D(50), area)
    entry = v66.entry("pediatrics.cont.dopamine.none.mcg-kg-min.1")
    concentration = entry.concentrations[0]
    assert entry.dose.limits.hard_max == 20
    verdict = pump.program(
        "A",
        InfusionProgram(
            entry_id=entry.id, dose=D(20), concentration=concentration, patient=patient.parameters
        ),
    )
    runs = dose_rate(verdict.rate_ml_per_h, entry.dose.unit, concentration, patient)
    assert verdict.level is VerdictLevel.HARD, (
        f"verdict {verdict.level} at {verdict.rate_ml_per_h} mL/h, which delivers {float(runs):g} mcg/kg/min "
        "(hard max 20)"
    )
    _deliverable_inside_hard_limits(verdict, entry.dose.unit, concentration, patient, D(20))


# ----------------------------------------------------------------- cases 1 and 2 on the real library


def test_real_v66_kcl_10_meq_with_a_vtbi_of_1000_ml_is_a_hard_stop(v66: DrugLibrary) -> None:
    pump, _, _ = _pump(v66, PumpModel.LVP, "adult")
    entry = v66.entry("adult.int.potassium-chloride.peripheral-line.meq.1")
    assert str(entry.concentrations[0]) == "10 mEq/100 mL" and entry.dose.limits.hard_max == 41
    verdict = pump.program(
        "A",
        InfusionProgram(
            entry_id=entry.id,
            kind=ProgramKind.INTERMITTENT,
            dose=D(10),
            concentration=entry.concentrations[0],
            duration_min=D(60),
            vtbi_ml=D(1000),
        ),
    )
    assert verdict.level is VerdictLevel.HARD, f"1000 mL holds 100 mEq (hard max 41), verdict {verdict.level}"


def test_real_v66_vancomycin_1000_mg_over_60_min_without_vtbi_stops_at_1000_mg(v66: DrugLibrary) -> None:
    pump, clock, area = _pump(v66, PumpModel.LVP, "adult")
    patient = Patient.of(D(70), D(170), area)
    entry = v66.entry("adult.int.vancomycin.mg-dosing.mg.3")
    concentration = Concentration.parse("1000 mg/200 mL")
    pump.program(
        "A",
        InfusionProgram(
            entry_id=entry.id,
            kind=ProgramKind.INTERMITTENT,
            dose=D(1000),
            concentration=concentration,
            duration_min=D(60),
            patient=patient.parameters,
        ),
    )
    pump.confirm("A")
    pump.start("A")
    clock.advance(3 * 3600)
    pump.sync()
    channel = pump.channels["A"]
    assert channel.therapy is not None
    given = amount_in(channel.therapy.infused_ml, entry.dose.unit, concentration, patient)
    assert given == 1000, f"after 3 h the pump infused {channel.therapy.infused_ml} mL = {given} mg"
    assert channel.state is ChannelState.KVO


# ----------------------------------------------------------------- case 5: the basal counts and stops


def test_pca_basal_stops_when_the_library_maximum_over_the_window_is_reached() -> None:
    """Demo morphine PCA, no maximum programmed (library: 15 mg over 1 h): loading 4 mg, demands of 5 mg
    at 2 and 8 min and a 3 mg/h basal reach 15 mg at about 20 min; the basal must stop there."""
    library = demo_library()
    pump, clock, area = _pump(library, PumpModel.PCA, "PCA")
    patient = Patient.of(D(70), D(170), area)
    watch = DeliveryWatch(library, area)
    pump.program(
        "A",
        InfusionProgram(
            entry_id="PCA.morphine",
            kind=ProgramKind.PCA,
            concentration=Concentration.parse("30 mg/30 mL"),
            patient=patient.parameters,
            vtbi_ml=D(30),
            pca=PCAProgram(demand_dose=D(5), lockout_min=D(6), basal=D(3), loading_dose=D(4)),
        ),
    )
    pump.override("A", OverrideReason.PRESCRIBER_ORDER)
    pump.confirm("A")
    watch.observe(pump, patient)
    pump.start("A")
    for second in range(0, 2 * 3600 + 1, 30):
        if second:
            clock.advance(30)
            pump.sync()
        if second in (120, 480):
            assert pump.pca_demand("A"), f"the demand at {second} s fits under the maximum"
        watch.observe(pump, patient)
    reached = [e for e in pump.events if e.type.value == "pca.max_dose_reached"]
    assert reached, "reaching the maximum is an event (pca.max_dose_reached)"


# ----------------------------------------------------------------- case 6: per-kg PCA


def test_weight_based_pca_demand_of_20_mcg_per_kg_for_a_20_kg_child_delivers_400_mcg(
    synthetic: DrugLibrary,
) -> None:
    pump, clock, area = _pump(synthetic, PumpModel.PCA, "peds")
    patient = Patient.of(D(20), D(110), area)
    concentration = Concentration.parse("30 mg/30 mL")
    verdict = pump.program(
        "A",
        InfusionProgram(
            entry_id="peds-morphine-pca",
            kind=ProgramKind.PCA,
            concentration=concentration,
            patient=patient.parameters,
            vtbi_ml=D(30),
            pca=PCAProgram(demand_dose=D(20), lockout_min=D(10), basal=D(4)),
        ),
    )
    assert verdict.level is VerdictLevel.OK
    pump.confirm("A")
    pump.start("A")
    assert pump.pca_demand("A")
    therapy = pump.channels["A"].therapy
    assert therapy is not None and therapy.overlay is not None
    demand_ml = therapy.overlay.volume_ml
    mcg = amount_in(demand_ml, DoseUnit.parse("mcg"), concentration, patient)
    assert mcg == 400, f"the demand runs {demand_ml} mL = {mcg} mcg, not 20 mcg/kg x 20 kg = 400 mcg"
    clock.advance(600)
    pump.sync()
    channel = pump.channels["A"]
    assert channel.state is ChannelState.RUNNING and channel.therapy is not None
    assert channel.therapy.overlay is None
    basal_ml_per_h = channel.flow_ml_per_h
    assert basal_ml_per_h > 0, f"a basal of 4 mcg/kg/h checked at {verdict.rate_ml_per_h} mL/h runs at 0 mL/h"
    assert basal_ml_per_h == verdict.rate_ml_per_h
    basal = dose_rate(basal_ml_per_h, DoseUnit.parse("mcg/kg/h"), concentration, patient)
    assert basal <= Fraction(20), f"the basal delivers {float(basal):g} mcg/kg/h, above its hard max 20"
