"""Properties of LimitSet: refuses disorder, classifies every value, zones are monotone in the value."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from smartpump.errors import LimitOrderError
from smartpump.library.limits import LIMIT_ORDER, LimitSet, Zone

D = Decimal
ZONE_ORDER = [Zone.BELOW_HARD_MIN, Zone.BELOW_SOFT_MIN, Zone.WITHIN, Zone.ABOVE_SOFT_MAX, Zone.ABOVE_HARD_MAX]
VALUES = st.decimals(min_value=D(0), max_value=D(100000), places=4, allow_nan=False, allow_infinity=False)


@st.composite
def limit_sets(draw: st.DrawFn) -> LimitSet:
    values = sorted(draw(st.lists(VALUES, min_size=4, max_size=4)))
    present = draw(st.lists(st.booleans(), min_size=4, max_size=4))
    return LimitSet(**{k.value: v for k, v, keep in zip(LIMIT_ORDER, values, present, strict=True) if keep})


@given(limit_sets(), VALUES)
def test_classify_is_total_and_agrees_with_zone(limits: LimitSet, value: Decimal) -> None:
    breach = limits.classify(value)
    zone = limits.zone(value)
    if breach is None:
        assert zone is Zone.WITHIN
    else:
        assert zone is breach.zone
        assert breach.limit == limits.get(breach.kind)
        assert (value > breach.limit) if breach.kind.is_max else (value < breach.limit)
        assert breach.factor is None or breach.factor >= 1


@given(limit_sets(), st.lists(VALUES, min_size=2, max_size=30))
def test_zones_never_go_back_as_the_value_increases(limits: LimitSet, values: list[Decimal]) -> None:
    ranks = [ZONE_ORDER.index(limits.zone(v)) for v in sorted(values)]
    assert ranks == sorted(ranks)


@given(limit_sets())
def test_every_bound_value_is_inside_its_own_bound(limits: LimitSet) -> None:
    for kind, bound in limits.items():
        breach = limits.classify(bound)
        assert breach is None or breach.kind is not kind
        assert breach is None or breach.limit != bound


@given(limit_sets())
def test_bound_values_within_the_soft_range_are_within(limits: LimitSet) -> None:
    for _, bound in limits.items():
        low = limits.soft_min if limits.soft_min is not None else limits.hard_min
        high = limits.soft_max if limits.soft_max is not None else limits.hard_max
        if (low is None or bound >= low) and (high is None or bound <= high):
            assert limits.zone(bound) is Zone.WITHIN


@given(st.lists(VALUES, min_size=4, max_size=4, unique=True))
def test_any_disordered_set_of_bounds_is_refused(values: list[Decimal]) -> None:
    assume(values != sorted(values))
    with pytest.raises(LimitOrderError):
        LimitSet(**{k.value: v for k, v in zip(LIMIT_ORDER, values, strict=True)})
