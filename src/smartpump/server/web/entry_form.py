"""The drug-library entry editor's form: every limit the model holds, as flat fields, checked field by field.

Field names are ``<parameter>.<part>`` (``bolus.unit``, ``vtbi_ml.hard_max``, ``pca.lockout_min.default``);
``parse`` turns a submitted form into the entry's document and a refusal (message and code) per field.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from smartpump.errors import SmartpumpError
from smartpump.library.limits import LimitSet
from smartpump.library.model import DeliveryMode, Route
from smartpump.units import AmountUnit, Concentration, DoseUnit, TimeUnit

BOUNDS: Final = ("hard_min", "soft_min", "soft_max", "hard_max")
TEXT_LIMIT: Final = 64
ADVISORY_LIMIT: Final = 1000
WINDOW_FIELD: Final = "pca.max_dose_window_h"


class Shape(StrEnum):
    """How a parameter is stored: limits with a dose unit, with a fixed unit, or a custom concentration."""

    DOSE = "dose"
    BOUNDS = "bounds"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """One limited parameter of an entry and where the document keeps it."""

    key: str
    label: str
    shape: Shape
    fixed_unit: str = ""
    required: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        """The keys leading to the parameter in the entry document."""
        return tuple(self.key.split("."))

    @property
    def default_key(self) -> str:
        """The document key of the parameter's default value."""
        return "default_volume_ml" if self.shape is Shape.CUSTOM else "default"


PARAMS: Final = (
    Param(key="dose", label="Dose", shape=Shape.DOSE, required=True),
    Param(key="rate_ml_per_h", label="Rate", shape=Shape.BOUNDS, fixed_unit="mL/h"),
    Param(key="vtbi_ml", label="VTBI", shape=Shape.BOUNDS, fixed_unit="mL"),
    Param(key="duration_min", label="Duration", shape=Shape.BOUNDS, fixed_unit="min"),
    Param(key="dose_rate", label="Dose rate (intermittent)", shape=Shape.DOSE),
    Param(key="custom_concentration", label="Custom concentration (per mL)", shape=Shape.CUSTOM),
    Param(key="bolus", label="Bolus dose", shape=Shape.DOSE),
    Param(key="bolus_rate", label="Bolus rate", shape=Shape.DOSE),
    Param(key="loading", label="Loading dose", shape=Shape.DOSE),
    Param(key="loading_duration_min", label="Loading duration", shape=Shape.BOUNDS, fixed_unit="min"),
    Param(key="pca.demand_dose", label="PCA demand dose", shape=Shape.DOSE),
    Param(key="pca.lockout_min", label="PCA lockout", shape=Shape.BOUNDS, fixed_unit="min"),
    Param(key="pca.basal", label="PCA basal", shape=Shape.DOSE),
    Param(key="pca.loading_dose", label="PCA loading dose", shape=Shape.DOSE),
    Param(key="pca.clinician_bolus", label="PCA clinician bolus", shape=Shape.DOSE),
    Param(key="pca.max_dose", label="PCA max dose", shape=Shape.DOSE),
)
UNIT_AMOUNTS: Final = tuple(u.value for u in AmountUnit)
UNIT_TIMES: Final = tuple(t.value for t in TimeUnit)
ROUTES: Final = tuple(r.value for r in Route)
MODES: Final = tuple(m.value for m in DeliveryMode)

Errors = dict[str, tuple[str, str]]


def _get(document: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    node: Any = document
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, Mapping) else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def removed_limits(saved: Mapping[str, str], values: Mapping[str, str]) -> tuple[str, ...]:
    """The bounds the entry held that the submitted form sends empty ('Dose soft min 5 mcg/min'): a
    destructive edit, since a removed limit no longer alerts (a field not sent keeps its value)."""
    removed: list[str] = []
    for param in PARAMS:
        unit = saved.get(f"{param.key}.unit", "") or param.fixed_unit
        for bound in BOUNDS:
            key = f"{param.key}.{bound}"
            if saved.get(key, "") and key in values and not values[key].strip():
                removed.append(f"{param.label} {bound.replace('_', ' ')} {saved[key]} {unit}".rstrip())
    return tuple(removed)


def values_of(entry: Mapping[str, Any]) -> dict[str, str]:
    """The form's field values for an entry document (empty strings where nothing is configured)."""
    values: dict[str, str] = {}
    for param in PARAMS:
        node = _get(entry, param.path) or {}
        values[f"{param.key}.unit"] = _text(node.get("unit"))
        limits = node.get("limits") or {}
        for bound in BOUNDS:
            values[f"{param.key}.{bound}"] = _text(limits.get(bound))
        values[f"{param.key}.default"] = _text(node.get(param.default_key))
    values[WINDOW_FIELD] = _text((_get(entry, ("pca",)) or {}).get("max_dose_window_h"))
    values["concentrations"] = "\n".join(
        str(Concentration(Decimal(str(c["amount"])), AmountUnit(c["unit"]), Decimal(str(c["volume_ml"]))))
        for c in entry.get("concentrations", ())
    )
    for key in ("therapy", "advisory"):
        values[key] = _text(entry.get(key))
    values["route"] = _text(entry.get("route", Route.IV.value))
    values["mode"] = _text(entry.get("mode", DeliveryMode.CONTINUOUS.value))
    return values


def _number(values: Mapping[str, str], name: str, errors: Errors, *, positive: bool) -> Decimal | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        errors[name] = (f"{text!r} is not a number", "library.limit_invalid")
        return None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        what = "a positive number" if positive else "a non-negative number"
        errors[name] = (f"must be {what}", "library.limit_invalid")
        return None
    return number


def _limits(param: Param, values: Mapping[str, str], errors: Errors) -> tuple[dict[str, Decimal], bool]:
    """The parameter's bounds (as document values) and whether they are in order."""
    found = {b: _number(values, f"{param.key}.{b}", errors, positive=False) for b in BOUNDS}
    present = [(b, v) for b, v in found.items() if v is not None]
    for (low_kind, low), (high_kind, high) in itertools.pairwise(present):
        if low > high:
            errors[f"{param.key}.{high_kind}"] = (
                f"{high_kind.replace('_', ' ')} {_text(high)} is below "
                f"{low_kind.replace('_', ' ')} {_text(low)}",
                "limits.order",
            )
            return dict(present), False
    return dict(present), True


def _param(param: Param, values: Mapping[str, str], errors: Errors) -> dict[str, Any] | None:
    """The parameter's document, None when it is not configured."""
    unit_field = f"{param.key}.unit"
    unit_text = values.get(unit_field, "").strip()
    limits, ordered = _limits(param, values, errors)
    default = _number(values, f"{param.key}.default", errors, positive=True)
    configured = bool(limits) or default is not None
    node: dict[str, Any] = {}
    if param.shape is Shape.BOUNDS:
        if not configured:
            return None
    else:
        if not unit_text:
            if configured or param.required:
                errors[unit_field] = (f"{param.label.lower()} needs a unit", "library.unit_required")
            return None
        try:
            if param.shape is Shape.DOSE:
                node["unit"] = str(DoseUnit.parse(unit_text))
            else:
                node["unit"] = AmountUnit(unit_text).value
        except (SmartpumpError, ValueError):
            allowed = (
                "a dosing unit like mcg/kg/min" if param.shape is Shape.DOSE else ", ".join(UNIT_AMOUNTS)
            )
            errors[unit_field] = (f"unknown unit {unit_text!r}: use {allowed}", "unit.unknown")
    if ordered and limits:
        LimitSet(**limits)
        low, high = limits.get("hard_min"), limits.get("hard_max")
        if default is not None and (
            (low is not None and default < low) or (high is not None and default > high)
        ):
            errors[f"{param.key}.default"] = (
                "the default is outside the hard limits",
                "library.default_outside",
            )
    node["limits"] = limits
    if default is not None:
        node[param.default_key] = default
    return node


def _concentrations(text: str, errors: Errors) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed = Concentration.parse(line)
        except (SmartpumpError, ValueError, ArithmeticError):
            errors["concentrations"] = (
                f"line {number}: {line.strip()!r} is not like '400 mg/250 mL'",
                "library.concentration_invalid",
            )
            continue
        item = {"amount": parsed.amount, "unit": parsed.unit.value, "volume_ml": parsed.volume_ml}
        if item not in found:
            found.append(item)
    return found


def _choice(values: Mapping[str, str], name: str, allowed: tuple[str, ...], errors: Errors) -> str:
    chosen = values.get(name, "").strip()
    if chosen not in allowed:
        errors[name] = (f"{chosen!r} is not one of {', '.join(allowed)}", f"library.{name}_invalid")
    return chosen


def _free_text(values: Mapping[str, str], name: str, limit: int, errors: Errors) -> str | None:
    text = values.get(name, "").strip()
    if len(text) > limit:
        errors[name] = (f"at most {limit} characters", "library.text_too_long")
    return text or None


def _submitted(values: Mapping[str, str], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in values)


def parse(values: Mapping[str, str], existing: Mapping[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The entry document the form asks for (built on the existing one) and every refusal by field.

    A field (or a parameter's whole group of fields) the form did not send keeps its existing value.
    """
    errors: Errors = {}
    entry: dict[str, Any] = dict(existing)
    pca: dict[str, Any] = {}
    for param in PARAMS:
        if not _submitted(values, param.key + "."):
            continue
        node = _param(param, values, errors)
        if param.key.startswith("pca."):
            if node is not None:
                pca[param.path[1]] = node
            continue
        entry.pop(param.key, None)
        if node is not None:
            entry[param.key] = node
    window_text = values.get(WINDOW_FIELD, "").strip()
    if window_text:
        if not (window_text.isascii() and window_text.isdigit()) or not 1 <= int(window_text) <= 12:
            errors[WINDOW_FIELD] = ("a whole number of hours, 1-12", "library.pca_window")
        else:
            pca["max_dose_window_h"] = int(window_text)
    if _submitted(values, "pca."):
        entry.pop("pca", None)
        if pca:
            if "demand_dose" not in pca:
                errors.setdefault(
                    "pca.demand_dose.unit",
                    ("PCA settings need a demand dose and its unit", "library.unit_required"),
                )
            entry["pca"] = pca
    if "concentrations" in values:
        entry["concentrations"] = _concentrations(values["concentrations"], errors)
    for key, limit in (("therapy", TEXT_LIMIT), ("advisory", ADVISORY_LIMIT)):
        if key in values:
            entry.pop(key, None)
            text = _free_text(values, key, limit, errors)
            if text is not None:
                entry[key] = text
    for key, allowed in (("route", ROUTES), ("mode", MODES)):
        if key in values:
            entry[key] = _choice(values, key, allowed, errors)
    return entry, errors
