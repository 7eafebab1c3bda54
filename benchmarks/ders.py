"""DERS throughput and latency on one core over a realistic program mix (issue target: >= 100,000
checks/s and p99 <= 50 us), printed beside a naive float loop doing the same arithmetic without
validation, measured in the same run, and beside the figure recorded before the delivered-dose
check (the dose at the rounded rate, the volume that holds a total dose, device limits) was added.
Every check passes the pump model's device limits, as a pump does.

The mix follows drug-library-data.md section 7.2 (synthetic): every entry of the demo library,
patient weights inside the care area's soft range, doses drawn inside the soft window, 4.9 % soft
excursions (log-normal, median 1.15x) and 0.1 % ten-fold slips. Run: `.venv/bin/python benchmarks/ders.py`.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

from smartpump.ders.check import check
from smartpump.ders.program import DeviceLimits, InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.errors import ProgramError
from smartpump.library.formats import json_format
from smartpump.library.model import CareArea, DeliveryMode, DrugLibrary, Entry
from smartpump.pump.capabilities import PumpModel, capabilities

LIBRARY = Path(__file__).resolve().parents[1] / "examples" / "demo-library.json"
PROGRAMS = 200_000
LATENCY_SAMPLE = 50_000
TARGET_PER_S = 100_000
TARGET_P99_US = 50.0
SYRINGE_AREAS = frozenset({"NICU", "PEDIATRICS"})
SYRINGE_RESOLUTION = Decimal("0.01")
LVP_RESOLUTION = Decimal("0.1")
BEFORE_DELIVERED_CHECK = "104,000-111,000 checks/s, p99 about 12 us (commit 2a8ef47, quiet machine)"


def _device(model: PumpModel) -> DeviceLimits:
    caps = capabilities(model)
    return DeviceLimits(
        min_rate_ml_per_h=caps.min_rate_ml_per_h,
        max_rate_ml_per_h=caps.max_rate_ml_per_h,
        max_vtbi_ml=caps.max_vtbi_ml,
    )


DEVICES = {True: _device(PumpModel.SYRINGE), False: _device(PumpModel.LVP)}


def _dose_window(entry: Entry) -> tuple[float, float]:
    limits = entry.dose.limits
    low = limits.soft_min or limits.hard_min or (limits.soft_max or limits.hard_max or Decimal(1)) / 10
    high = limits.soft_max or limits.hard_max or low * 10
    return float(low), float(high)


def _program(rng: random.Random, entry: Entry, area: CareArea) -> InfusionProgram:
    low, high = _dose_window(entry)
    dose = rng.uniform(low, high)
    roll = rng.random()
    if roll < 0.001:
        dose *= 10
    elif roll < 0.05:
        dose *= rng.lognormvariate(math.log(1.15), 0.25)
    weight_limits = area.weight_kg.limits
    weight = rng.uniform(float(weight_limits.soft_min or 40), float(weight_limits.soft_max or 120))
    height = Decimal(rng.randint(150, 190)) if entry.needs_bsa else None
    patient = PatientParameters(weight_kg=Decimal(f"{weight:.1f}"), height_cm=height)
    resolution = SYRINGE_RESOLUTION if area.id in SYRINGE_AREAS else LVP_RESOLUTION
    dose_decimal = Decimal(f"{dose:.4g}")
    if entry.mode is DeliveryMode.PCA:
        return InfusionProgram(
            entry_id=entry.id,
            kind=ProgramKind.PCA,
            patient=patient,
            pca=PCAProgram(demand_dose=dose_decimal, lockout_min=Decimal(rng.choice([6, 8, 10]))),
            rate_resolution_ml_per_h=resolution,
        )
    kind = ProgramKind.INTERMITTENT if entry.mode is DeliveryMode.INTERMITTENT else ProgramKind.CONTINUOUS
    duration = Decimal(rng.choice([30, 60, 120])) if not entry.dosing_unit.is_rate else None
    return InfusionProgram(
        entry_id=entry.id,
        kind=kind,
        dose=dose_decimal,
        patient=patient,
        duration_min=duration,
        vtbi_ml=Decimal(rng.choice([10, 20, 50] if area.id in SYRINGE_AREAS else [50, 100, 250, 500])),
        rate_resolution_ml_per_h=resolution,
    )


def _mix(library: DrugLibrary, rng: random.Random) -> list[tuple[CareArea, InfusionProgram]]:
    entries = list(library.entries)
    mix: list[tuple[CareArea, InfusionProgram]] = []
    while len(mix) < PROGRAMS:
        entry = rng.choice(entries)
        area = library.care_area(entry.care_area_id)
        mix.append((area, _program(rng, entry, area)))
    return mix


def _naive(items: list[tuple[float, float, float, float, float]]) -> float:
    start = time.perf_counter()
    hits = 0
    for dose, weight, per_ml, soft_max, hard_max in items:
        rate = dose * weight * 60.0 / per_ml
        hits += (dose > hard_max) + (dose > soft_max) + (rate > 999.0)
    elapsed = time.perf_counter() - start
    return len(items) / elapsed if hits >= 0 else 0.0


def main() -> int:
    """Print checks/s, latency percentiles and the naive-float reference."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    library = json_format.read(LIBRARY)
    mix = _mix(library, random.Random(20261121))
    valid: list[tuple[CareArea, InfusionProgram, DeviceLimits]] = []
    for area, program in mix:
        device = DEVICES[area.id in SYRINGE_AREAS]
        try:
            check(library, area, program, device)
            valid.append((area, program, device))
        except ProgramError:
            continue
    levels: dict[str, int] = {}
    start = time.perf_counter()
    for area, program, device in valid:
        verdict = check(library, area, program, device)
        levels[verdict.level.value] = levels.get(verdict.level.value, 0) + 1
    elapsed = time.perf_counter() - start
    per_s = len(valid) / elapsed
    latencies_us: list[float] = []
    clock = time.perf_counter_ns
    for area, program, device in valid[:LATENCY_SAMPLE]:
        t0 = clock()
        check(library, area, program, device)
        latencies_us.append((clock() - t0) / 1000)
    latencies_us.sort()
    p50 = statistics.median(latencies_us)
    p99 = latencies_us[int(len(latencies_us) * 0.99)]
    naive_items = [
        (float(p.dose or 1), float(p.patient.weight_kg or 70), 1.6, 20.0, 30.0) for _, p, _ in valid
    ]
    naive_per_s = _naive(naive_items)
    print(f"programs checked: {len(valid):,} (refused as unevaluable: {len(mix) - len(valid):,})")
    print(f"verdicts: {levels}")
    print(
        f"DERS check(): {per_s:,.0f} checks/s on one core; p50 {p50:.1f} us, p99 {p99:.1f} us, "
        f"max {latencies_us[-1]:.1f} us"
    )
    print(f"reference (naive float dose->rate + 3 comparisons, no validation): {naive_per_s:,.0f} /s")
    print(f"exact DERS costs {naive_per_s / per_s:.1f}x the naive loop")
    print(f"before the delivered-dose check and device limits: {BEFORE_DELIVERED_CHECK}")
    met = per_s >= TARGET_PER_S and p99 <= TARGET_P99_US
    print(f"target >= {TARGET_PER_S:,}/s and p99 <= {TARGET_P99_US:.0f} us: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
