"""A small synthetic library and pump builders for pump tests (EXAMPLE DATA, not for clinical use)."""

from __future__ import annotations

from decimal import Decimal

from smartpump.clock import ManualClock
from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.library.model import (
    BasicInfusionPolicy,
    DeliveryMode,
    DeviceDefaults,
    DeviceType,
    DrugLibrary,
    PCALimits,
    PCASettings,
)
from smartpump.pump import Pump, PumpModel
from tests.factories import (
    bounds,
    concentration,
    dose_limits,
    make_care_area,
    make_drug,
    make_entry,
    make_library,
)

D = Decimal
WEIGHT = PatientParameters(weight_kg=D(70))


def pump_library(*, version: int = 1) -> DrugLibrary:
    """ICU with dopamine (continuous), heparin (bolus allowed), morphine PCA; basic infusions allowed."""
    icu = make_care_area(
        device=DeviceDefaults(kvo_rate_ml_per_h=D(1), tubing_change_h=96),
        basic_infusion=BasicInfusionPolicy(allowed=True, rate_ml_per_h=bounds(soft_max=500, hard_max=999)),
        pca=PCASettings(
            bolus_delivery_rate_ml_per_h=D(60),
            pause_enabled=True,
            pause_spo2_min_percent=D(90),
            pause_etco2_max_mmhg=D(50),
        ),
    )
    lvp_and_pca = (DeviceType.LARGE_VOLUME, DeviceType.PCA, DeviceType.SYRINGE)
    return make_library(
        version=version,
        drugs=(
            make_drug(),
            make_drug(id="heparin", generic_name="heparin", display_name="", is_high_alert=True),
            make_drug(id="morphine", generic_name="morphine", display_name="", is_high_alert=True),
        ),
        care_areas=(icu,),
        entries=(
            make_entry(devices=lvp_and_pca),
            make_entry(
                id="icu-heparin",
                drug_id="heparin",
                dose=dose_limits("units/kg/h", hard_min=1, soft_max=25, hard_max=40),
                concentrations=(concentration("25000 units/250 mL"),),
                bolus=dose_limits("units/kg", soft_max=80, hard_max=100),
                loading=dose_limits("units/kg", soft_max=80, hard_max=100),
                devices=lvp_and_pca,
            ),
            make_entry(
                id="icu-morphine-pca",
                drug_id="morphine",
                mode=DeliveryMode.PCA,
                dose=dose_limits("mg", hard_max=5),
                concentrations=(concentration("30 mg/30 mL"),),
                pca=PCALimits(
                    demand_dose=dose_limits("mg", soft_min="0.1", soft_max=4, hard_max=5),
                    lockout_min=bounds(hard_min=5, soft_min=6, soft_max=60),
                    basal=dose_limits("mg/h", soft_max=2, hard_max=3),
                    loading_dose=dose_limits("mg", soft_max=2, hard_max=4),
                    clinician_bolus=dose_limits("mg", hard_max=4),
                    max_dose=dose_limits("mg", soft_max="7.5", hard_max=15),
                    max_dose_window_h=1,
                ),
                devices=(DeviceType.PCA,),
            ),
        ),
    )


def make_pump(model: PumpModel = PumpModel.LVP, **kwargs: object) -> tuple[Pump, ManualClock]:
    """A pump with the test library installed and the ICU selected, on a ManualClock."""
    clock = ManualClock()
    pump = Pump("pump-1", model, clock, library=pump_library(), **kwargs)  # type: ignore[arg-type]
    pump.select_care_area("icu")
    return pump, clock


def dopamine(dose: str = "5", vtbi: str | None = "250", **kwargs: object) -> InfusionProgram:
    """Dopamine 400 mg/250 mL at a dose in mcg/kg/min for a 70 kg patient."""
    return InfusionProgram(
        entry_id="icu-dopamine",
        dose=D(dose),
        concentration=concentration("400 mg/250 mL"),
        patient=WEIGHT,
        vtbi_ml=None if vtbi is None else D(vtbi),
        **kwargs,  # type: ignore[arg-type]
    )


def basic(rate: str, vtbi: str | None = "100") -> InfusionProgram:
    """A basic (library-less) infusion at a rate in mL/h."""
    return InfusionProgram(
        entry_id=None,
        kind=ProgramKind.BASIC,
        rate_ml_per_h=D(rate),
        vtbi_ml=None if vtbi is None else D(vtbi),
    )


def morphine_pca(
    *,
    demand: str = "1",
    lockout: str = "10",
    basal: str | None = None,
    max_dose: str | None = "7.5",
    loading: str | None = None,
) -> InfusionProgram:
    """Morphine 1 mg/mL PCA with a 1 h maximum."""
    return InfusionProgram(
        entry_id="icu-morphine-pca",
        kind=ProgramKind.PCA,
        rate_ml_per_h=D(60),
        vtbi_ml=D(30),
        pca=PCAProgram(
            demand_dose=D(demand),
            lockout_min=D(lockout),
            basal=None if basal is None else D(basal),
            loading_dose=None if loading is None else D(loading),
            max_dose=None if max_dose is None else D(max_dose),
            max_dose_window_h=1,
        ),
    )


def start(pump: Pump, cid: str, program: InfusionProgram) -> None:
    """Program, confirm and start an ok program."""
    pump.program(cid, program)
    pump.confirm(cid)
    pump.start(cid)
