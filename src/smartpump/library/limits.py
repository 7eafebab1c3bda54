"""LimitSet: hard and soft bounds for one parameter, checked on construction, that classify a value.

The shape is LoopKit's Guardrail (absolute bounds around recommended bounds), with our boundary
rule: a value exactly on a limit is inside it. Any bound may be absent; an absent bound is "not
configured", never zero.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final

from smartpump.errors import LimitOrderError
from smartpump.units import ratio, to_decimal


class LimitKind(StrEnum):
    """Which bound of a LimitSet."""

    HARD_MIN = "hard_min"
    SOFT_MIN = "soft_min"
    SOFT_MAX = "soft_max"
    HARD_MAX = "hard_max"

    @property
    def is_hard(self) -> bool:
        """True for the bounds that cannot be overridden."""
        return self in (LimitKind.HARD_MIN, LimitKind.HARD_MAX)

    @property
    def is_max(self) -> bool:
        """True for upper bounds."""
        return self in (LimitKind.SOFT_MAX, LimitKind.HARD_MAX)


LIMIT_ORDER: Final = (
    LimitKind.HARD_MIN,
    LimitKind.SOFT_MIN,
    LimitKind.SOFT_MAX,
    LimitKind.HARD_MAX,
)


class Zone(StrEnum):
    """Where a value sits relative to a LimitSet."""

    WITHIN = "within"
    BELOW_SOFT_MIN = "below_soft_min"
    ABOVE_SOFT_MAX = "above_soft_max"
    BELOW_HARD_MIN = "below_hard_min"
    ABOVE_HARD_MAX = "above_hard_max"


@dataclass(frozen=True, slots=True)
class Breach:
    """A value beyond one bound: which bound, its value, and how many times beyond it.

    ``factor`` is value / limit above a maximum and limit / value below a minimum, so it is
    always >= 1 (e.g. 10 for a ten-fold overdose); it is None when the value is 0 below a
    positive minimum (infinitely far).
    """

    zone: Zone
    kind: LimitKind
    limit: Decimal
    value: Decimal
    factor: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitSet:
    """hard_min <= soft_min <= soft_max <= hard_max, any of them absent; refuses disorder.

    >>> limits = LimitSet(soft_max=Decimal(20), hard_max=Decimal(30))
    >>> limits.classify(Decimal(20)) is None
    True
    >>> limits.zone(Decimal(30))
    <Zone.ABOVE_SOFT_MAX: 'above_soft_max'>
    """

    hard_min: Decimal | None = None
    soft_min: Decimal | None = None
    soft_max: Decimal | None = None
    hard_max: Decimal | None = None
    _empty: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        present: list[tuple[LimitKind, Decimal]] = []
        for kind in LIMIT_ORDER:
            value = getattr(self, kind.value)
            if value is None:
                continue
            checked = to_decimal(value, what=kind.value)
            if checked < 0:
                raise LimitOrderError(f"{kind} must not be negative, got {checked}")
            object.__setattr__(self, kind.value, checked)
            present.append((kind, checked))
        for (low_kind, low), (high_kind, high) in itertools.pairwise(present):
            if low > high:
                raise LimitOrderError(
                    f"{low_kind} {low} is above {high_kind} {high} "
                    "(limits must be ordered hard_min <= soft_min <= soft_max <= hard_max)"
                )
        object.__setattr__(self, "_empty", not present)

    @property
    def is_empty(self) -> bool:
        """True when no bound is configured (the parameter is unprotected)."""
        return self._empty

    @property
    def has_hard_max(self) -> bool:
        """True when an upper hard limit is configured."""
        return self.hard_max is not None

    def get(self, kind: LimitKind) -> Decimal | None:
        """The bound of the given kind, or None."""
        value: Decimal | None = getattr(self, kind.value)
        return value

    def items(self) -> tuple[tuple[LimitKind, Decimal], ...]:
        """The configured bounds in order, as (kind, value) pairs."""
        return tuple((k, v) for k in LIMIT_ORDER if (v := self.get(k)) is not None)

    def classify(self, value: Decimal) -> Breach | None:
        """The most severe bound the value is beyond, or None when it is within every bound.

        Hard bounds are checked before soft ones; a value equal to a bound is inside it.
        """
        if self.hard_max is not None and value > self.hard_max:
            return Breach(
                Zone.ABOVE_HARD_MAX,
                LimitKind.HARD_MAX,
                self.hard_max,
                value,
                _above(value, self.hard_max),
            )
        if self.hard_min is not None and value < self.hard_min:
            return Breach(
                Zone.BELOW_HARD_MIN,
                LimitKind.HARD_MIN,
                self.hard_min,
                value,
                _below(value, self.hard_min),
            )
        if self.soft_max is not None and value > self.soft_max:
            return Breach(
                Zone.ABOVE_SOFT_MAX,
                LimitKind.SOFT_MAX,
                self.soft_max,
                value,
                _above(value, self.soft_max),
            )
        if self.soft_min is not None and value < self.soft_min:
            return Breach(
                Zone.BELOW_SOFT_MIN,
                LimitKind.SOFT_MIN,
                self.soft_min,
                value,
                _below(value, self.soft_min),
            )
        return None

    def zone(self, value: Decimal) -> Zone:
        """The zone of a value (WITHIN when no bound is crossed)."""
        breach = self.classify(value)
        return Zone.WITHIN if breach is None else breach.zone


NO_LIMITS: Final = LimitSet()


def _above(value: Decimal, limit: Decimal) -> Decimal | None:
    return None if limit == 0 else ratio(value, limit)


def _below(value: Decimal, limit: Decimal) -> Decimal | None:
    return None if value == 0 else ratio(limit, value)
