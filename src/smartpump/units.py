"""Dosing-unit algebra: a closed vocabulary of clinical units and exact dose <-> rate math.

Every quantity is a ``Decimal``; conversion factors are exact powers of ten (or the exact
definitions 1 lb = 0.45359237 kg, 1 in = 2.54 cm). Dose <-> rate math multiplies first and
divides once, in a 40-digit context, so results are exact wherever the true value has a finite
decimal expansion of up to 40 digits. Rounding to a pump's display resolution is a separate,
explicit step (``round_half_up``) that callers apply once, at the end.

UCUM codes follow the UCUM case-sensitive table; MDC codes are ISO/IEEE 11073-10101 partition 4
(dimensions) term codes, ``None`` where the nomenclature has no standard code for the unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from enum import StrEnum
from typing import Final

from smartpump.errors import UnitError

__all__ = [
    "MDC_PARTITION_DIMENSIONS",
    "ML_PER_H",
    "AmountUnit",
    "Basis",
    "Concentration",
    "Dimension",
    "DoseUnit",
    "TimeUnit",
    "bsa_mosteller_m2",
    "convert_amount",
    "convert_dose",
    "dose_to_rate_ml_per_h",
    "dose_to_volume_ml",
    "dose_units_convertible",
    "format_decimal",
    "mdc_context_free",
    "ml_per_dose",
    "parse_duration_min",
    "parse_height_cm",
    "parse_weight_kg",
    "rate_to_dose",
    "ratio",
    "require_positive",
    "round_half_up",
    "scale",
    "to_decimal",
    "volume_to_dose",
]

_CTX: Final = Context(prec=40, traps=[InvalidOperation, DivisionByZero, Overflow])
MDC_PARTITION_DIMENSIONS: Final = 4


class Dimension(StrEnum):
    """What an amount unit measures; conversion is only defined within one dimension."""

    MASS = "mass"
    UNITS = "units"
    EQUIVALENTS = "equivalents"
    MOLES = "moles"
    VOLUME = "volume"


class AmountUnit(StrEnum):
    """Amount units a drug library may use (the canonical spelling is the value)."""

    G = "g"
    MG = "mg"
    MCG = "mcg"
    NG = "ng"
    UNITS = "units"
    MILLIUNITS = "milliunits"
    MEQ = "mEq"
    MMOL = "mmol"
    ML = "mL"

    _dimension: Dimension
    _exponent10: int

    @property
    def dimension(self) -> Dimension:
        """The dimension this unit belongs to."""
        return self._dimension

    @property
    def exponent10(self) -> int:
        """Power of ten relative to the dimension's base unit (mg -> -3 relative to g)."""
        return self._exponent10

    @property
    def ucum(self) -> str:
        """The UCUM case-sensitive code."""
        return _AMOUNT_INFO[self][2]

    @property
    def mdc_code(self) -> int | None:
        """The 11073-10101 partition-4 term code, when the nomenclature has one."""
        return _AMOUNT_INFO[self][3]


_AMOUNT_INFO: Final[dict[AmountUnit, tuple[Dimension, int, str, int | None]]] = {
    AmountUnit.G: (Dimension.MASS, 0, "g", 1728),
    AmountUnit.MG: (Dimension.MASS, -3, "mg", 1746),
    AmountUnit.MCG: (Dimension.MASS, -6, "ug", 1747),
    AmountUnit.NG: (Dimension.MASS, -9, "ng", 1748),
    AmountUnit.UNITS: (Dimension.UNITS, 0, "[iU]", 5472),
    AmountUnit.MILLIUNITS: (Dimension.UNITS, -3, "m[iU]", 5490),
    AmountUnit.MEQ: (Dimension.EQUIVALENTS, 0, "meq", 4594),
    AmountUnit.MMOL: (Dimension.MOLES, 0, "mmol", 4562),
    AmountUnit.ML: (Dimension.VOLUME, 0, "mL", 1618),
}

for _unit, (_dimension, _exponent10, _ucum, _mdc) in _AMOUNT_INFO.items():
    _unit._dimension = _dimension
    _unit._exponent10 = _exponent10

_AMOUNT_SPELLINGS: Final[dict[str, AmountUnit]] = {
    "g": AmountUnit.G,
    "gm": AmountUnit.G,
    "gram": AmountUnit.G,
    "grams": AmountUnit.G,
    "mg": AmountUnit.MG,
    "milligram": AmountUnit.MG,
    "milligrams": AmountUnit.MG,
    "mcg": AmountUnit.MCG,
    "ug": AmountUnit.MCG,
    "µg": AmountUnit.MCG,
    "μg": AmountUnit.MCG,
    "microgram": AmountUnit.MCG,
    "micrograms": AmountUnit.MCG,
    "ng": AmountUnit.NG,
    "nanogram": AmountUnit.NG,
    "nanograms": AmountUnit.NG,
    "unit": AmountUnit.UNITS,
    "units": AmountUnit.UNITS,
    "u": AmountUnit.UNITS,
    "iu": AmountUnit.UNITS,
    "[iu]": AmountUnit.UNITS,
    "milliunit": AmountUnit.MILLIUNITS,
    "milliunits": AmountUnit.MILLIUNITS,
    "mu": AmountUnit.MILLIUNITS,
    "m[iu]": AmountUnit.MILLIUNITS,
    "meq": AmountUnit.MEQ,
    "mmol": AmountUnit.MMOL,
    "millimole": AmountUnit.MMOL,
    "millimoles": AmountUnit.MMOL,
    "ml": AmountUnit.ML,
    "milliliter": AmountUnit.ML,
    "millilitre": AmountUnit.ML,
}


class Basis(StrEnum):
    """What a dose is normalised by: nothing, body weight (kg) or body surface area (m2)."""

    NONE = ""
    KG = "kg"
    M2 = "m2"


class TimeUnit(StrEnum):
    """The time base of a dose rate."""

    MIN = "min"
    H = "h"
    DAY = "day"

    _per_hour: Decimal

    @property
    def per_hour_factor(self) -> Decimal:
        """Multiply a per-<unit> amount by this to get the per-hour amount."""
        return self._per_hour

    @property
    def ucum(self) -> str:
        """The UCUM code of the time unit."""
        return {TimeUnit.MIN: "min", TimeUnit.H: "h", TimeUnit.DAY: "d"}[self]


_PER_HOUR: Final[dict[TimeUnit, Decimal]] = {
    TimeUnit.MIN: Decimal(60),
    TimeUnit.H: Decimal(1),
    TimeUnit.DAY: _CTX.divide(Decimal(1), Decimal(24)),
}

for _time, _factor in _PER_HOUR.items():
    _time._per_hour = _factor

_BASIS_SPELLINGS: Final[dict[str, Basis]] = {"kg": Basis.KG, "m2": Basis.M2, "m²": Basis.M2}
_TIME_SPELLINGS: Final[dict[str, TimeUnit]] = {
    "min": TimeUnit.MIN,
    "minute": TimeUnit.MIN,
    "minutes": TimeUnit.MIN,
    "h": TimeUnit.H,
    "hr": TimeUnit.H,
    "hour": TimeUnit.H,
    "hours": TimeUnit.H,
    "day": TimeUnit.DAY,
    "days": TimeUnit.DAY,
    "d": TimeUnit.DAY,
    "24h": TimeUnit.DAY,
}

# 11073-10101 partition-4 term codes for dose-rate units that have one (mass, units and volume
# rates, with and without /kg). Units absent here (/m2 bases, mEq and mmol rates) have no
# standard code; they travel with UCUM only.
_RATE_MDC: Final[dict[tuple[AmountUnit, Basis, TimeUnit], int]] = {
    (AmountUnit.G, Basis.NONE, TimeUnit.MIN): 3328,
    (AmountUnit.MG, Basis.NONE, TimeUnit.MIN): 3346,
    (AmountUnit.MCG, Basis.NONE, TimeUnit.MIN): 3347,
    (AmountUnit.NG, Basis.NONE, TimeUnit.MIN): 3348,
    (AmountUnit.G, Basis.NONE, TimeUnit.H): 3360,
    (AmountUnit.MG, Basis.NONE, TimeUnit.H): 3378,
    (AmountUnit.MCG, Basis.NONE, TimeUnit.H): 3379,
    (AmountUnit.NG, Basis.NONE, TimeUnit.H): 3380,
    (AmountUnit.G, Basis.NONE, TimeUnit.DAY): 3392,
    (AmountUnit.MG, Basis.NONE, TimeUnit.DAY): 3410,
    (AmountUnit.MCG, Basis.NONE, TimeUnit.DAY): 3411,
    (AmountUnit.NG, Basis.NONE, TimeUnit.DAY): 3412,
    (AmountUnit.G, Basis.KG, TimeUnit.MIN): 3456,
    (AmountUnit.MG, Basis.KG, TimeUnit.MIN): 3474,
    (AmountUnit.MCG, Basis.KG, TimeUnit.MIN): 3475,
    (AmountUnit.NG, Basis.KG, TimeUnit.MIN): 3476,
    (AmountUnit.G, Basis.KG, TimeUnit.H): 3488,
    (AmountUnit.MG, Basis.KG, TimeUnit.H): 3506,
    (AmountUnit.MCG, Basis.KG, TimeUnit.H): 3507,
    (AmountUnit.NG, Basis.KG, TimeUnit.H): 3508,
    (AmountUnit.UNITS, Basis.NONE, TimeUnit.MIN): 5664,
    (AmountUnit.MILLIUNITS, Basis.NONE, TimeUnit.MIN): 5682,
    (AmountUnit.UNITS, Basis.NONE, TimeUnit.H): 5696,
    (AmountUnit.MILLIUNITS, Basis.NONE, TimeUnit.H): 5714,
    (AmountUnit.UNITS, Basis.KG, TimeUnit.MIN): 5792,
    (AmountUnit.MILLIUNITS, Basis.KG, TimeUnit.MIN): 5810,
    (AmountUnit.UNITS, Basis.KG, TimeUnit.H): 5824,
    (AmountUnit.MILLIUNITS, Basis.KG, TimeUnit.H): 5842,
    (AmountUnit.MEQ, Basis.NONE, TimeUnit.DAY): 5202,
    (AmountUnit.ML, Basis.NONE, TimeUnit.MIN): 3090,
    (AmountUnit.ML, Basis.NONE, TimeUnit.H): 3122,
    (AmountUnit.ML, Basis.NONE, TimeUnit.DAY): 3154,
}


def mdc_context_free(term_code: int) -> int:
    """The context-free 11073 code of a partition-4 term (partition * 65536 + term)."""
    return MDC_PARTITION_DIMENSIONS * 65536 + term_code


@dataclass(frozen=True, slots=True)
class DoseUnit:
    """A dosing unit: amount, optional basis (/kg, /m2) and optional time (/min, /h, /day).

    Without a time the unit is a total (``mg``, ``units/kg``, ``mg/m2``), delivered over a
    duration. ``mL/h`` is the dosing unit of rate-based entries and IV fluids.

    >>> str(DoseUnit.parse("ug/kg/minute"))
    'mcg/kg/min'
    >>> DoseUnit.parse("mcg/kg/min").ucum
    'ug/kg/min'
    """

    amount: AmountUnit
    basis: Basis = Basis.NONE
    time: TimeUnit | None = None
    _text: str = field(init=False, repr=False, compare=False)
    _per_hour: Decimal = field(init=False, repr=False, compare=False)
    _flags: tuple[bool, bool, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = [self.amount.value]
        if self.basis is not Basis.NONE:
            parts.append(self.basis.value)
        if self.time is not None:
            parts.append(self.time.value)
        object.__setattr__(self, "_text", "/".join(parts))
        object.__setattr__(self, "_per_hour", self.time.per_hour_factor if self.time else Decimal(1))
        flags = (self.amount is AmountUnit.ML, self.basis is Basis.KG, self.basis is Basis.M2)
        if flags[0] and flags[2]:
            raise UnitError(f"volume per m2 is not a dosing unit: {self._text!r}", code="unit.unknown")
        object.__setattr__(self, "_flags", flags)

    def __str__(self) -> str:
        return self._text

    @property
    def is_rate(self) -> bool:
        """True for a dose rate (has a time base); False for a total dose."""
        return self.time is not None

    @property
    def is_volume(self) -> bool:
        """True when the amount is mL (rate-based entries and fluids): no concentration needed."""
        return self._flags[0]

    @property
    def needs_weight(self) -> bool:
        """True for weight-based (/kg) units."""
        return self._flags[1]

    @property
    def needs_bsa(self) -> bool:
        """True for BSA-based (/m2) units."""
        return self._flags[2]

    @property
    def ucum(self) -> str:
        """The UCUM code (``ug/kg/min``, ``[iU]/h``, ``mg/m2/d``)."""
        parts = [self.amount.ucum]
        if self.basis is not Basis.NONE:
            parts.append(self.basis.value)
        if self.time is not None:
            parts.append(self.time.ucum)
        return "/".join(parts)

    @property
    def mdc_code(self) -> int | None:
        """The 11073-10101 partition-4 term code, or None where the nomenclature has none."""
        if self.time is None:
            return self.amount.mdc_code if self.basis is Basis.NONE else None
        return _RATE_MDC.get((self.amount, self.basis, self.time))

    @classmethod
    def parse(cls, text: str) -> DoseUnit:
        """Parse a unit in any accepted spelling (``ug/kg/min``, ``units/hr``, ``mL/h``...).

        Raises:
            UnitError: the text is not a unit of the closed vocabulary.
        """
        cleaned = text.strip().replace(" ", "")
        parts = list(cleaned.split("/"))
        if not cleaned or any(not p for p in parts) or len(parts) > 3:
            raise UnitError(f"unknown dosing unit {text!r}", code="unit.unknown")
        amount = _AMOUNT_SPELLINGS.get(parts[0].lower()) or _AMOUNT_SPELLINGS.get(parts[0])
        if amount is None:
            raise UnitError(f"unknown amount unit {parts[0]!r} in {text!r}", code="unit.unknown")
        basis = Basis.NONE
        time: TimeUnit | None = None
        rest = [p.lower() for p in parts[1:]]
        if rest and rest[0] in _BASIS_SPELLINGS:
            basis = _BASIS_SPELLINGS[rest.pop(0)]
        if rest:
            time = _TIME_SPELLINGS.get(rest.pop(0))
            if time is None or rest:
                raise UnitError(f"unknown dosing unit {text!r}", code="unit.unknown")
        return cls(amount, basis, time)


ML_PER_H: Final = DoseUnit(AmountUnit.ML, Basis.NONE, TimeUnit.H)


def to_decimal(value: Decimal | int | str, *, what: str = "value") -> Decimal:
    """Turn a number into a finite Decimal, refusing NaN, infinities and garbage.

    Floats are refused on purpose: they carry binary rounding into exact math.
    """
    if type(value) is Decimal and value.is_finite():
        return value
    if isinstance(value, (bool, float)):
        raise UnitError(f"{what} must be a decimal number, not {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise UnitError(f"{what} is not a number: {value!r}", code="unit.not_a_number") from None
    if not result.is_finite():
        raise UnitError(f"{what} must be finite, got {value!r}", code="unit.not_finite")
    return result


def require_positive(value: Decimal, *, what: str) -> Decimal:
    """Return the value if it is finite and > 0; raise UnitError otherwise."""
    checked = to_decimal(value, what=what)
    if checked <= 0:
        raise UnitError(f"{what} must be greater than zero, got {checked}", code="unit.not_positive")
    return checked


def convert_amount(value: Decimal, source: AmountUnit, target: AmountUnit) -> Decimal:
    """Convert an amount between units of one dimension, exactly (mg -> mcg multiplies by 1000).

    >>> convert_amount(Decimal("1.5"), AmountUnit.G, AmountUnit.MG) == Decimal(1500)
    True
    """
    if source is target:
        return value
    if source._dimension is not target._dimension:
        raise UnitError(
            f"cannot convert {source} ({source.dimension}) to {target} ({target.dimension})",
            code="unit.dimension_mismatch",
        )
    return value.scaleb(source._exponent10 - target._exponent10, _CTX)


@dataclass(frozen=True, slots=True)
class Concentration:
    """Drug amount in a container volume, e.g. 400 mg in 250 mL (1.6 mg/mL).

    >>> Concentration.parse("400 mg/250 mL").per_ml
    Decimal('1.6')
    """

    amount: Decimal
    unit: AmountUnit
    volume_ml: Decimal

    def __post_init__(self) -> None:
        require_positive(self.amount, what="concentration amount")
        require_positive(self.volume_ml, what="concentration volume")
        if self.unit is AmountUnit.ML:
            raise UnitError("a concentration's amount cannot be in mL", code="unit.concentration")

    def __str__(self) -> str:
        return f"{_plain(self.amount)} {self.unit}/{_plain(self.volume_ml)} mL"

    @property
    def per_ml(self) -> Decimal:
        """Amount per mL, in ``unit``."""
        return _CTX.divide(self.amount, self.volume_ml)

    def per_ml_in(self, unit: AmountUnit) -> Decimal:
        """Amount per mL expressed in another unit of the same dimension."""
        return _CTX.divide(convert_amount(self.amount, self.unit, unit), self.volume_ml)

    def same_strength(self, other: Concentration) -> bool:
        """True when both are the same amount per mL (1 g/250 mL == 1000 mg/250 mL)."""
        if self.unit.dimension is not other.unit.dimension:
            return False
        return self.per_ml_in(other.unit) == other.per_ml

    @classmethod
    def parse(cls, text: str) -> Concentration:
        """Parse ``"400 mg/250 mL"``, ``"400mg/250mL"`` or ``"1.6 mg/mL"``."""
        match = _CONC_RE.fullmatch(text.strip())
        if match is None:
            raise UnitError(
                f"concentration must look like '400 mg/250 mL' or '1.6 mg/mL', got {text!r}",
                code="unit.concentration",
            )
        amount = to_decimal(match["amount"], what="concentration amount")
        unit = _parse_amount_unit(match["unit"])
        volume = to_decimal(match["volume"] or "1", what="concentration volume")
        if match["vunit"].lower() not in ("ml", "milliliter", "millilitre"):
            raise UnitError(f"concentration volume must be in mL: {text!r}", code="unit.concentration")
        return cls(amount, unit, volume)


_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_CONC_RE: Final = re.compile(
    rf"(?P<amount>{_NUMBER})\s*(?P<unit>[A-Za-zµμ\[\]]+)\s*/\s*(?P<volume>{_NUMBER})?\s*(?P<vunit>[A-Za-z]+)"
)
_QUANTITY_RE: Final = re.compile(rf"(?P<value>{_NUMBER})\s*(?P<unit>[A-Za-z²]*)")


def _parse_amount_unit(text: str) -> AmountUnit:
    unit = _AMOUNT_SPELLINGS.get(text.lower()) or _AMOUNT_SPELLINGS.get(text)
    if unit is None:
        raise UnitError(f"unknown amount unit {text!r}", code="unit.unknown")
    return unit


def _plain(value: Decimal) -> str:
    """Format without exponent and without trailing zeros (400, 1.6, 0.05)."""
    text = format(value.normalize(), "f")
    return text


def format_decimal(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros, as shown to people."""
    return _plain(value)


_WEIGHT_TO_KG: Final[dict[str, Decimal]] = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "lb": Decimal("0.45359237"),
    "lbs": Decimal("0.45359237"),
}
_HEIGHT_TO_CM: Final[dict[str, Decimal]] = {
    "cm": Decimal(1),
    "m": Decimal(100),
    "in": Decimal("2.54"),
}
_DURATION_TO_MIN: Final[dict[str, Decimal]] = {
    "min": Decimal(1),
    "mins": Decimal(1),
    "minute": Decimal(1),
    "minutes": Decimal(1),
    "h": Decimal(60),
    "hr": Decimal(60),
    "hour": Decimal(60),
    "hours": Decimal(60),
    "day": Decimal(1440),
    "days": Decimal(1440),
    "d": Decimal(1440),
}
_SECONDS: Final = ("s", "sec", "secs", "second", "seconds")


def _parse_quantity(text: str, table: dict[str, Decimal], what: str, default_unit: str) -> Decimal:
    match = _QUANTITY_RE.fullmatch(text.strip())
    if match is None:
        raise UnitError(f"{what} must look like '70{default_unit}', got {text!r}", code="unit.quantity")
    unit = (match["unit"] or default_unit).lower()
    factor = table.get(unit)
    if factor is None:
        accepted = ", ".join(sorted(table))
        raise UnitError(f"{what} unit {unit!r} not accepted (use {accepted})", code="unit.unknown")
    value = to_decimal(match["value"], what=what)
    return _CTX.multiply(value, factor)


def parse_weight_kg(text: str) -> Decimal:
    """Parse a patient weight (``70kg``, ``154 lb``, ``3500g``; bare numbers are kg) into kg."""
    return require_positive(_parse_quantity(text, _WEIGHT_TO_KG, "weight", "kg"), what="weight")


def parse_height_cm(text: str) -> Decimal:
    """Parse a patient height (``170cm``, ``1.7m``, ``67in``; bare numbers are cm) into cm."""
    return require_positive(_parse_quantity(text, _HEIGHT_TO_CM, "height", "cm"), what="height")


def parse_duration_min(text: str) -> Decimal:
    """Parse a duration (``30min``, ``46h``, ``2day``, ``90s``; bare numbers are minutes) into minutes."""
    match = _QUANTITY_RE.fullmatch(text.strip())
    if match is not None and match["unit"].lower() in _SECONDS:
        seconds = to_decimal(match["value"], what="duration")
        return require_positive(_CTX.divide(seconds, Decimal(60)), what="duration")
    return require_positive(_parse_quantity(text, _DURATION_TO_MIN, "duration", "min"), what="duration")


def bsa_mosteller_m2(weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """Body surface area by Mosteller: sqrt(height_cm * weight_kg / 3600), unrounded.

    >>> bsa_mosteller_m2(Decimal(64), Decimal(225))
    Decimal('2')
    """
    require_positive(weight_kg, what="weight")
    require_positive(height_cm, what="height")
    return _CTX.divide(_CTX.multiply(height_cm, weight_kg), Decimal(3600)).sqrt(_CTX)


_KG: Final = Basis.KG
_M2: Final = Basis.M2
_ONE: Final = Decimal(1)
_SIXTY: Final = Decimal(60)


def _basis_factor(unit: DoseUnit, weight_kg: Decimal | None, bsa_m2: Decimal | None) -> Decimal:
    if unit.basis is _KG:
        if weight_kg is None:
            raise UnitError(f"a weight is needed for {unit}", code="unit.weight_required")
        return require_positive(weight_kg, what="weight")
    if unit.basis is _M2:
        if bsa_m2 is None:
            raise UnitError(f"a body surface area is needed for {unit}", code="unit.bsa_required")
        return require_positive(bsa_m2, what="BSA")
    return _ONE


def dose_to_rate_ml_per_h(
    dose: Decimal,
    unit: DoseUnit,
    concentration: Concentration | None,
    *,
    weight_kg: Decimal | None = None,
    bsa_m2: Decimal | None = None,
    duration_min: Decimal | None = None,
) -> Decimal:
    """The exact (unrounded) flow rate in mL/h that delivers ``dose`` in ``unit``.

    rate = dose x basis x per-hour factor x amount conversion / concentration; a total dose
    (no time base) is spread evenly over ``duration_min``. mL-based units need no concentration.

    >>> c = Concentration.parse("400 mg/250 mL")
    >>> dose_to_rate_ml_per_h(Decimal(5), DoseUnit.parse("mcg/kg/min"), c, weight_kg=Decimal(70))
    Decimal('13.125')

    Raises:
        UnitError: missing weight/BSA/duration/concentration, or amount dimensions that differ.
    """
    dose = to_decimal(dose, what="dose")
    if dose < 0:
        raise UnitError(f"dose must not be negative, got {dose}", code="unit.negative")
    basis = _basis_factor(unit, weight_kg, bsa_m2)
    _require_concentration(unit, concentration)
    numerator, denominator = ml_per_dose(unit, concentration, basis)
    if unit.time is None:
        numerator, denominator = _over_duration(numerator, denominator, unit, duration_min)
    return _CTX.divide(_CTX.multiply(dose, numerator), denominator)


def rate_to_dose(
    rate_ml_per_h: Decimal,
    unit: DoseUnit,
    concentration: Concentration | None,
    *,
    weight_kg: Decimal | None = None,
    bsa_m2: Decimal | None = None,
    duration_min: Decimal | None = None,
) -> Decimal:
    """The exact dose in ``unit`` that a flow of ``rate_ml_per_h`` delivers (inverse of
    ``dose_to_rate_ml_per_h``; for a total dose, over ``duration_min``).

    >>> c = Concentration.parse("400 mg/250 mL")
    >>> rate_to_dose(Decimal(20), DoseUnit.parse("mcg/kg/min"), c, weight_kg=Decimal(80))
    Decimal('6.666666666666666666666666666666666666667')
    """
    rate = to_decimal(rate_ml_per_h, what="rate")
    if rate < 0:
        raise UnitError(f"rate must not be negative, got {rate}", code="unit.negative")
    basis = _basis_factor(unit, weight_kg, bsa_m2)
    _require_concentration(unit, concentration)
    numerator, denominator = ml_per_dose(unit, concentration, basis)
    if unit.time is None:
        numerator, denominator = _over_duration(numerator, denominator, unit, duration_min)
    return _CTX.divide(_CTX.multiply(rate, denominator), numerator)


def ml_per_dose(
    unit: DoseUnit, concentration: Concentration | None, basis: Decimal
) -> tuple[Decimal, Decimal]:
    """The mL (per hour, for a dose rate) one ``unit`` of dose takes, as an exact fraction
    (numerator, denominator): volume = dose x n / d and dose = volume x d / n, one rounding each,
    so a dose that terminates comes back exactly. Inputs are already checked (``basis`` = weight,
    BSA or 1; a concentration unless ``unit`` is in mL).

    Raises:
        UnitError: the dose's amount and the concentration's are of different dimensions.
    """
    per_dose = _CTX.multiply(basis, unit._per_hour)
    if unit.is_volume or concentration is None:
        return per_dose, _ONE
    numerator = convert_amount(
        _CTX.multiply(per_dose, concentration.volume_ml), unit.amount, concentration.unit
    )
    return numerator, concentration.amount


def _require_concentration(unit: DoseUnit, concentration: Concentration | None) -> None:
    if concentration is None and not unit.is_volume:
        raise UnitError(f"a concentration is needed to dose in {unit}", code="unit.concentration_required")


def _over_duration(
    numerator: Decimal, denominator: Decimal, unit: DoseUnit, duration_min: Decimal | None
) -> tuple[Decimal, Decimal]:
    """The per-hour fraction of a total dose spread evenly over ``duration_min``."""
    if duration_min is None:
        raise UnitError(f"a duration is needed for a total dose in {unit}", code="unit.duration_required")
    minutes = require_positive(duration_min, what="duration")
    return _CTX.multiply(numerator, _SIXTY), _CTX.multiply(denominator, minutes)


def dose_to_volume_ml(
    dose: Decimal,
    unit: DoseUnit,
    concentration: Concentration | None,
    *,
    weight_kg: Decimal | None = None,
    bsa_m2: Decimal | None = None,
) -> Decimal:
    """The exact volume in mL that holds a total ``dose`` in ``unit`` (no time base).

    volume = dose x basis x amount conversion / concentration; mL-based units need no concentration.

    >>> dose_to_volume_ml(Decimal(10), DoseUnit.parse("mEq"), Concentration.parse("10 mEq/100 mL"))
    Decimal('100')

    Raises:
        UnitError: a dose rate (use ``dose_to_rate_ml_per_h``), a missing weight/BSA/concentration,
            or amount dimensions that differ.
    """
    if unit.time is not None:
        raise UnitError(f"{unit} is a dose rate, not a total dose", code="unit.not_total")
    dose = to_decimal(dose, what="dose")
    basis = _basis_factor(unit, weight_kg, bsa_m2)
    _require_concentration(unit, concentration)
    numerator, denominator = ml_per_dose(unit, concentration, basis)
    return _CTX.divide(_CTX.multiply(dose, numerator), denominator)


def volume_to_dose(
    volume_ml: Decimal,
    unit: DoseUnit,
    concentration: Concentration | None,
    *,
    weight_kg: Decimal | None = None,
    bsa_m2: Decimal | None = None,
) -> Decimal:
    """The exact total dose in ``unit`` that ``volume_ml`` holds (inverse of ``dose_to_volume_ml``).

    >>> volume_to_dose(Decimal(1000), DoseUnit.parse("mEq"), Concentration.parse("10 mEq/100 mL"))
    Decimal('100')

    Raises:
        UnitError: a dose rate, a missing weight/BSA/concentration, or amount dimensions that differ.
    """
    if unit.time is not None:
        raise UnitError(f"{unit} is a dose rate, not a total dose", code="unit.not_total")
    volume = to_decimal(volume_ml, what="volume")
    basis = _basis_factor(unit, weight_kg, bsa_m2)
    _require_concentration(unit, concentration)
    numerator, denominator = ml_per_dose(unit, concentration, basis)
    return _CTX.divide(_CTX.multiply(volume, denominator), numerator)


def dose_units_convertible(given: DoseUnit, target: DoseUnit) -> bool:
    """True when a dose in ``given`` converts exactly to ``target``: same basis, both rates or
    both totals, amounts of one dimension (mg <-> mcg, /min <-> /h)."""
    return (
        given.basis is target.basis
        and (given.time is None) == (target.time is None)
        and given.amount.dimension is target.amount.dimension
    )


def convert_dose(value: Decimal, given: DoseUnit, target: DoseUnit) -> Decimal:
    """Convert a dose between convertible units, exactly (5 mg/kg/min -> 5000 mcg/kg/min).

    >>> convert_dose(Decimal(60), DoseUnit.parse("mcg/kg/h"), DoseUnit.parse("mcg/kg/min"))
    Decimal('1')

    Raises:
        UnitError: the units are not convertible (code ``unit.not_convertible``).
    """
    if given == target:
        return value
    if not dose_units_convertible(given, target):
        raise UnitError(f"a dose in {given} cannot be expressed in {target}", code="unit.not_convertible")
    amount = convert_amount(value, given.amount, target.amount)
    return _CTX.divide(_CTX.multiply(amount, given._per_hour), target._per_hour)


_POWERS_OF_TEN: dict[Decimal, bool] = {}


def _is_power_of_ten(step: Decimal) -> bool:
    known = _POWERS_OF_TEN.get(step)
    if known is None:
        known = _POWERS_OF_TEN[step] = step.as_tuple().digits == (1,)
    return known


def round_half_up(value: Decimal, resolution: Decimal) -> Decimal:
    """Round to the nearest multiple of ``resolution``, halves away from zero (0.125 -> 0.13).

    This is the pump's one display/delivery rounding rule; Python's ``round`` (half-even)
    would give 0.12.

    >>> round_half_up(Decimal("13.125"), Decimal("0.1"))
    Decimal('13.1')
    >>> round_half_up(Decimal("0.125"), Decimal("0.01"))
    Decimal('0.13')
    """
    if type(value) is Decimal and type(resolution) is Decimal and value.is_finite():
        known = _POWERS_OF_TEN.get(resolution)
        if known:
            return value.quantize(resolution, rounding=ROUND_HALF_UP, context=_CTX)
    step = require_positive(resolution, what="resolution")
    number = to_decimal(value)
    if _is_power_of_ten(step):
        return number.quantize(step, rounding=ROUND_HALF_UP, context=_CTX)
    steps = _CTX.divide(number, step).quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_CTX)
    return _CTX.multiply(steps, step).quantize(step, context=_CTX)


def scale(value: Decimal, numerator: Decimal, denominator: Decimal) -> Decimal:
    """``value`` x numerator / denominator with one rounding (to 40 digits): exact whenever the
    result terminates within them (used with the fraction ``ml_per_dose`` returns).

    >>> scale(Decimal("0.3"), Decimal(4), Decimal(3))
    Decimal('0.4')
    """
    return _CTX.divide(_CTX.multiply(value, numerator), denominator)


def ratio(value: Decimal, limit: Decimal) -> Decimal:
    """How many times ``value`` is of ``limit`` (value / limit), for 'x-factor beyond a limit'."""
    return _CTX.divide(value, limit)
