"""`smartpump scenario generate` for every care area of the demo library (PCA included), by family, and
a non-zero exit with the reason whenever nothing can be generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from smartpump.cli import scenario as scenario_cli
from smartpump.library.formats import json_format
from tests.factories import make_care_area, make_entry, make_library

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-library.json"
runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    scenario_cli.register(app)
    return app


def _generate(out: Path, *args: str, library: Path = DEMO) -> tuple[int, str]:
    result = runner.invoke(_app(), ["scenario", "generate", "-l", str(library), "-o", str(out), *args])
    return result.exit_code, result.output


def test_pca_gets_dose_look_alike_and_concentration_scenarios_that_all_pass(tmp_path: Path) -> None:
    code, output = _generate(tmp_path, "--care-area", "PCA", "--json")
    assert code == 0, output
    written = json.loads(output)["written"]
    families = [w["family"] for w in written]
    assert (families.count("dose"), families.count("look-alike"), families.count("concentration")) == (
        9,
        2,
        3,
    )
    assert any("NOT CAUGHT" in w["note"] for w in written)
    ran = runner.invoke(_app(), ["scenario", "run", str(tmp_path), "--json"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["passed"] is True


@pytest.mark.parametrize(
    "care_area", ["ADULT_ICU", "ADULT_MEDSURG", "PEDIATRICS", "NICU", "ONCOLOGY", "OR_ANESTHESIA"]
)
def test_every_demo_care_area_gets_scenarios(tmp_path: Path, care_area: str) -> None:
    code, output = _generate(tmp_path, "--care-area", care_area, "--family", "concentration")
    assert code == 0, output
    assert "concentration) written to" in output


def test_plain_output_names_the_mixup_the_library_misses(tmp_path: Path) -> None:
    code, output = _generate(tmp_path, "--care-area", "ADULT_ICU", "--family", "look-alike")
    assert code == 0, output
    assert "meant DOPamine, picked DOBUTamine at DOPamine's usual dose: NOT CAUGHT by the library" in output
    assert "6 scenarios (6 look-alike) written to" in output


def test_nothing_generated_exits_1_with_the_reason(tmp_path: Path) -> None:
    code, output = _generate(tmp_path / "o", "--care-area", "ONCOLOGY", "--family", "look-alike")
    assert code == 1
    assert (
        "error [scenario.none_generated]: no scenario could be generated for care area 'ONCOLOGY'" in output
    )
    assert "written to" not in output


def test_entries_without_a_fixed_concentration_make_nothing_and_exit_1(tmp_path: Path) -> None:
    library = make_library(care_areas=(make_care_area(),), entries=(make_entry(concentrations=()),))
    path = tmp_path / "lib.json"
    json_format.write(library, path)
    code, output = _generate(tmp_path / "o", "--care-area", "icu", "--json", library=path)
    assert code == 1
    document = json.loads(output[output.index("{") :])
    assert document["written"] == []
    assert "dose: icu-dopamine: no fixed concentration" in document["skipped"]
    assert "scenario.none_generated" in output


@pytest.mark.parametrize(
    ("args", "code_text"),
    [
        (["--care-area", "MOON"], "library.no_care_area"),
        (["--care-area", "PCA", "--family", "typo"], "Invalid value"),
    ],
)
def test_bad_input_is_refused(tmp_path: Path, args: list[str], code_text: str) -> None:
    code, output = _generate(tmp_path, *args)
    assert code == 2
    assert code_text in output
