"""`smartpump config show|defaults` through Typer's CliRunner: valid and invalid documents, exit 2, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from smartpump.cli import config
from smartpump.pump.configuration import FORMAT, PumpConfiguration, content_sha256

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "demo-lvp-configuration.json"

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    local = typer.Typer()
    config.register(local)
    return local


def _document(**settings: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "hospital_id": "north",
        "model": "lvp-4",
        "version": 3,
        "name": "ICU LVP cap",
        "settings": settings,
    }


def _write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "configuration.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_show_prints_each_setting_beside_the_factory_value(app: typer.Typer, tmp_path: Path) -> None:
    path = _write(tmp_path, _document(max_rate_ml_per_h="99.9", require_verification=True))
    result = runner.invoke(app, ["config", "show", str(path)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 4}
    assert [cell.strip() for cell in rows["max_rate_ml_per_h"].split("│")[2:5]] == ["99.9", "mL/h", "none"]
    assert [cell.strip() for cell in rows["require_verification"].split("│")[2:5]] == ["yes", "", "no"]
    assert [cell.strip() for cell in rows["kvo_rate_ml_per_h"].split("│")[2:5]] == ["1", "mL/h", "1"]
    assert "ICU LVP cap — lvp-4 v3 (hospital north)" in result.stdout
    expected = content_sha256(
        PumpConfiguration.from_dict(_document(max_rate_ml_per_h="99.9", require_verification=True))
    )
    assert f"valid; content sha256 {expected}" in result.stdout


def test_show_json_reads_numbers_exactly_and_fills_in_the_factory_values(
    app: typer.Typer, tmp_path: Path
) -> None:
    path = tmp_path / "exact.json"
    document = _document(max_rate_ml_per_h="99.9", near_end_alert_min=10)
    path.write_text(json.dumps(document).replace('"99.9"', "99.9"), encoding="utf-8")
    assert '"max_rate_ml_per_h": 99.9,' in path.read_text(encoding="utf-8")
    result = runner.invoke(app, ["config", "show", str(path), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["settings"] == {
        "max_rate_ml_per_h": "99.9",
        "require_verification": False,
        "near_end_alert_min": 10,
        "kvo_rate_ml_per_h": "1",
        "set_change_interval_h": 96,
    }
    assert (shown["format"], shown["hospital_id"], shown["model"], shown["version"]) == (
        FORMAT,
        "north",
        "lvp-4",
        3,
    )
    printed = {key: value for key, value in shown.items() if key != "content_sha256"}
    assert shown["content_sha256"] == content_sha256(PumpConfiguration.from_dict(printed))


def test_an_invalid_document_exits_2_with_one_line_per_problem(app: typer.Typer, tmp_path: Path) -> None:
    document = _document(max_rate_ml_per_h="1000", near_end_alert_min=0, colour="red")
    del document["hospital_id"]
    path = _write(tmp_path, document)
    result = runner.invoke(app, ["config", "show", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[:4] == [
        "  hospital_id: required",
        "  settings.colour: unknown setting",
        "  settings.max_rate_ml_per_h: 1000 mL/h is above the lvp-4 maximum of 999 mL/h",
        "  settings.near_end_alert_min: must be within 1-30, got 0",
    ]
    assert "error [configuration.invalid]" in lines[4]
    assert "(4 problems)" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "code"),
    [("{", "configuration.unreadable"), (None, "cli.no_file"), ("[]", "configuration.invalid")],
)
def test_unreadable_input_exits_2_with_a_one_line_reason(
    app: typer.Typer, tmp_path: Path, content: str | None, code: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["config", "show", str(path), "--json"])
    assert result.exit_code == 2
    assert f"error [{code}]" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_the_checked_in_example_is_a_valid_configuration(app: typer.Typer) -> None:
    result = runner.invoke(app, ["config", "show", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["max_rate_ml_per_h"] == "500"


@pytest.mark.parametrize("model", ["lvp", "LVP", "lvp-4"])
def test_defaults_prints_the_factory_settings_as_json(app: typer.Typer, model: str) -> None:
    result = runner.invoke(app, ["config", "defaults", "--model", model])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "max_rate_ml_per_h": None,
        "require_verification": False,
        "near_end_alert_min": 5,
        "kvo_rate_ml_per_h": "1",
        "set_change_interval_h": 96,
    }


def test_defaults_json_names_the_model_and_version_0(app: typer.Typer) -> None:
    result = runner.invoke(app, ["config", "defaults", "--model", "syringe", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["model"], shown["version"], shown["settings"]["kvo_rate_ml_per_h"]) == (
        "syringe-1",
        0,
        "0.1",
    )


def test_defaults_settings_make_a_valid_document(app: typer.Typer, tmp_path: Path) -> None:
    printed = runner.invoke(app, ["config", "defaults", "--model", "pca"]).stdout
    document = {**_document(), "model": "pca-1", "settings": json.loads(printed)}
    result = runner.invoke(app, ["config", "show", str(_write(tmp_path, document))])
    assert result.exit_code == 0, result.output


def test_defaults_for_an_unknown_model_exits_2_naming_the_known_ones(app: typer.Typer) -> None:
    result = runner.invoke(app, ["config", "defaults", "--model", "lvp-9"])
    assert result.exit_code == 2
    assert "error [configuration.model]: unknown pump model 'lvp-9'" in result.stderr
    assert "lvp-4 (lvp)" in result.stderr
    assert result.stdout == ""
