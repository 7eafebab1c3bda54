"""`smartpump bench run|import|report` through CliRunner: the twin, an analyzer file, the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartpump.cli import app

runner = CliRunner()


def balance_csv(path: Path, *, rate_ml_per_h: float, over_percent: float) -> Path:
    grams_per_s = 0.998 * rate_ml_per_h * (1 + over_percent / 100) / 3600
    path.write_text(
        "time_min,mass_g\n" + "".join(f"{i / 2:g},{i * 30 * grams_per_s:.6f}\n" for i in range(241)),
        encoding="utf-8",
    )
    return path


def test_run_writes_a_balance_record_that_import_reads_to_the_same_answer(tmp_path: Path) -> None:
    run = runner.invoke(
        app,
        [
            "bench",
            "run",
            "--model",
            "syringe-1",
            "--rate",
            "2",
            "--set",
            "10ml",
            "--csv",
            str(tmp_path / "r.csv"),
            "--out",
            str(tmp_path / "run.json"),
            "--json",
        ],
    )
    assert run.exit_code == 0, run.output
    twin = json.loads(run.output)
    assert twin["source"] == "twin" and len(twin["occlusion"]) == 2
    again = runner.invoke(
        app,
        [
            "bench",
            "import",
            str(tmp_path / "r.csv"),
            "--model",
            "syringe-1",
            "--rate",
            "2",
            "--set",
            "10ml",
            "--json",
        ],
    )
    assert again.exit_code == 0, again.output
    imported = json.loads(again.output)
    assert imported["report"]["trumpet"] == twin["report"]["trumpet"]
    assert imported["report"]["mean_error_percent"] == twin["report"]["mean_error_percent"]


def test_a_failing_pump_exits_one_and_a_passing_file_exits_zero(tmp_path: Path) -> None:
    worn = runner.invoke(app, ["bench", "run", "--model", "lvp-4", "--rate", "25", "--set", "worn-set"])
    assert worn.exit_code == 1 and "FAIL" in worn.output
    good = runner.invoke(
        app,
        [
            "bench",
            "import",
            str(balance_csv(tmp_path / "g.csv", rate_ml_per_h=25, over_percent=3)),
            "--model",
            "lvp-4",
            "--rate",
            "25",
        ],
    )
    assert good.exit_code == 0 and "A +3.00 %" in good.output and "PASS" in good.output


def test_report_writes_a_standalone_page_with_both_charts(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    assert (
        runner.invoke(app, ["bench", "run", "--model", "lvp-4", "--rate", "5", "--out", str(saved)]).exit_code
        == 0
    )
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["bench", "report", str(saved), "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and "Trumpet curve" in html and "<script" not in html


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["bench", "run", "--model", "nope", "--rate", "5"], "bench.unknown_model"),
        (["bench", "run", "--model", "lvp-4", "--rate", "5000"], "bench.rate_out_of_range"),
        (["bench", "import", "missing.csv", "--model", "lvp-4", "--rate", "5"], "bench.no_file"),
        (["bench", "report", "missing.json"], "bench.bad_result"),
    ],
)
def test_refusals_carry_their_code(args: list[str], code: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert f"error [{code}]" in result.output


def test_a_malformed_analyzer_file_is_refused_with_its_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,mass_g\n0,0\n30,0.1\n60,0.05\n90,0.2\n", encoding="utf-8")
    result = runner.invoke(app, ["bench", "import", str(bad), "--model", "lvp-4", "--rate", "5"])
    assert result.exit_code == 2 and "error [bench.too_short]" in result.output


def test_doses_reports_each_dose_and_the_first_one_short_by_the_slack() -> None:
    result = runner.invoke(
        app,
        ["bench", "doses", "--model", "pca-1", "--dose-ml", "1", "--rate", "60", "--doses", "4", "--json"],
    )
    payload = json.loads(result.output)
    assert len(payload["delivered_ml"]) == 4
    assert payload["errors_percent"][0] < -5 < payload["errors_percent"][1]
    assert result.exit_code == 1
