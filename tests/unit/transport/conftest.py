"""Fixtures for transport tests: a virtual clock and a de-duplicating server store."""

from __future__ import annotations

import pytest

from smartpump.clock import ManualClock
from tests.unit.transport.helpers import Store


@pytest.fixture
def clock() -> ManualClock:
    """A virtual clock at the project epoch."""
    return ManualClock()


@pytest.fixture
def store() -> Store:
    """An empty de-duplicating server store."""
    return Store()
