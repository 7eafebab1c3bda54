"""Pump models and what each can do, as data: channels, rate ranges and resolutions, VTBI, occlusion.

Values are example specifications in the range of marketed pumps (EXAMPLE DATA, not a vendor's
declaration). ``check_rate``/``check_vtbi`` refuse a value with a specific code; nothing is clamped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from smartpump.errors import PumpError
from smartpump.library.model import DeviceType

D = Decimal


class PumpModel(StrEnum):
    """The simulated pump models."""

    LVP = "lvp-4"
    SYRINGE = "syringe-1"
    PCA = "pca-1"
    AMBULATORY = "ambulatory-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateBand:
    """Rates up to ``up_to_ml_per_h`` (inclusive) are programmed in steps of ``resolution_ml_per_h``."""

    up_to_ml_per_h: Decimal
    resolution_ml_per_h: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What one pump model can do; every number carries its unit in its name."""

    model: PumpModel
    device_type: DeviceType
    max_channels: int
    min_rate_ml_per_h: Decimal
    max_rate_ml_per_h: Decimal
    rate_bands: tuple[RateBand, ...]
    min_vtbi_ml: Decimal
    max_vtbi_ml: Decimal
    vtbi_resolution_ml: Decimal
    min_occlusion_mmhg: Decimal
    max_occlusion_mmhg: Decimal
    default_occlusion_mmhg: Decimal
    line_compliance_ul_per_mmhg: Decimal
    occlusion_backoff_ml: Decimal
    air_single_bubble_ul: Decimal
    air_cumulative_ul: Decimal
    air_cumulative_window_min: Decimal
    default_kvo_ml_per_h: Decimal
    max_kvo_ml_per_h: Decimal
    near_end_min: Decimal
    battery_capacity_min: Decimal
    battery_extra_load_per_channel: Decimal
    battery_charge_per_min: Decimal
    syringe_sizes_ml: tuple[Decimal, ...] = ()

    def resolution_at(self, rate_ml_per_h: Decimal) -> Decimal:
        """The programming step at this rate (finer steps at low rates)."""
        for band in self.rate_bands:
            if rate_ml_per_h <= band.up_to_ml_per_h:
                return band.resolution_ml_per_h
        return self.rate_bands[-1].resolution_ml_per_h

    @property
    def finest_resolution_ml_per_h(self) -> Decimal:
        """The smallest programming step of any band."""
        return min(b.resolution_ml_per_h for b in self.rate_bands)

    def check_rate(self, rate_ml_per_h: Decimal) -> Decimal:
        """Return the rate if this model can run it exactly; raise PumpError otherwise."""
        if not self.min_rate_ml_per_h <= rate_ml_per_h <= self.max_rate_ml_per_h:
            raise PumpError(
                f"rate {rate_ml_per_h} mL/h is outside "
                f"{self.min_rate_ml_per_h}-{self.max_rate_ml_per_h} mL/h of the {self.model} pump",
                code="pump.rate_out_of_range",
            )
        step = self.resolution_at(rate_ml_per_h)
        if rate_ml_per_h % step != 0:
            raise PumpError(
                f"rate {rate_ml_per_h} mL/h is not a multiple of the {step} mL/h resolution",
                code="pump.rate_resolution",
            )
        return rate_ml_per_h

    def check_vtbi(self, vtbi_ml: Decimal) -> Decimal:
        """Return the VTBI if this model accepts it; raise PumpError otherwise."""
        if not self.min_vtbi_ml <= vtbi_ml <= self.max_vtbi_ml:
            raise PumpError(
                f"VTBI {vtbi_ml} mL is outside {self.min_vtbi_ml}-{self.max_vtbi_ml} mL "
                f"of the {self.model} pump",
                code="pump.vtbi_out_of_range",
            )
        if vtbi_ml % self.vtbi_resolution_ml != 0:
            raise PumpError(
                f"VTBI {vtbi_ml} mL is not a multiple of the {self.vtbi_resolution_ml} mL resolution",
                code="pump.vtbi_resolution",
            )
        return vtbi_ml

    def check_occlusion(self, threshold_mmhg: Decimal) -> Decimal:
        """Return the occlusion threshold if selectable on this model; raise PumpError otherwise."""
        if not self.min_occlusion_mmhg <= threshold_mmhg <= self.max_occlusion_mmhg:
            raise PumpError(
                f"occlusion threshold {threshold_mmhg} mmHg is outside "
                f"{self.min_occlusion_mmhg}-{self.max_occlusion_mmhg} mmHg",
                code="pump.occlusion_out_of_range",
            )
        return threshold_mmhg


_AIR_SINGLE_UL: Final = D(200)
_AIR_CUMULATIVE_UL: Final = D(1000)
_AIR_WINDOW_MIN: Final = D(15)
_NEAR_END_MIN: Final = D(5)
_BACKOFF_ML: Final = D("0.3")

CAPABILITIES: Final[dict[PumpModel, Capabilities]] = {
    PumpModel.LVP: Capabilities(
        model=PumpModel.LVP,
        device_type=DeviceType.LARGE_VOLUME,
        max_channels=4,
        min_rate_ml_per_h=D("0.1"),
        max_rate_ml_per_h=D(999),
        rate_bands=(
            RateBand(up_to_ml_per_h=D("99.9"), resolution_ml_per_h=D("0.1")),
            RateBand(up_to_ml_per_h=D(999), resolution_ml_per_h=D(1)),
        ),
        min_vtbi_ml=D("0.1"),
        max_vtbi_ml=D(9999),
        vtbi_resolution_ml=D("0.1"),
        min_occlusion_mmhg=D(100),
        max_occlusion_mmhg=D(1000),
        default_occlusion_mmhg=D(500),
        line_compliance_ul_per_mmhg=D("0.8"),
        default_kvo_ml_per_h=D(1),
        max_kvo_ml_per_h=D(20),
        battery_capacity_min=D(240),
        battery_extra_load_per_channel=D("0.25"),
        battery_charge_per_min=D(2),
        air_single_bubble_ul=_AIR_SINGLE_UL,
        air_cumulative_ul=_AIR_CUMULATIVE_UL,
        air_cumulative_window_min=_AIR_WINDOW_MIN,
        near_end_min=_NEAR_END_MIN,
        occlusion_backoff_ml=_BACKOFF_ML,
    ),
    PumpModel.SYRINGE: Capabilities(
        model=PumpModel.SYRINGE,
        device_type=DeviceType.SYRINGE,
        max_channels=1,
        min_rate_ml_per_h=D("0.01"),
        max_rate_ml_per_h=D(999),
        rate_bands=(
            RateBand(up_to_ml_per_h=D("9.99"), resolution_ml_per_h=D("0.01")),
            RateBand(up_to_ml_per_h=D("99.9"), resolution_ml_per_h=D("0.1")),
            RateBand(up_to_ml_per_h=D(999), resolution_ml_per_h=D(1)),
        ),
        min_vtbi_ml=D("0.01"),
        max_vtbi_ml=D(60),
        vtbi_resolution_ml=D("0.01"),
        min_occlusion_mmhg=D(50),
        max_occlusion_mmhg=D(900),
        default_occlusion_mmhg=D(300),
        line_compliance_ul_per_mmhg=D("0.3"),
        default_kvo_ml_per_h=D("0.1"),
        max_kvo_ml_per_h=D(5),
        battery_capacity_min=D(360),
        battery_extra_load_per_channel=D("0.1"),
        battery_charge_per_min=D(3),
        syringe_sizes_ml=(D(1), D(3), D(5), D(10), D(20), D(30), D(50), D(60)),
        air_single_bubble_ul=_AIR_SINGLE_UL,
        air_cumulative_ul=_AIR_CUMULATIVE_UL,
        air_cumulative_window_min=_AIR_WINDOW_MIN,
        near_end_min=_NEAR_END_MIN,
        occlusion_backoff_ml=_BACKOFF_ML,
    ),
    PumpModel.PCA: Capabilities(
        model=PumpModel.PCA,
        device_type=DeviceType.PCA,
        max_channels=1,
        min_rate_ml_per_h=D("0.1"),
        max_rate_ml_per_h=D(100),
        rate_bands=(RateBand(up_to_ml_per_h=D(100), resolution_ml_per_h=D("0.1")),),
        min_vtbi_ml=D("0.1"),
        max_vtbi_ml=D(60),
        vtbi_resolution_ml=D("0.1"),
        min_occlusion_mmhg=D(100),
        max_occlusion_mmhg=D(900),
        default_occlusion_mmhg=D(500),
        line_compliance_ul_per_mmhg=D("0.3"),
        default_kvo_ml_per_h=D("0.1"),
        max_kvo_ml_per_h=D(1),
        battery_capacity_min=D(480),
        battery_extra_load_per_channel=D("0.1"),
        battery_charge_per_min=D(3),
        syringe_sizes_ml=(D(30), D(60)),
        air_single_bubble_ul=_AIR_SINGLE_UL,
        air_cumulative_ul=_AIR_CUMULATIVE_UL,
        air_cumulative_window_min=_AIR_WINDOW_MIN,
        near_end_min=_NEAR_END_MIN,
        occlusion_backoff_ml=_BACKOFF_ML,
    ),
    PumpModel.AMBULATORY: Capabilities(
        model=PumpModel.AMBULATORY,
        device_type=DeviceType.AMBULATORY,
        max_channels=1,
        min_rate_ml_per_h=D("0.1"),
        max_rate_ml_per_h=D(500),
        rate_bands=(RateBand(up_to_ml_per_h=D(500), resolution_ml_per_h=D("0.1")),),
        min_vtbi_ml=D("0.1"),
        max_vtbi_ml=D(9999),
        vtbi_resolution_ml=D("0.1"),
        min_occlusion_mmhg=D(100),
        max_occlusion_mmhg=D(1000),
        default_occlusion_mmhg=D(600),
        line_compliance_ul_per_mmhg=D("0.5"),
        default_kvo_ml_per_h=D("0.5"),
        max_kvo_ml_per_h=D(10),
        battery_capacity_min=D(1440),
        battery_extra_load_per_channel=D(0),
        battery_charge_per_min=D(4),
        air_single_bubble_ul=_AIR_SINGLE_UL,
        air_cumulative_ul=_AIR_CUMULATIVE_UL,
        air_cumulative_window_min=_AIR_WINDOW_MIN,
        near_end_min=_NEAR_END_MIN,
        occlusion_backoff_ml=_BACKOFF_ML,
    ),
}


def capabilities(model: PumpModel | str) -> Capabilities:
    """The capability table row of a model (by enum or its string value)."""
    try:
        return CAPABILITIES[PumpModel(model)]
    except ValueError:
        raise PumpError(
            f"unknown pump model {model!r} (known: {', '.join(m.value for m in PumpModel)})",
            code="pump.unknown_model",
        ) from None
