"""The demo library (examples/demo-library.json, example data) for analytics tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartpump.library.formats.json_format import read
from smartpump.library.model import DrugLibrary

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"


@pytest.fixture(scope="session")
def demo_library() -> DrugLibrary:
    """The demo library; fails (never skips) when the file is absent."""
    if not DEMO.exists():
        pytest.fail(f"demo library missing: {DEMO}")
    return read(DEMO)
