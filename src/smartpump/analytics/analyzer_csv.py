"""Read a flow-analyzer or balance export (CSV) into a FlowRecord, refusing anything else with a code.

Accepted: UTF-8 text, comma-separated, one header row naming exactly one time column and one
cumulative reading column (case-insensitive), then one row per sample. Lines starting with ``#``
are comments. Time columns: ``time_s`` or ``time_min`` (elapsed; a non-zero start is shifted to 0).
Reading columns: ``mass_g``, ``mass_mg`` (cumulative mass, converted with the stated density) or
``volume_ml`` (cumulative volume). The sample interval must be constant (within 2 %) and divide
30 s; the record must last at least 120 min; at most ``MAX_ROWS`` samples.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Final

from smartpump.analytics.flow_accuracy import (
    GRID_TOLERANCE,
    SAMPLE_INTERVAL_S,
    TEST_DURATION_S,
    BenchError,
    FlowRecord,
    check_samples,
)

TIME_COLUMNS: Final = {"time_s": 1.0, "time_min": 60.0}
MASS_COLUMNS: Final = {"mass_g": 1.0, "mass_mg": 0.001}
VOLUME_COLUMNS: Final = ("volume_ml",)
MAX_ROWS: Final = 200_000
MAX_BYTES: Final = 8_000_000


def _columns(header: Sequence[str]) -> tuple[str, str]:
    names = [h.strip().lower() for h in header]
    times = [n for n in names if n in TIME_COLUMNS]
    readings = [n for n in names if n in MASS_COLUMNS or n in VOLUME_COLUMNS]
    if len(names) != 2 or len(times) != 1 or len(readings) != 1:
        accepted_readings = ", ".join((*MASS_COLUMNS, *VOLUME_COLUMNS))
        raise BenchError(
            f"columns {', '.join(names) or '(none)'} are not accepted: need one time column "
            f"({', '.join(TIME_COLUMNS)}) and one cumulative reading ({accepted_readings})",
            code="bench.csv_columns",
        )
    return times[0], readings[0]


def _number(text: str, row: int, column: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise BenchError(f"row {row}: {column} {text!r} is not a number", code="bench.non_numeric") from None
    if not math.isfinite(value):
        raise BenchError(f"row {row}: {column} {text!r} is not finite", code="bench.non_numeric")
    return value


def read_analyzer_csv(text: str, *, density_g_per_ml: float) -> FlowRecord:
    """Parse an analyzer export into a record starting at t=0 (see the module docstring for the format)."""
    if len(text.encode()) > MAX_BYTES:
        raise BenchError(f"the file exceeds {MAX_BYTES} bytes", code="bench.too_large")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise BenchError("the file holds no header and no samples", code="bench.csv_empty")
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    time_name, reading_name = _columns(rows[0])
    header = [h.strip().lower() for h in rows[0]]
    time_at, reading_at = header.index(time_name), header.index(reading_name)
    body = rows[1:]
    if not body:
        raise BenchError("the file has a header but no samples", code="bench.csv_empty")
    if len(body) > MAX_ROWS:
        raise BenchError(f"{len(body)} samples exceed the {MAX_ROWS} accepted", code="bench.too_large")
    times: list[float] = []
    readings: list[float] = []
    for number, row in enumerate(body, start=2):
        if len(row) != 2:
            raise BenchError(f"row {number}: expected 2 fields, got {len(row)}", code="bench.csv_columns")
        times.append(_number(row[time_at], number, time_name) * TIME_COLUMNS[time_name])
        readings.append(_number(row[reading_at], number, reading_name))
    start = times[0]
    times = [t - start for t in times]
    check_samples(times, readings)
    interval = times[1]
    if abs(SAMPLE_INTERVAL_S / interval - round(SAMPLE_INTERVAL_S / interval)) > GRID_TOLERANCE:
        raise BenchError(
            f"the sample interval {interval:g} s does not divide {SAMPLE_INTERVAL_S:g} s",
            code="bench.bad_interval",
        )
    if times[-1] < TEST_DURATION_S - GRID_TOLERANCE * interval:
        raise BenchError(
            f"the record lasts {times[-1] / 60:g} min; the test needs {TEST_DURATION_S / 60:g} min",
            code="bench.too_short",
        )
    if reading_name in MASS_COLUMNS:
        grams = [r * MASS_COLUMNS[reading_name] for r in readings]
        return FlowRecord.from_mass(times, grams, density_g_per_ml=density_g_per_ml)
    return FlowRecord(times_s=tuple(times), cumulative_ml=tuple(readings))


def write_analyzer_csv(times_s: Sequence[float], mass_g: Sequence[float]) -> str:
    """The accepted format for a balance record (time_s, mass_g): what ``bench run --csv`` writes."""
    out = io.StringIO()
    out.write("time_s,mass_g\n")
    for t, m in zip(times_s, mass_g, strict=True):
        out.write(f"{t:g},{m:.6f}\n")
    return out.getvalue()
