"""The pump test library plus the entries the delivered-dose tests need (EXAMPLE DATA, synthetic, not
for clinical use): labetalol (another continuous drug), insulin (units, with a bolus; a DKA entry of the
same container with a looser bolus), intermittent
vancomycin (may run as a secondary), intermittent potassium chloride (the issue's KCl case) and
weight-based intermittent gentamicin."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from smartpump.clock import ManualClock
from smartpump.ders.program import NO_PATIENT, InfusionProgram, PatientParameters, ProgramKind
from smartpump.library.model import DeliveryMode, DeviceType, DrugLibrary
from smartpump.pump import Pump, PumpModel
from smartpump.units import Concentration
from tests.factories import bounds, concentration, dose_limits, make_drug, make_entry
from tests.unit.pump.library import pump_library

D = Decimal
LVP_AND_SYRINGE = (DeviceType.LARGE_VOLUME, DeviceType.SYRINGE)
KG_70 = PatientParameters(weight_kg=D(70))


def delivered_library() -> DrugLibrary:
    """``pump_library()`` with six more ICU entries (synthetic limits chosen for the tests)."""
    base = pump_library()
    drugs = (
        make_drug(id="labetalol", generic_name="labetalol", display_name="", is_high_alert=False),
        make_drug(id="insulin", generic_name="insulin", display_name="", is_high_alert=True),
        make_drug(id="vancomycin", generic_name="vancomycin", display_name="", is_high_alert=False),
        make_drug(id="potassium-chloride", generic_name="potassium chloride", display_name="KCl"),
        make_drug(id="gentamicin", generic_name="gentamicin", display_name="", is_high_alert=False),
    )
    entries = (
        make_entry(
            id="icu-labetalol",
            drug_id="labetalol",
            dose=dose_limits("mg/min", soft_max=2, hard_max=3),
            concentrations=(concentration("200 mg/200 mL"),),
            devices=LVP_AND_SYRINGE,
        ),
        make_entry(
            id="icu-insulin",
            drug_id="insulin",
            dose=dose_limits("units/h", soft_max=20, hard_max=30),
            concentrations=(concentration("100 units/100 mL"),),
            bolus=dose_limits("units", soft_max=8, hard_max=10),
            devices=LVP_AND_SYRINGE,
        ),
        make_entry(
            id="icu-insulin-dka",
            drug_id="insulin",
            therapy="DKA",
            dose=dose_limits("units/h", soft_max=20, hard_max=30),
            concentrations=(concentration("100 units/100 mL"),),
            bolus=dose_limits("units", soft_max=15, hard_max=20),
            devices=LVP_AND_SYRINGE,
        ),
        make_entry(
            id="icu-vancomycin",
            drug_id="vancomycin",
            mode=DeliveryMode.INTERMITTENT,
            dose=dose_limits("mg", soft_max=2000, hard_max=3000),
            concentrations=(concentration("1000 mg/250 mL"),),
            duration_min=bounds(hard_min=30, hard_max=240),
            allows_secondary=True,
            devices=LVP_AND_SYRINGE,
        ),
        make_entry(
            id="icu-kcl",
            drug_id="potassium-chloride",
            mode=DeliveryMode.INTERMITTENT,
            dose=dose_limits("mEq", soft_max=20, hard_max=41),
            concentrations=(concentration("10 mEq/100 mL"),),
            devices=LVP_AND_SYRINGE,
        ),
        make_entry(
            id="icu-gentamicin",
            drug_id="gentamicin",
            mode=DeliveryMode.INTERMITTENT,
            dose=dose_limits("mg/kg", soft_max=7, hard_max=10),
            concentrations=(concentration("400 mg/100 mL"),),
            allows_secondary=True,
            devices=LVP_AND_SYRINGE,
        ),
    )
    return replace(base, drugs=base.drugs + drugs, entries=base.entries + entries)


def delivered_pump(model: PumpModel = PumpModel.LVP, **kwargs: object) -> tuple[Pump, ManualClock]:
    """A pump with ``delivered_library()`` installed and the ICU selected, on a ManualClock."""
    clock = ManualClock()
    pump = Pump("pump-1", model, clock, library=delivered_library(), **kwargs)  # type: ignore[arg-type]
    pump.select_care_area("icu")
    return pump, clock


def vancomycin(dose: str = "1000", *, vtbi: str | None = None, minutes: str = "60") -> InfusionProgram:
    """Intermittent vancomycin 1000 mg/250 mL: a dose in mg over ``minutes``."""
    return InfusionProgram(
        entry_id="icu-vancomycin",
        kind=ProgramKind.INTERMITTENT,
        dose=D(dose),
        duration_min=D(minutes),
        vtbi_ml=None if vtbi is None else D(vtbi),
    )


def kcl(dose: str = "10", *, vtbi: str | None = None, minutes: str = "60") -> InfusionProgram:
    """Intermittent potassium chloride 10 mEq/100 mL: a dose in mEq over ``minutes``."""
    return InfusionProgram(
        entry_id="icu-kcl",
        kind=ProgramKind.INTERMITTENT,
        dose=D(dose),
        duration_min=D(minutes),
        vtbi_ml=None if vtbi is None else D(vtbi),
    )


def gentamicin(dose: str = "5", *, patient: PatientParameters = KG_70) -> InfusionProgram:
    """Intermittent gentamicin 400 mg/100 mL in mg/kg over 30 min."""
    return InfusionProgram(
        entry_id="icu-gentamicin",
        kind=ProgramKind.INTERMITTENT,
        dose=D(dose),
        duration_min=D(30),
        patient=patient,
    )


def labetalol(dose: str = "1") -> InfusionProgram:
    """Labetalol 200 mg/200 mL in mg/min."""
    return InfusionProgram(entry_id="icu-labetalol", dose=D(dose), vtbi_ml=D(200))


def insulin(dose: str = "5") -> InfusionProgram:
    """Insulin 100 units/100 mL in units/h."""
    return InfusionProgram(entry_id="icu-insulin", dose=D(dose), vtbi_ml=D(100))


def heparin(dose: str = "18", *, patient: PatientParameters = KG_70) -> InfusionProgram:
    """Heparin 25000 units/250 mL in units/kg/h."""
    return InfusionProgram(entry_id="icu-heparin", dose=D(dose), patient=patient, vtbi_ml=D(250))


def bolus(
    entry_id: str,
    dose: str,
    *,
    minutes: str = "5",
    concentration: Concentration | None = None,
    patient: PatientParameters = NO_PATIENT,
) -> InfusionProgram:
    """A bolus of ``dose`` (in the entry's bolus unit) over ``minutes``, from ``concentration`` (None:
    the entry's only one) for ``patient``."""
    return InfusionProgram(
        entry_id=entry_id,
        kind=ProgramKind.BOLUS,
        dose=D(dose),
        duration_min=D(minutes),
        concentration=concentration,
        patient=patient,
    )
