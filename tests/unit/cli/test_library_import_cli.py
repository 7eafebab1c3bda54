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


def test_import_csv_with_settings_reproduces_the_demo_library(tmp_path: Path) -> None:
    source = shared_file("example-drug-library.csv")
    settings = Path(__file__).resolve().parents[3] / "examples" / "demo-care-areas.json"
    out = tmp_path / "from-csv.json"
    result = runner.invoke(
        app, ["library", "import", str(source), "--settings", str(settings), "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "csv"
    assert report["summary"]["entries"] == 69
    demo = json_format.read(Path(__file__).resolve().parents[3] / "examples" / "demo-library.json")
    imported = json_format.read(out)
    assert imported.entries == demo.entries
    assert imported.care_areas == demo.care_areas


def test_import_csv_with_a_bad_row_fails_naming_the_row(tmp_path: Path) -> None:
    header = shared_file("example-drug-library.csv").read_text(encoding="utf-8").splitlines()[0]
    bad = tmp_path / "bad.csv"
    disordered = "ADULT_ICU,dopamine,400,mg,250,mcg/kg/min,20,5,,30,N,Y,src,false"
    bad.write_text(f"{header}\n{disordered}\n", encoding="utf-8")
    result = runner.invoke(app, ["library", "import", str(bad), "--format", "csv", "--hospital-id", "h"])
    assert result.exit_code == 2
    assert "row 2" in result.output or "row 2" in (result.stderr or "")


def test_import_report_lists_the_high_alert_drugs_it_flagged() -> None:
    source = shared_file("vendor-libraries", "baxter-sigma-library-v14.xlsx")
    result = runner.invoke(app, ["library", "import", str(source), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    flagged = {item["drug"]: item for item in report["high_alert"]}
    assert report["summary"]["high_alert_drugs"] == len(flagged)
    heparin = flagged["HEPARIN SODIUM"]
    assert heparin["action"] == "flagged"
    assert heparin["listings"][0]["id"] == "anticoagulants"
    assert any("confirm or clear" in note for note in report["notes"])


def test_csv_import_keeps_explicit_flags_and_reports_listed_drugs_not_flagged(tmp_path: Path) -> None:
    source = tmp_path / "library.csv"
    source.write_text(
        "care_area,drug,concentration_amount,concentration_unit,volume_ml,dosing_unit,"
        "soft_min,soft_max,hard_min,hard_max,bolus_allowed,high_alert,source,limits_are_estimate\n"
        "ICU,heparin,25000,units,250,units/kg/h,5,30,1,40,N,N,synthetic,false\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["library", "import", str(source), "--hospital-id", "h", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(i["drug"], i["action"]) for i in report["high_alert"]] == [("heparin", "kept_unflagged")]
    assert report["summary"]["high_alert_drugs"] == 0
