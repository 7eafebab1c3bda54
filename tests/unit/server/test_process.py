"""The server process's collector tuning: startup objects frozen, young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from smartpump.server.process import (
    GC_GEN0_THRESHOLD,
    GC_GEN1_THRESHOLD,
    GC_GEN2_THRESHOLD,
    tune_garbage_collector,
)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_freezes_what_lives_and_raises_the_young_threshold() -> None:
    survivor = [object()]
    assert any(o is survivor for o in gc.get_objects())

    tune_garbage_collector()

    assert not any(o is survivor for o in gc.get_objects())
    assert gc.get_threshold() == (GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, GC_GEN2_THRESHOLD)
    fresh = [object()]
    assert any(o is fresh for o in gc.get_objects())
