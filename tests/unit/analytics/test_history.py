"""Synthetic history: reproducible from its seed, seq strictly increasing, labelled synthetic, consistent."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from smartpump.analytics.frames import is_synthetic_file, read_parquet, write_parquet
from smartpump.analytics.history import generate, generate_events
from smartpump.errors import SmartpumpError
from smartpump.library.model import DrugLibrary


def test_same_seed_same_history(demo_library: DrugLibrary) -> None:
    first = generate(demo_library, pumps=8, days=3, seed=11)
    assert first.equals(generate(demo_library, pumps=8, days=3, seed=11))
    assert not first.equals(generate(demo_library, pumps=8, days=3, seed=12))


def test_seq_strictly_increasing_and_time_ordered_per_pump(demo_library: DrugLibrary) -> None:
    frame = generate(demo_library, pumps=10, days=5, seed=3).sort("pump", "seq")
    steps = frame.select(
        (pl.col("seq").diff().over("pump") <= 0).any().alias("bad_seq"),
        (pl.col("ts").diff().over("pump").dt.total_microseconds() < 0).any().alias("bad_ts"),
    )
    assert steps.row(0) == (False, False)


def test_every_row_and_the_file_are_labelled_synthetic(demo_library: DrugLibrary, tmp_path: Path) -> None:
    frame = generate(demo_library, pumps=4, days=2, seed=1)
    assert frame["synthetic"].all()
    path = tmp_path / "h.parquet"
    write_parquet(frame, path, synthetic=True)
    assert is_synthetic_file(path) and read_parquet(path).height == frame.height


def test_verdicts_come_from_ders_check(demo_library: DrugLibrary) -> None:
    events = generate_events(demo_library, pumps=30, days=5, seed=5)
    checks = [e for e in events if e.type.value == "program.checked"]
    levels = {str(e.data["verdict"]) for e in checks}
    assert levels <= {"ok", "soft", "hard"} and "ok" in levels
    for e in checks:
        alerts = e.data["alerts"]
        assert isinstance(alerts, list)
        assert (e.data["verdict"] == "ok") == (not alerts)


def test_bad_counts_are_refused(demo_library: DrugLibrary) -> None:
    with pytest.raises(SmartpumpError) as error:
        generate(demo_library, pumps=0, days=1, seed=1)
    assert error.value.code == "analytics.bad_parameter"
