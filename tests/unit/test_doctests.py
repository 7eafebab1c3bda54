"""The examples in the core's docstrings are run and must hold."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from smartpump import json_bounds, units
from smartpump.library import limits, model


@pytest.mark.parametrize("module", [units, limits, model, json_bounds], ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no docstring examples"
    assert result.failed == 0
