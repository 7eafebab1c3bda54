"""`smartpump library import` on the real vendor exports: JSON report, library file, failures."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import smartpump.cli.library_import  # noqa: F401  (registers the command)
from smartpump.cli import app
from smartpump.library.formats import json_format
from tests.conftest import shared_file

runner = CliRunner()


def test_import_alaris_writes_library_and_prints_json_report(tmp_path: Path) -> None:
    source = shared_file("vendor-libraries", "alaris-guardrails-dataset-v66.xlsx")
    mapping = shared_file("vendor-libraries", "alaris-ehr-mapping.xlsx")
    out = tmp_path / "v66.json"
    result = runner.invoke(
        app, ["library", "import", str(source), "-o", str(out), "--mapping", str(mapping), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "alaris-xlsx"
    assert report["library"]["version"] == 66
    assert report["summary"]["ehr_mappings"] == 52
    library = json_format.read(out)
    assert library.name == "Conway2024v66is"
    assert len(library.ehr_mappings) == 52
    assert len(library.entries) == report["summary"]["entries"]


def test_import_baxter_detects_format_and_prints_tables() -> None:
    source = shared_file("vendor-libraries", "baxter-sigma-library-v14.xlsx")
    result = runner.invoke(app, ["library", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "baxter-xlsx" in result.stdout
    assert "FullList" in result.stdout


def test_missing_file_fails_with_reason(tmp_path: Path) -> None:
    result = runner.invoke(app, ["library", "import", str(tmp_path / "nope.xlsx")])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_unknown_format_fails_with_reason() -> None:
    source = shared_file("vendor-libraries", "alaris-ehr-mapping.xlsx")
    result = runner.invoke(app, ["library", "import", str(source), "--format", "pdf"])
    assert result.exit_code == 2
    assert "unknown format" in result.stderr


def test_mapping_file_alone_is_refused() -> None:
    source = shared_file("vendor-libraries", "alaris-ehr-mapping.xlsx")
    result = runner.invoke(app, ["library", "import", str(source)])
    assert result.exit_code == 2
    assert "--mapping" in result.stderr
