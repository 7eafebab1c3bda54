"""Shared CLI output: a failure is one line on stderr, however long, whatever the terminal width."""

from __future__ import annotations

import pytest
import typer
from rich.table import Table
from typer.testing import CliRunner

from smartpump.cli.output import PAGE_WIDTH, console, fail


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


def test_a_table_off_the_terminal_gets_the_fixed_page_not_the_terminal_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    cell = "x" * 100
    app = typer.Typer()

    @app.command()
    def show() -> None:
        table = Table("name", "value")
        table.add_row("wide", cell)
        console.print(table)

    result = CliRunner().invoke(app, [])

    assert result.exit_code == 0
    assert console.width == PAGE_WIDTH
    assert any(cell in line for line in result.stdout.splitlines())
