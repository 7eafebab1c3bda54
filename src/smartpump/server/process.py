"""Process-wide tuning of a long-running server (called by `smartpump serve` and `smartpump demo` just before
they start serving, never by the app itself, so tests and embedders keep their own interpreter settings).

Ingest builds and drops a few objects per event, tens of thousands of events a second: with CPython's
default collector thresholds a young-generation collection runs every 700 allocations and an older one
walks every live object of the server (caches, 10,000 pumps' references), which cost about a quarter of
ingest throughput in `benchmarks/ingest.py`. Objects alive at startup are moved out of the collector's
sight (`gc.freeze`) and young collections run every ``GC_GEN0_THRESHOLD`` allocations instead.
"""

from __future__ import annotations

import gc
from typing import Final

GC_GEN0_THRESHOLD: Final = 20_000
GC_GEN1_THRESHOLD: Final = 50
GC_GEN2_THRESHOLD: Final = 100


def tune_garbage_collector() -> None:
    """Collect once, freeze what survives (startup objects), and make collections rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, GC_GEN2_THRESHOLD)
