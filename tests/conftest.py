"""Shared test fixtures: paths to the read-only shared data, Hypothesis profiles.

Profiles: ``default`` locally, ``ci`` under ``CI=true``, and ``deep`` (ten times the examples) when
``SMARTPUMP_HYPOTHESIS_PROFILE=deep``, which ``make slow`` sets for the property suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

settings.register_profile("default", deadline=None, max_examples=200)
settings.register_profile("ci", deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("SMARTPUMP_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "default")
)


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data; fails (never skips) with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared data file missing: {path} (tests read ../shared/data, never a copy)")
    return path


@pytest.fixture
def example_csv() -> Path:
    """The example drug library CSV (example data, not for clinical use)."""
    return shared_file("example-drug-library.csv")


from tests.hl7_outbound import every_outbound_hl7_message_validates  # noqa: E402, F401 (autouse fixture)
