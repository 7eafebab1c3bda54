"""What-if replay of 10M historical programs against a candidate library (target <= 2 s).

Printed beside, in the same run: a per-event ``ders.check`` loop over a 20k sample (scaled to 10M)
and a raw columnar scan (sum of one column) of the same frame. Data are synthetic.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import polars as pl

from smartpump.analytics.frames import SCALE_DIGITS
from smartpump.analytics.replay import replay
from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram, PatientParameters
from smartpump.errors import SmartpumpError
from smartpump.library.formats.json_format import read
from smartpump.library.model import DeliveryMode, DrugLibrary, Entry

N = 10_000_000
SAMPLE = 20_000
TARGET_S = 2.0
LIBRARY = Path(__file__).resolve().parents[1] / "examples" / "demo-library.json"


def _entries(library: DrugLibrary) -> list[Entry]:
    return [
        e
        for e in library.entries
        if e.mode is DeliveryMode.CONTINUOUS
        and e.concentrations
        and e.dose.unit.is_rate
        and e.dose.limits.soft_max
    ]


def _candidate(library: DrugLibrary) -> DrugLibrary:
    """Every soft max raised by 10 % where it stays within the hard max (a typical committee change)."""
    entries = []
    for e in library.entries:
        limits = e.dose.limits
        if limits.soft_max is not None:
            raised = (limits.soft_max * Decimal("1.1")).quantize(Decimal("0.0001"))
            if limits.hard_max is None or raised <= limits.hard_max:
                limits = replace(limits, soft_max=raised)
        entries.append(replace(e, dose=replace(e.dose, limits=limits)))
    return replace(library, version=library.version + 1, entries=tuple(entries))


def _frame(entries: list[Entry]) -> pl.DataFrame:
    """10M program rows built columnar: entry, dose around its soft max, weight 70 kg, rate 10 mL/h."""
    ids = [e.id for e in entries]
    areas = sorted({e.care_area_id for e in entries})
    units = sorted({str(e.dose.unit) for e in entries})
    pick = (pl.int_range(0, N, eager=True).hash(1) % len(entries)).cast(pl.UInt32)
    area_of = pl.Series([areas.index(e.care_area_id) for e in entries], dtype=pl.UInt32).gather(pick)
    unit_of = pl.Series([units.index(str(e.dose.unit)) for e in entries], dtype=pl.UInt32).gather(pick)
    soft_max = pl.Series([int(e.dose.limits.soft_max or 1) for e in entries], dtype=pl.Int64).gather(pick)
    scale = 2 * 10**SCALE_DIGITS
    spread = (pl.int_range(0, N, eager=True).hash(2) % 1500).cast(pl.Int64)
    return pl.DataFrame(
        {
            "pump": pl.Series(
                [f"P{i}" for i in range(10_000)], dtype=pl.Enum([f"P{i}" for i in range(10_000)])
            ).gather((pl.int_range(0, N, eager=True) % 10_000).cast(pl.UInt32)),
            "seq": pl.int_range(0, N, eager=True),
            "care_area": pl.Series(areas, dtype=pl.Enum(areas)).gather(area_of),
            "entry_id": pl.Series(ids, dtype=pl.Enum(ids)).gather(pick),
            "kind": pl.Series(["continuous"], dtype=pl.Enum(["basic", "continuous", "intermittent"])).gather(
                pl.zeros(N, pl.UInt32, eager=True)
            ),
            "dose_unit": pl.Series(units, dtype=pl.Enum(units)).gather(unit_of),
            "dose_x": soft_max * scale * spread // 1000,
            "dose_programmed_x": pl.repeat(None, N, dtype=pl.Int64, eager=True),
            "rate_ml_per_h_x": pl.repeat(10 * scale, N, eager=True),
            "vtbi_ml_x": pl.repeat(None, N, dtype=pl.Int64, eager=True),
            "weight_kg_x": pl.repeat(70 * scale, N, eager=True),
            "bsa_m2_x": pl.repeat(None, N, dtype=pl.Int64, eager=True),
            "duration_min_x": pl.repeat(None, N, dtype=pl.Int64, eager=True),
            "alert_rules": pl.repeat([], N, dtype=pl.List(pl.String), eager=True),
            "rate_ml_per_h": pl.repeat("10", N, eager=True),
            "concentration": pl.repeat(None, N, dtype=pl.String, eager=True),
            "weight_kg": pl.repeat("70", N, eager=True),
            "bsa_m2": pl.repeat(None, N, dtype=pl.String, eager=True),
        }
    )


def _loop(library: DrugLibrary, candidate: DrugLibrary, entries: list[Entry]) -> float:
    rng = random.Random(1)
    programs = []
    for _ in range(SAMPLE):
        e = rng.choice(entries)
        dose = (e.dose.limits.soft_max or Decimal(1)) * Decimal(rng.randrange(1500)) / 1000
        programs.append(
            (
                library.care_area(e.care_area_id),
                InfusionProgram(entry_id=e.id, dose=dose, patient=PatientParameters(weight_kg=Decimal(70))),
            )
        )
    start = time.perf_counter()
    for area, program in programs:
        for lib in (library, candidate):
            try:
                check(lib, area, program)
            except SmartpumpError:
                continue
    return (time.perf_counter() - start) * N / SAMPLE


def main() -> int:
    """Print the three timings and whether the target is met; exit 1 when it is not."""
    library = read(LIBRARY)
    candidate = _candidate(library)
    entries = _entries(library)
    t0 = time.perf_counter()
    frame = _frame(entries)
    print(f"built {frame.height:,} synthetic program rows in {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    total = frame.select(pl.col("dose_x").sum()).item()
    scan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = replay(frame, library, candidate, with_programs=False)
    replay_s = time.perf_counter() - t0
    loop_s = _loop(library, candidate, entries)
    changed = int(result.summary["verdict_changes"].sum())
    print(f"raw columnar scan (sum of dose_x, {total % 1000}):    {scan_s:8.3f} s")
    print(f"vectorised replay, current + candidate:        {replay_s:8.3f} s  ({changed:,} verdicts change)")
    print(f"per-event ders.check loop ({SAMPLE:,} sample x {N // SAMPLE}): {loop_s:8.1f} s (scaled)")
    met = replay_s <= TARGET_S
    print(
        f"target <= {TARGET_S} s for {N:,} programs: {'met' if met else 'NOT met'};",
        f"speed-up over the loop {loop_s / replay_s:.0f}x",
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
