"""LimitSet: ordering refused on construction, and classification at every edge (on a limit is inside)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from smartpump.errors import LimitOrderError
from smartpump.library.limits import LIMIT_ORDER, NO_LIMITS, Breach, LimitKind, LimitSet, Zone

D = Decimal
STEP = D("0.0001")
FULL = LimitSet(hard_min=D(1), soft_min=D(2), soft_max=D(20), hard_max=D(30))


@pytest.mark.parametrize(("low", "high"), list(itertools.combinations(LIMIT_ORDER, 2)), ids=lambda k: str(k))
def test_each_disordered_pair_is_refused(low: LimitKind, high: LimitKind) -> None:
    with pytest.raises(LimitOrderError) as caught:
        LimitSet(**{low.value: D(10), high.value: D(5)})
    assert caught.value.code == "limits.order"
    assert low.value in caught.value.message and high.value in caught.value.message


@pytest.mark.parametrize(("low", "high"), list(itertools.combinations(LIMIT_ORDER, 2)), ids=lambda k: str(k))
def test_equal_bounds_are_ordered(low: LimitKind, high: LimitKind) -> None:
    limits = LimitSet(**{low.value: D(10), high.value: D(10)})
    assert limits.classify(D(10)) is None


def test_disorder_is_found_across_an_absent_bound() -> None:
    with pytest.raises(LimitOrderError):
        LimitSet(hard_min=D(10), hard_max=D(5))


@pytest.mark.parametrize("kind", LIMIT_ORDER)
def test_negative_bound_is_refused(kind: LimitKind) -> None:
    with pytest.raises(LimitOrderError) as caught:
        LimitSet(**{kind.value: D(-1)})
    assert kind.value in caught.value.message


@pytest.mark.parametrize("kind", LIMIT_ORDER)
def test_non_finite_bound_is_refused(kind: LimitKind) -> None:
    with pytest.raises(ValueError):
        LimitSet(**{kind.value: D("NaN")})


@pytest.mark.parametrize("present", [c for r in range(5) for c in itertools.combinations(LIMIT_ORDER, r)])
def test_any_subset_of_bounds_may_be_absent(present: tuple[LimitKind, ...]) -> None:
    values = {
        LimitKind.HARD_MIN: D(1),
        LimitKind.SOFT_MIN: D(2),
        LimitKind.SOFT_MAX: D(20),
        LimitKind.HARD_MAX: D(30),
    }
    limits = LimitSet(**{k.value: values[k] for k in present})
    assert limits.items() == tuple((k, values[k]) for k in present)
    assert limits.is_empty == (not present)
    assert limits.has_hard_max == (LimitKind.HARD_MAX in present)
    for kind in LIMIT_ORDER:
        assert limits.get(kind) == (values[kind] if kind in present else None)


def test_int_and_string_bounds_become_decimals() -> None:
    limits = LimitSet(soft_max=5, hard_max="7.5")  # type: ignore[arg-type]
    assert limits.soft_max == D(5) and isinstance(limits.soft_max, Decimal)
    assert limits.hard_max == D("7.5")


@pytest.mark.parametrize(
    ("bound", "zone"),
    [
        (D(1), Zone.BELOW_SOFT_MIN),
        (D(2), Zone.WITHIN),
        (D(10), Zone.WITHIN),
        (D(20), Zone.WITHIN),
        (D(30), Zone.ABOVE_SOFT_MAX),
    ],
)
def test_value_on_a_bound_is_inside_that_bound(bound: Decimal, zone: Zone) -> None:
    assert FULL.zone(bound) is zone


@pytest.mark.parametrize(
    ("value", "zone", "kind", "limit"),
    [
        (D(30) + STEP, Zone.ABOVE_HARD_MAX, LimitKind.HARD_MAX, D(30)),
        (D(30) - STEP, Zone.ABOVE_SOFT_MAX, LimitKind.SOFT_MAX, D(20)),
        (D(20) + STEP, Zone.ABOVE_SOFT_MAX, LimitKind.SOFT_MAX, D(20)),
        (D(20) - STEP, Zone.WITHIN, None, None),
        (D(2) + STEP, Zone.WITHIN, None, None),
        (D(2) - STEP, Zone.BELOW_SOFT_MIN, LimitKind.SOFT_MIN, D(2)),
        (D(1) + STEP, Zone.BELOW_SOFT_MIN, LimitKind.SOFT_MIN, D(2)),
        (D(1) - STEP, Zone.BELOW_HARD_MIN, LimitKind.HARD_MIN, D(1)),
        (D(0), Zone.BELOW_HARD_MIN, LimitKind.HARD_MIN, D(1)),
        (D(1000), Zone.ABOVE_HARD_MAX, LimitKind.HARD_MAX, D(30)),
    ],
)
def test_classify_one_step_around_each_bound(
    value: Decimal, zone: Zone, kind: LimitKind | None, limit: Decimal | None
) -> None:
    assert FULL.zone(value) is zone
    breach = FULL.classify(value)
    if kind is None:
        assert breach is None
    else:
        assert breach is not None
        assert breach.kind is kind
        assert breach.limit == limit
        assert breach.value == value
        assert breach.zone is zone


def test_hard_wins_over_soft_above() -> None:
    breach = FULL.classify(D(45))
    assert breach == Breach(Zone.ABOVE_HARD_MAX, LimitKind.HARD_MAX, D(30), D(45), D("1.5"))


def test_hard_wins_over_soft_below() -> None:
    breach = FULL.classify(D("0.5"))
    assert breach == Breach(Zone.BELOW_HARD_MIN, LimitKind.HARD_MIN, D(1), D("0.5"), D(2))


def test_factor_above_a_max_is_value_over_limit() -> None:
    breach = LimitSet(soft_max=D(20)).classify(D(200))
    assert breach is not None and breach.factor == D(10)


def test_factor_below_a_min_is_limit_over_value() -> None:
    breach = LimitSet(soft_min=D(2)).classify(D("0.02"))
    assert breach is not None and breach.factor == D(100)


def test_factor_is_none_for_zero_below_a_positive_min() -> None:
    breach = LimitSet(hard_min=D(1)).classify(D(0))
    assert breach is not None
    assert breach.kind is LimitKind.HARD_MIN
    assert breach.factor is None


def test_factor_is_none_above_a_zero_max() -> None:
    breach = LimitSet(hard_max=D(0)).classify(D(1))
    assert breach is not None
    assert breach.factor is None


def test_empty_limits_classify_everything_within() -> None:
    assert NO_LIMITS.is_empty
    assert NO_LIMITS.items() == ()
    assert NO_LIMITS.zone(D(10) ** 9) is Zone.WITHIN


@pytest.mark.parametrize(
    ("kind", "is_hard", "is_max"),
    [
        (LimitKind.HARD_MIN, True, False),
        (LimitKind.SOFT_MIN, False, False),
        (LimitKind.SOFT_MAX, False, True),
        (LimitKind.HARD_MAX, True, True),
    ],
)
def test_limit_kind_properties(kind: LimitKind, is_hard: bool, is_max: bool) -> None:
    assert kind.is_hard is is_hard
    assert kind.is_max is is_max
