"""`smartpump sim history` and `smartpump cqi report|replay|suggest` end to end, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from smartpump.cli import cqi
from tests.unit.analytics.conftest import DEMO

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
