"""`smartpump sim history` and `smartpump cqi report|replay|suggest` end to end, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from smartpump.analytics import frames
from smartpump.cli import cqi
from smartpump.library.formats import json_format
from tests.factories import ENTRY_ID, dose_limits, make_entry, make_library
from tests.unit.analytics.conftest import DEMO
from tests.unit.analytics.test_suggest import UNIT, dopamine_history

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    cqi.register(app)
    return app


def test_history_then_report_replay_and_suggest(tmp_path: Path) -> None:
    app, history = _app(), tmp_path / "h.parquet"
    result = runner.invoke(
        app, ["sim", "history", "--library", str(DEMO), "-o", str(history), "--pumps", "40", "--days", "7"]
    )
    assert result.exit_code == 0, result.output
    html = tmp_path / "r.html"
    result = runner.invoke(
        app, ["cqi", "report", "--history", str(history), "--library", str(DEMO), "--out", str(html)]
    )
    assert result.exit_code == 0, result.output
    assert "DERS compliance" in html.read_text(encoding="utf-8")
    draft = tmp_path / "draft.json"
    args = [
        "cqi",
        "suggest",
        "--history",
        str(history),
        "--library",
        str(DEMO),
        "-o",
        str(draft),
        "--min-overrides",
        "1",
    ]
    assert runner.invoke(app, args).exit_code == 0
    args = [
        "cqi",
        "replay",
        "--history",
        str(history),
        "--current",
        str(DEMO),
        "--candidate",
        str(draft),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {"summary", "changes"} <= set(json.loads(result.stdout))


def test_report_refuses_an_unknown_output_type(tmp_path: Path) -> None:
    args = [
        "cqi",
        "report",
        "--history",
        str(tmp_path / "h.parquet"),
        "--library",
        str(DEMO),
        "--out",
        "r.pdf",
    ]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 2 and "cli.bad_output" in result.output


def test_missing_history_is_a_one_line_error(tmp_path: Path) -> None:
    args = [
        "cqi",
        "report",
        "--history",
        str(tmp_path / "none.parquet"),
        "--library",
        str(DEMO),
        "--out",
        "r.csv",
    ]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 2 and "analytics.no_file" in result.output


def _no_hard_max_case(tmp_path: Path) -> tuple[Path, Path]:
    """Dopamine without a dose hard max, overridden at 21-24 with a good catch at 28 (handmade events)."""
    library = make_library(
        entries=(make_entry(dose=dose_limits(UNIT, default=5, hard_min=1, soft_min=2, soft_max=20)),)
    )
    library_path, history_path = tmp_path / "lib.json", tmp_path / "h.parquet"
    json_format.write(library, library_path)
    frames.write_parquet(frames.from_dicts(dopamine_history(catch_dose="28")), history_path, synthetic=True)
    return library_path, history_path


def test_suggest_warns_in_the_table_and_in_json_when_the_entry_has_no_hard_max(tmp_path: Path) -> None:
    library_path, history_path = _no_hard_max_case(tmp_path)
    args = ["cqi", "suggest", "--history", str(history_path), "--library", str(library_path)]
    result = runner.invoke(_app(), [*args, "--min-overrides", "2"])
    assert result.exit_code == 0, result.output
    assert "NONE (propose 27)" in result.output
    assert f"WARNING {ENTRY_ID}: entry has no dose hard max" in result.output
    result = runner.invoke(_app(), [*args, "--min-overrides", "2", "--json"])
    (only,) = json.loads(result.stdout)
    assert (only["hard_max"], only["proposed"], only["proposed_hard_max"]) == (None, 24, 27)
    assert "leaves no hard stop" in only["warnings"][0]
