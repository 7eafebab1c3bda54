"""Data files shipped inside the package, so an installed ``smartpump`` needs no repository checkout.

``demo-library.json`` is a byte-for-byte copy of ``examples/demo-library.json`` (example data, not for
clinical use); ``tests/unit/test_package.py`` fails when the two differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["DATA_DIR", "DEMO_LIBRARY"]

DATA_DIR: Final = Path(__file__).resolve().parent
DEMO_LIBRARY: Final = DATA_DIR / "demo-library.json"
