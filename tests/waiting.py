"""Wait for a state, never for a fixed time: the one polling loop of the tests."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

WAIT_S = 30.0
POLL_S = 0.01


def wait_until(
    predicate: Callable[[], bool],
    what: str,
    *,
    timeout_s: float = WAIT_S,
    step: Callable[[], object] | None = None,
    explain: Callable[[], object] | None = None,
) -> None:
    """Return once ``predicate()`` holds (``step`` runs before each look); fail naming ``what`` (and what
    ``explain`` gives) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if predicate():
            return
        time.sleep(POLL_S)
    detail = "" if explain is None else f"; {explain()}"
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}{detail}")
