"""How each pump model really moves fluid, as data: mechanism, disposable sets, stated accuracy.

EXAMPLE DATA in the range of marketed pumps and public operator manuals, not a vendor's declaration.
The pump core's volume accounting stays exact; ``sim.flow_physics`` turns these rows into the
physical delivery a balance would weigh. Every number carries its unit in its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from smartpump.errors import SmartpumpError
from smartpump.pump.capabilities import PumpModel


class Mechanism(StrEnum):
    """How the pump displaces fluid."""

    PERISTALTIC = "peristaltic"
    SYRINGE = "syringe"


@dataclass(frozen=True, slots=True, kw_only=True)
class DisposableSet:
    """One administration set or syringe size and what it does to the delivered volume.

    ``volume_error_percent`` is the stroke-volume (set tolerance) or barrel-bore error: the mean
    over- or under-delivery the disposable causes. ``ml_per_mm`` is the volume one millimetre of
    plunger travel displaces (syringes; 0 for sets), so drive slack costs more with larger syringes.
    """

    name: str
    volume_error_percent: float
    ml_per_mm: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyClaim:
    """The stated accuracy (± percent by volume) for rates from ``from_rate_ml_per_h`` up."""

    from_rate_ml_per_h: float
    tolerance_percent: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowModel:
    """The physical delivery of one pump model.

    Peristaltic pumps move ``stroke_volume_ml`` per cycle with a sinusoidal ripple of relative
    amplitude ``pulsation_fraction`` within the cycle. Syringe pumps take up ``slack_mm`` of drive
    slack and ``stiction_mm`` of plunger break-away travel before fluid moves, then show stick-slip
    ripple of ``pulsation_fraction`` per lead-screw turn (``stroke_volume_ml`` is then one turn's
    travel in mm times the syringe's ``ml_per_mm``, see ``stroke_ml``). Head height (container above
    the pump's reference) and back-pressure change the mean flow by the stated coefficients; the line
    compliance (``pump.capabilities``) stores volume as the line pressurises, which delays the start.
    """

    model: PumpModel
    mechanism: Mechanism
    stroke_volume_ml: float
    screw_pitch_mm: float
    pulsation_fraction: float
    slack_mm: float
    stiction_mm: float
    head_percent_per_cm: float
    back_pressure_percent_per_mmhg: float
    flow_noise_percent: float
    reading_noise_mg: float
    intermediate_rate_ml_per_h: float
    occlusion_alarm_max_s_at_min_rate: float
    occlusion_bolus_max_ml: float
    sets: tuple[DisposableSet, ...]
    claims: tuple[AccuracyClaim, ...]

    def disposable(self, name: str | None) -> DisposableSet:
        """The named set or syringe size (the first one when ``name`` is None)."""
        if name is None:
            return self.sets[0]
        for item in self.sets:
            if item.name == name:
                return item
        known = ", ".join(s.name for s in self.sets)
        raise SmartpumpError(
            f"the {self.model} pump has no set {name!r} (known: {known})", code="bench.unknown_set"
        )

    def stroke_ml(self, disposable: DisposableSet) -> float:
        """Volume of one pumping cycle: a peristaltic stroke, or one lead-screw turn of this syringe."""
        if self.mechanism is Mechanism.SYRINGE:
            return self.screw_pitch_mm * disposable.ml_per_mm
        return self.stroke_volume_ml

    def claim_at(self, rate_ml_per_h: float) -> AccuracyClaim:
        """The accuracy the model states at this rate (the band whose lower rate is the highest below it)."""
        bands = [c for c in self.claims if c.from_rate_ml_per_h <= rate_ml_per_h]
        if not bands:
            return self.claims[0]
        return max(bands, key=lambda c: c.from_rate_ml_per_h)


def _syringes(*rows: tuple[str, float, float]) -> tuple[DisposableSet, ...]:
    return tuple(DisposableSet(name=n, volume_error_percent=e, ml_per_mm=a) for n, e, a in rows)


FLOW_MODELS: Final[dict[PumpModel, FlowModel]] = {
    PumpModel.LVP: FlowModel(
        model=PumpModel.LVP,
        mechanism=Mechanism.PERISTALTIC,
        stroke_volume_ml=0.075,
        screw_pitch_mm=0.0,
        pulsation_fraction=0.9,
        slack_mm=0.0,
        stiction_mm=0.0,
        head_percent_per_cm=0.04,
        back_pressure_percent_per_mmhg=-0.012,
        flow_noise_percent=0.6,
        reading_noise_mg=0.1,
        intermediate_rate_ml_per_h=25.0,
        occlusion_alarm_max_s_at_min_rate=18000.0,
        occlusion_bolus_max_ml=0.5,
        sets=(
            DisposableSet(name="standard-set", volume_error_percent=0.8),
            DisposableSet(name="blood-set", volume_error_percent=-2.5),
            DisposableSet(name="worn-set", volume_error_percent=-6.5),
        ),
        claims=(
            AccuracyClaim(from_rate_ml_per_h=0.1, tolerance_percent=10.0),
            AccuracyClaim(from_rate_ml_per_h=1.0, tolerance_percent=5.0),
        ),
    ),
    PumpModel.SYRINGE: FlowModel(
        model=PumpModel.SYRINGE,
        mechanism=Mechanism.SYRINGE,
        stroke_volume_ml=0.0,
        screw_pitch_mm=0.5,
        pulsation_fraction=0.05,
        slack_mm=0.12,
        stiction_mm=0.05,
        head_percent_per_cm=0.005,
        back_pressure_percent_per_mmhg=-0.002,
        flow_noise_percent=0.3,
        reading_noise_mg=0.1,
        intermediate_rate_ml_per_h=5.0,
        occlusion_alarm_max_s_at_min_rate=36000.0,
        occlusion_bolus_max_ml=0.2,
        sets=_syringes(
            ("50ml", 0.6, 0.66),
            ("20ml", 0.4, 0.32),
            ("10ml", 0.3, 0.165),
            ("5ml", -0.4, 0.095),
            ("1ml", -1.0, 0.017),
        ),
        claims=(
            AccuracyClaim(from_rate_ml_per_h=0.01, tolerance_percent=5.0),
            AccuracyClaim(from_rate_ml_per_h=0.5, tolerance_percent=2.0),
        ),
    ),
    PumpModel.PCA: FlowModel(
        model=PumpModel.PCA,
        mechanism=Mechanism.SYRINGE,
        stroke_volume_ml=0.0,
        screw_pitch_mm=0.5,
        pulsation_fraction=0.06,
        slack_mm=0.1,
        stiction_mm=0.05,
        head_percent_per_cm=0.005,
        back_pressure_percent_per_mmhg=-0.002,
        flow_noise_percent=0.4,
        reading_noise_mg=0.1,
        intermediate_rate_ml_per_h=5.0,
        occlusion_alarm_max_s_at_min_rate=36000.0,
        occlusion_bolus_max_ml=0.2,
        sets=_syringes(("60ml", 0.8, 0.72), ("30ml", 0.5, 0.45)),
        claims=(
            AccuracyClaim(from_rate_ml_per_h=0.1, tolerance_percent=6.0),
            AccuracyClaim(from_rate_ml_per_h=1.0, tolerance_percent=3.0),
        ),
    ),
    PumpModel.AMBULATORY: FlowModel(
        model=PumpModel.AMBULATORY,
        mechanism=Mechanism.PERISTALTIC,
        stroke_volume_ml=0.05,
        screw_pitch_mm=0.0,
        pulsation_fraction=1.0,
        slack_mm=0.0,
        stiction_mm=0.0,
        head_percent_per_cm=0.03,
        back_pressure_percent_per_mmhg=-0.01,
        flow_noise_percent=0.8,
        reading_noise_mg=0.1,
        intermediate_rate_ml_per_h=25.0,
        occlusion_alarm_max_s_at_min_rate=18000.0,
        occlusion_bolus_max_ml=0.5,
        sets=(
            DisposableSet(name="cassette", volume_error_percent=1.5),
            DisposableSet(name="high-volume-cassette", volume_error_percent=-3.0),
        ),
        claims=(
            AccuracyClaim(from_rate_ml_per_h=0.1, tolerance_percent=10.0),
            AccuracyClaim(from_rate_ml_per_h=1.0, tolerance_percent=6.0),
        ),
    ),
}


def flow_model(model: PumpModel | str) -> FlowModel:
    """The flow-physics row of a model (by enum or its string value)."""
    try:
        return FLOW_MODELS[PumpModel(model)]
    except ValueError:
        raise SmartpumpError(
            f"unknown pump model {model!r} (known: {', '.join(m.value for m in PumpModel)})",
            code="bench.unknown_model",
        ) from None
