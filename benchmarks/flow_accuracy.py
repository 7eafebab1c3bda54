"""Trumpet-curve analysis cost: the telescoping pass (each window's mean flow from two cumulative
readings) beside the naive per-window loop (average the p interval flows of every window position),
measured in the same run on the same records, with their results checked equal.

Records: the standard 120-min test at 0.5-min samples (second-hour analysis, windows 2-31 min), and a
24-h record at 1-s samples analysed from minute 60 to the end (p = 120 to 1,860 samples per window).
Both come from the syringe-1 twin at 2 mL/h with noise. Run: `.venv/bin/python benchmarks/flow_accuracy.py`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from smartpump.analytics.flow_accuracy import FlowRecord, TrumpetPoint, trumpet, trumpet_naive
from smartpump.sim.flow_physics import BenchConditions, balance_record

RATE_ML_PER_H = 2.0


def record(duration_s: float, interval_s: float) -> FlowRecord:
    """A noisy syringe-pump balance record of the given length and resolution."""
    run = balance_record(
        "syringe-1",
        RATE_ML_PER_H,
        set_name="10ml",
        conditions=BenchConditions(seed=11),
        duration_s=duration_s,
        interval_s=interval_s,
    )
    return FlowRecord.from_mass(run.times_s, run.mass_g, density_g_per_ml=0.998)


def best_of(
    repeats: int, work: Callable[[], tuple[TrumpetPoint, ...]]
) -> tuple[float, tuple[TrumpetPoint, ...]]:
    """Median wall time (s) of ``repeats`` runs, and the result of the last."""
    times = []
    result: tuple[TrumpetPoint, ...] = ()
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def compare(name: str, data: FlowRecord, repeats_fast: int, repeats_naive: int) -> None:
    """Time both implementations on one record; print both figures and the speed-up."""
    fast_s, fast = best_of(repeats_fast, lambda: trumpet(data, RATE_ML_PER_H))
    naive_s, naive = best_of(repeats_naive, lambda: trumpet_naive(data, RATE_ML_PER_H))
    for a, b in zip(fast, naive, strict=True):
        assert (
            abs(a.ep_max_percent - b.ep_max_percent) < 1e-6
            and abs(a.ep_min_percent - b.ep_min_percent) < 1e-6
        )
    positions = sum(p.positions for p in fast)
    print(
        f"{name}: {len(data.times_s):,} samples, {positions:,} window positions | "
        f"telescoping {fast_s * 1000:.2f} ms | naive loop {naive_s * 1000:.2f} ms | x{naive_s / fast_s:.1f}"
    )


def main() -> None:
    """Print the figures for the 2-h and the 24-h record."""
    compare("120 min @ 0.5 min", record(7200.0, 30.0), repeats_fast=200, repeats_naive=50)
    compare("24 h @ 1 s", record(86400.0, 1.0), repeats_fast=5, repeats_naive=1)


if __name__ == "__main__":
    main()
