"""The device's rate rules (model range and resolution, configured cap, KVO rate, PCA dose rate) and
the two events a running therapy's delivery change emits: an overlay started, a rate changed."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from smartpump.ders.program import InfusionProgram
from smartpump.errors import PumpError
from smartpump.pump.channel import Channel
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import ZERO, Overlay, OverlayKind
from smartpump.pump.events import EventType

DEFAULT_PCA_BOLUS_RATE_ML_PER_H: Final = Decimal(60)


def check_rate(core: PumpCore, rate_ml_per_h: Decimal) -> None:
    """The model's range and resolution, then the configured rate cap."""
    core.caps.check_rate(rate_ml_per_h)
    check_rate_cap(core, rate_ml_per_h)


def check_rate_cap(core: PumpCore, rate_ml_per_h: Decimal) -> None:
    """Refuse a rate above the configuration's cap (a hard limit set by biomedical engineering)."""
    cap = core.settings.max_rate_ml_per_h
    if cap is not None and rate_ml_per_h > cap:
        raise PumpError(
            f"rate {rate_ml_per_h} mL/h is above the {cap} mL/h rate cap "
            f"of configuration v{core.configuration_version}",
            code="pump.rate_cap",
        )


def kvo_rate(core: PumpCore, rate_ml_per_h: Decimal) -> Decimal:
    """The keep-vein-open rate after the VTBI: the care area's, else the configuration's, never above
    the therapy's rate (zero for a zero rate)."""
    area_kvo = core.care_area.device.kvo_rate_ml_per_h if core.care_area else None
    kvo = area_kvo if area_kvo is not None else core.settings.kvo_rate_ml_per_h
    return min(kvo, rate_ml_per_h) if rate_ml_per_h > 0 else ZERO


def pca_bolus_rate(core: PumpCore, program: InfusionProgram) -> Decimal:
    """The rate PCA doses run at: the care area's, else the program's, else the default."""
    return (
        core.area().pca.bolus_delivery_rate_ml_per_h
        or program.rate_ml_per_h
        or DEFAULT_PCA_BOLUS_RATE_ML_PER_H
    )


def start_overlay(
    core: PumpCore,
    channel: Channel,
    kind: OverlayKind,
    rate: Decimal,
    volume: Decimal,
    dose: Decimal | None,
    dose_unit: str | None,
) -> None:
    """Run a bolus-like overlay (bolus, loading, PCA dose) over the channel's therapy; emits
    bolus.started."""
    therapy = channel.therapy
    assert therapy is not None
    therapy.overlay = Overlay(kind=kind, rate_ml_per_h=rate, volume_ml=volume, dose=dose, dose_unit=dose_unit)
    core.emit(
        EventType.BOLUS_STARTED,
        channel.id,
        kind=kind.value,
        dose=dose,
        dose_unit=dose_unit,
        volume_ml=volume,
        rate_ml_per_h=rate,
    )
    core.after_change()


def rate_changed(core: PumpCore, channel: Channel, old: Decimal, cause: str) -> None:
    """Emit rate.changed for the channel's therapy (titration, multistep)."""
    therapy = channel.therapy
    assert therapy is not None
    core.emit(
        EventType.RATE_CHANGED,
        channel.id,
        old_rate_ml_per_h=old,
        new_rate_ml_per_h=therapy.rate_ml_per_h,
        dose=therapy.verdict.dose,
        dose_unit=therapy.verdict.dose_unit,
        cause=cause,
    )
