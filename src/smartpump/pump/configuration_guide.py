"""What each pump configuration setting means, its unit and the values a model accepts: the one table the
server's pages and the command line show beside a configuration's settings (docs/fleet.md has the same).

The accepted values are stated from the same constants and capabilities the schema in
``smartpump.pump.configuration`` checks; the schema stays the only judge of a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from smartpump.pump.capabilities import PumpModel, capabilities
from smartpump.pump.configuration import NEAR_END_ALERT_MIN_RANGE, SET_CHANGE_INTERVAL_H_RANGE
from smartpump.units import format_decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingGuide:
    """One setting as people read it: its key in the document, a label, its unit ("" for a flag), what it
    does on the pump."""

    key: str
    label: str
    unit: str
    meaning: str


SETTING_GUIDE: Final = (
    SettingGuide(
        key="max_rate_ml_per_h",
        label="Rate cap",
        unit="mL/h",
        meaning="Pump-level rate cap at or below the model's maximum: a program, titration, step, bolus or "
        "piggyback above it is a hard limit in the verdict (ders.device.rate_cap.hard_max), a PCA dose "
        "rate above it is refused (pump.rate_cap). None: the model's own range.",
    ),
    SettingGuide(
        key="require_verification",
        label="Bedside verification",
        unit="",
        meaning="Bedside barcode verification before every start (pump.not_verified).",
    ),
    SettingGuide(
        key="near_end_alert_min",
        label="Near-end alert lead time",
        unit="min",
        meaning="How long before the end of an infusion the near-end-of-infusion alert sounds.",
    ),
    SettingGuide(
        key="kvo_rate_ml_per_h",
        label="KVO rate",
        unit="mL/h",
        meaning="Keep-vein-open rate where the care area sets none, up to the model's KVO maximum.",
    ),
    SettingGuide(
        key="set_change_interval_h",
        label="Set change reminder",
        unit="h",
        meaning="Administration-set change reminder where the care area sets none.",
    ),
)


def accepted_values(key: str, model: PumpModel | str) -> str:
    """The values the schema accepts for a setting on a model, as people read them ("0.1-999 mL/h")."""
    caps = capabilities(model)
    if key == "max_rate_ml_per_h":
        low, high = format_decimal(caps.min_rate_ml_per_h), format_decimal(caps.max_rate_ml_per_h)
        return f"{low}-{high} mL/h in the model's rate steps, or none"
    if key == "kvo_rate_ml_per_h":
        low, high = format_decimal(caps.min_rate_ml_per_h), format_decimal(caps.max_kvo_ml_per_h)
        return f"{low}-{high} mL/h in the model's rate steps"
    if key == "near_end_alert_min":
        return "{}-{} min".format(*NEAR_END_ALERT_MIN_RANGE)
    if key == "set_change_interval_h":
        return "{}-{} h".format(*SET_CHANGE_INTERVAL_H_RANGE)
    if key == "require_verification":
        return "true or false"
    raise KeyError(key)


def shown_value(value: object) -> str:
    """A setting's value as a document holds it, as people read it: none, yes/no, or the exact number."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
