"""Fleet simulation speed on one core (issue target: 10,000 pump-days in <= 60 s), printed beside a
fixed-step reference that does the same work but wakes every pump every 1 s, measured in the same run.

The workload is ``sim.workload.HospitalWorkload`` on the demo library (drug-library-data.md section
7.2 rates): by default 500 pumps x 20 days. The fixed-step loop is far too slow for the full run, so
it plays a slice (the first ``--slice-pumps`` pumps of the same fleet, same seed, hence the same
pumps and programs, for ``--slice-days``) and is scaled linearly to 10,000 pump-days: its cost is one
``Pump.sync`` per pump per simulated second plus the same actions, so it grows in proportion to
pump-days. The event-driven run of the same slice is timed too, so the ratio is like for like.
Run: `.venv/bin/python benchmarks/fleet_sim.py` (add `--help` for the sizes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary
from smartpump.sim.environment import Environment
from smartpump.sim.fleet import Fleet, Stepping
from smartpump.sim.workload import DAY_S, HospitalWorkload

LIBRARY = Path(__file__).resolve().parents[1] / "examples" / "demo-library.json"
TARGET_PUMP_DAYS = 10_000
TARGET_S = 60.0


@dataclass(frozen=True, slots=True)
class Run:
    """One timed simulation: its size, wall seconds, events and pump wake-ups."""

    pumps: int
    days: float
    seconds: float
    events: int
    wakes: int
    infusions: int

    @property
    def pump_days(self) -> float:
        """Pumps times simulated days."""
        return self.pumps * self.days


def simulate(library: DrugLibrary, pumps: int, days: float, seed: int, stepping: Stepping) -> Run:
    """Build the fleet and workload, then time ``Environment.run`` over ``days`` of virtual time."""
    env = Environment()
    fleet = Fleet(env, library, stepping=stepping)
    workload = HospitalWorkload(fleet, pumps=pumps, seed=seed)
    workload.start()
    began = time.perf_counter()
    env.run(days * DAY_S)
    elapsed = time.perf_counter() - began
    return Run(
        pumps=pumps,
        days=days,
        seconds=elapsed,
        events=sum(fleet.counts.values()),
        wakes=fleet.wakes,
        infusions=workload.stats.infusions,
    )


def main() -> int:
    """Run both measurements and print them; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pumps", type=int, default=500)
    parser.add_argument("--days", type=float, default=20.0)
    parser.add_argument("--slice-pumps", type=int, default=14)
    parser.add_argument("--slice-days", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--cpu", type=int, default=0, help="the core to pin to")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    library = json_format.read(LIBRARY)

    full = simulate(library, args.pumps, args.days, args.seed, Stepping.EVENT_DRIVEN)
    slice_event = simulate(library, args.slice_pumps, args.slice_days, args.seed, Stepping.EVENT_DRIVEN)
    slice_fixed = simulate(library, args.slice_pumps, args.slice_days, args.seed, Stepping.FIXED_STEP)

    scale = TARGET_PUMP_DAYS / full.pump_days
    projected = full.seconds * scale
    fixed_scale = TARGET_PUMP_DAYS / slice_fixed.pump_days
    fixed_projected = slice_fixed.seconds * fixed_scale
    met = projected <= TARGET_S
    print(f"pinned to CPU {args.cpu}; library {library.name} v{library.version}; seed {args.seed}")
    print(
        f"event-driven : {full.pumps} pumps x {full.days:g} days = {full.pump_days:,.0f} pump-days in "
        f"{full.seconds:.1f} s ({full.pump_days / full.seconds:,.0f} pump-days/s, {full.events:,} events, "
        f"{full.infusions:,} infusions, {full.wakes:,} wake-ups)"
    )
    if scale != 1:
        print(f"               scaled x{scale:g} to {TARGET_PUMP_DAYS:,} pump-days: {projected:.1f} s")
    print(
        f"fixed-step 1 s (reference): slice {slice_fixed.pumps} pumps x {slice_fixed.days:g} days = "
        f"{slice_fixed.pump_days:g} pump-days in {slice_fixed.seconds:.1f} s ({slice_fixed.events:,} events, "
        f"{slice_fixed.wakes:,} wake-ups); scaled linearly x{fixed_scale:,.1f} to "
        f"{TARGET_PUMP_DAYS:,} pump-days: {fixed_projected:,.0f} s"
    )
    print(
        f"same slice event-driven: {slice_event.seconds:.2f} s ({slice_event.events:,} events, "
        f"{slice_event.wakes:,} wake-ups); fixed-step / event-driven = "
        f"{slice_fixed.seconds / slice_event.seconds:,.0f}x"
    )
    print(
        f"target {TARGET_PUMP_DAYS:,} pump-days <= {TARGET_S:g} s on one core: "
        f"{'MET' if met else 'NOT MET'} ({projected:.1f} s)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
