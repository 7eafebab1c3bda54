"""`smartpump library show|schema|export|import-csv` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import smartpump.cli.library_formats  # noqa: F401  (registers the commands on library_app)
from smartpump.cli.library import register
from smartpump.library.formats import csv_format, json_format, xlsx_format
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.model import Bounds, DeliveryMode
from tests.conftest import shared_file
from tests.factories import dose_limits, limit_set, make_entry, make_library

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "examples" / "demo-library.json"
SETTINGS = REPO / "examples" / "demo-care-areas.json"

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    local = typer.Typer()
    register(local)
    return local


def test_import_csv_reproduces_the_checked_in_demo_library(
    app: typer.Typer, example_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "demo.json"
    result = runner.invoke(
        app, ["library", "import-csv", str(example_csv), "--care-areas", str(SETTINGS), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == DEMO.read_bytes()
    assert "69 entries, 39 drugs, 7 care areas" in result.output


def test_import_csv_prints_one_summary_line_whatever_the_terminal_width_and_path_length(
    app: typer.Typer, example_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    deep.mkdir(parents=True)
    out = deep / "demo.json"
    result = runner.invoke(
        app, ["library", "import-csv", str(example_csv), "--care-areas", str(SETTINGS), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"wrote {out}: 69 entries, 39 drugs, 7 care areas"]


def test_readme_names_the_command_that_rebuilt_the_demo() -> None:
    readme = (REPO / "examples" / "README.md").read_text(encoding="utf-8")
    assert "smartpump library import-csv ../shared/data/example-drug-library.csv" in readme
    assert "--care-areas examples/demo-care-areas.json -o examples/demo-library.json" in readme


def test_import_csv_json_summary(app: typer.Typer, example_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "lib.json"
    result = runner.invoke(
        app,
        [
            "library",
            "import-csv",
            str(example_csv),
            "--hospital-id",
            "h9",
            "--name",
            "X",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["entries"], summary["drugs"], summary["care_areas"]) == (69, 39, 7)
    assert json_format.read(out).hospital_id == "h9"


def test_import_csv_lists_every_bad_row_and_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    good_row = "ICU,dopamine,400,mg,250,mcg/kg/min,1,20,,30,N,Y,src,false"
    bad.write_text(
        ",".join(csv_format.SHARED_COLUMNS)
        + "\n"
        + good_row.replace(",1,20,", ",5,2,")
        + "\n"
        + good_row.replace("mcg/kg/min", "furlongs")
        + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["library", "import-csv", str(bad), "--hospital-id", "h", "-o", str(tmp_path / "o.json")]
    )
    assert result.exit_code == 2
    assert "row 2: limits: soft_min 5 is above soft_max 2" in result.output
    assert "row 3: dosing_unit:" in result.output
    assert "error [library.csv]" in result.output
    assert not (tmp_path / "o.json").exists()


def test_import_csv_missing_file_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["library", "import-csv", str(tmp_path / "none.csv"), "-o", str(tmp_path / "o.json")]
    )
    assert result.exit_code == 2 and "cli.no_file" in result.output


def test_import_csv_missing_settings_file_exits_2(
    app: typer.Typer, example_csv: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "library",
            "import-csv",
            str(example_csv),
            "--care-areas",
            str(tmp_path / "x.json"),
            "-o",
            str(tmp_path / "o.json"),
        ],
    )
    assert result.exit_code == 2 and "cli.no_file" in result.output


def test_show_prints_table_and_counts(app: typer.Typer) -> None:
    result = runner.invoke(app, ["library", "show", str(DEMO)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "EXAMPLE DATA - NOT FOR CLINICAL USE" in result.output
    assert "DOPamine" in result.output and "mcg/kg/min" in result.output
    assert "69 entries, 39 drugs, 7 care areas" in result.output


def test_show_one_care_area_as_json(app: typer.Typer) -> None:
    result = runner.invoke(app, ["library", "show", str(DEMO), "--care-area", "PCA", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["entries"] == 3 and doc["pca_entries"] == 3
    morphine = doc["entry_list"][0]
    assert morphine["dosing_unit"] == "mg/dose"
    assert morphine["limits"] == {"soft_min": 0.1, "soft_max": 4, "hard_max": 5}


def test_show_unknown_care_area_exits_2(app: typer.Typer) -> None:
    result = runner.invoke(app, ["library", "show", str(DEMO), "--care-area", "MARS"])
    assert result.exit_code == 2 and "ADULT_ICU" in result.output


def test_show_invalid_library_lists_problems_and_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    doc = json.loads(DEMO.read_text(encoding="utf-8"))
    doc["entries"][0]["dose"]["unit"] = "mcg/fortnight"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    result = runner.invoke(app, ["library", "show", str(bad)])
    assert result.exit_code == 2
    assert "entries[0].dose.unit" in result.output and "library.schema" in result.output


def test_show_missing_file_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["library", "show", str(tmp_path / "none.json")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_schema_prints_the_json_schema(app: typer.Typer) -> None:
    result = runner.invoke(app, ["library", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_format.SCHEMA


def test_export_xlsx_then_show_it(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "demo.xlsx"
    result = runner.invoke(app, ["library", "export", str(DEMO), "--format", "xlsx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert xlsx_format.read(out) == json_format.read(DEMO)
    shown = runner.invoke(app, ["library", "show", str(out), "--json"])
    assert json.loads(shown.stdout)["entries"] == 69


def test_export_csv_lists_what_it_cannot_hold(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "demo.csv"
    result = runner.invoke(app, ["library", "export", str(DEMO), "--format", "csv", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["entries"] == 69 and "entry PCA.morphine: pca" in doc["not_held"]
    assert len(csv_format.loads(out.read_text(encoding="utf-8"), hospital_id="h").entries) == 69


def test_export_csv_plain_output(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["library", "export", str(DEMO), "--format", "csv", "-o", str(tmp_path / "d.csv")]
    )
    assert result.exit_code == 0
    assert "not in CSV: entry PCA.morphine: pca" in result.output and "wrote" in result.output


def test_export_unknown_format_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["library", "export", str(DEMO), "--format", "pdf", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 2


def test_export_to_unwritable_path_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["library", "export", str(DEMO), "--format", "xlsx", "-o", str(tmp_path / "no" / "dir" / "x.xlsx")],
    )
    assert result.exit_code == 2 and "cli.write" in result.output


@pytest.mark.parametrize("vendor", ["alaris", "baxter"])
def test_vendor_export_lists_every_value_that_does_not_come_back(
    app: typer.Typer, tmp_path: Path, vendor: str
) -> None:
    out = tmp_path / f"{vendor}.xlsx"
    result = runner.invoke(app, ["library", "export", str(DEMO), "--format", vendor, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    lost = [line for line in result.output.splitlines() if line.startswith("not carried: ")]
    # Alaris has a PCA Drugs sheet; the Sigma report has no place for a PCA entry
    pca_lost = any("Adult PCA / morphine / mg): the whole entry does not come back" in line for line in lost)
    assert lost and pca_lost is (vendor == "baxter")
    assert "values do not come back" in result.output
    pca_count = "pca 3 -> 0" if vendor == "baxter" else "pca 3 -> 3"
    assert "entries written -> re-imported: " in result.output and pca_count in result.output
    document = json.loads(
        runner.invoke(
            app, ["library", "export", str(DEMO), "--format", vendor, "-o", str(out), "--json"]
        ).stdout
    )
    assert len(document["not_held"]) == len(lost)
    assert document["entries_by_mode"]["pca"] == {"written": 3, "reimported": 0 if vendor == "baxter" else 3}


def test_strict_vendor_export_refuses_and_writes_nothing(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "alaris.xlsx"
    args = ["library", "export", str(DEMO), "--format", "alaris", "-o", str(out), "--strict"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "error [library.export_lossy]: the alaris layout cannot carry" in result.output
    assert not out.exists()


def test_a_library_the_layout_holds_whole_exports_equal_even_when_strict(
    app: typer.Typer, tmp_path: Path
) -> None:
    imported = tmp_path / "v14.json"
    json_format.write(
        read_baxter(shared_file("vendor-libraries", "baxter-sigma-library-v14.xlsx")).library, imported
    )
    out = tmp_path / "back.xlsx"
    args = ["library", "export", str(imported), "--format", "baxter", "-o", str(out), "--strict"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "re-imported: equal" in result.output
    assert "not carried" not in result.output


def test_vendor_export_of_a_value_the_layout_cannot_write_fails_with_its_code(
    app: typer.Typer, tmp_path: Path
) -> None:
    entry = make_entry(
        dose=dose_limits("mg", soft_max=2, hard_max=4),
        mode=DeliveryMode.INTERMITTENT,
        duration_min=Bounds(limits=limit_set(soft_min="2.5")),
    )
    source = tmp_path / "lib.json"
    json_format.write(make_library(entries=(entry,)), source)
    result = runner.invoke(
        app, ["library", "export", str(source), "--format", "alaris", "-o", str(tmp_path / "x.xlsx")]
    )
    assert result.exit_code == 2
    assert "error [library.export_duration]" in result.output
