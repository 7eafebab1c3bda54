"""Analyzer and balance exports: the accepted columns, and every malformed file refused with its code."""

from __future__ import annotations

import pytest

from smartpump.analytics.analyzer_csv import read_analyzer_csv, write_analyzer_csv
from smartpump.analytics.flow_accuracy import BenchError, mean_error_percent

DENSITY = 0.998


def balance(
    rows: int = 241, *, step_s: float = 30.0, grams_per_s: float = 0.998 * 10 / 3600
) -> list[tuple[float, float]]:
    return [(i * step_s, i * step_s * grams_per_s) for i in range(rows)]


def csv_text(header: str, rows: list[tuple[float, float]]) -> str:
    return header + "\n" + "".join(f"{a:g},{b:.7f}\n" for a, b in rows)


def test_a_balance_export_in_grams_reads_back_to_volume_with_the_stated_density() -> None:
    record = read_analyzer_csv(
        "# balance XS205, water 21 C\n" + csv_text("Time_s, Mass_g", balance()), density_g_per_ml=DENSITY
    )
    assert len(record.times_s) == 241 and record.interval_s == 30.0
    assert record.cumulative_ml[-1] == pytest.approx(20.0, rel=1e-6)
    assert mean_error_percent(record, 10.0) == pytest.approx(0.0, abs=1e-3)


def test_minutes_milligrams_and_volumes_are_accepted_and_a_late_start_is_shifted_to_zero() -> None:
    minutes = "\n".join(["mass_mg,time_min"] + [f"{i * 998 * 10 / 120},{30 + i * 0.5}" for i in range(241)])
    record = read_analyzer_csv(minutes, density_g_per_ml=DENSITY)
    assert record.times_s[0] == 0 and record.times_s[-1] == 7200
    assert record.cumulative_ml[-1] == pytest.approx(20.0)
    volume = read_analyzer_csv(
        csv_text("time_s,volume_ml", balance(grams_per_s=1 / 360)), density_g_per_ml=1.5
    )
    assert volume.cumulative_ml[-1] == pytest.approx(20.0)


def test_what_bench_run_writes_is_what_import_reads() -> None:
    rows = balance()
    text = write_analyzer_csv([t for t, _ in rows], [m for _, m in rows])
    assert text.startswith("time_s,mass_g\n")
    assert read_analyzer_csv(text, density_g_per_ml=DENSITY).cumulative_ml[-1] == pytest.approx(
        20.0, rel=1e-6
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "bench.csv_empty"),
        ("# only a comment\n\n", "bench.csv_empty"),
        ("time_s,mass_g\n", "bench.csv_empty"),
        (csv_text("time,weight", balance()), "bench.csv_columns"),
        (csv_text("time_s,mass_g,temperature", balance()), "bench.csv_columns"),
        (csv_text("time_s,time_min", balance()), "bench.csv_columns"),
        ("time_s,mass_g\n0,0\n30\n", "bench.csv_columns"),
        ("time_s,mass_g\n0,0\n30,abc\n", "bench.non_numeric"),
        ("time_s,mass_g\n0,0\n30,0.1\n60,inf\n", "bench.non_numeric"),
        ("time_s,mass_g\n0,0\n30,0,1\n", "bench.csv_columns"),
        (csv_text("time_s,mass_g", [(0, 0), (30, 1), (20, 2)]), "bench.time_not_increasing"),
        (csv_text("time_s,mass_g", balance()[:100] + balance()[101:]), "bench.gap"),
        (csv_text("time_s,mass_g", balance(120)), "bench.too_short"),
        (csv_text("time_s,mass_g", balance(2 * 7200 // 45 + 1, step_s=45)), "bench.bad_interval"),
    ],
)
def test_malformed_files_are_refused_with_a_specific_code(text: str, code: str) -> None:
    with pytest.raises(BenchError) as refused:
        read_analyzer_csv(text, density_g_per_ml=DENSITY)
    assert refused.value.code == code
    assert refused.value.message


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(BenchError) as refused:
        read_analyzer_csv("time_s,mass_g\n" + "0,0\n" * 2_100_000, density_g_per_ml=DENSITY)
    assert refused.value.code == "bench.too_large"
