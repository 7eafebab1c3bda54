"""Shared CLI output: a failure is one line on stderr, however long, whatever the terminal width."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from smartpump.cli.output import fail


def test_a_long_failure_stays_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    path = "/tmp/" + "deep/" * 30 + "missing.json"
    app = typer.Typer()

    @app.command()
    def broken() -> None:
        fail(f"{path}: no such file or directory", code="library.unreadable")

    result = CliRunner().invoke(app, [])

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error [library.unreadable]: {path}: no such file or directory"]
