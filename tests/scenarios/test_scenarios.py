"""Every scenario fixture passes through the CLI runner (regression tests and pharmacist tool)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from smartpump.cli import scenario as scenario_cli
from smartpump.library.formats import json_format
from smartpump.sim.scenario import ScenarioError, load_scenario, run_scenario

HERE = Path(__file__).resolve().parent
FIXTURES = sorted((HERE / "fixtures").glob("*.yaml"))


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test host."""

    scenario_cli.register(app)
    return app


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_passes(path: Path) -> None:
    scenario = load_scenario(path)
    library = path.parent / scenario.library if scenario.library else HERE / "library.json"
    result = run_scenario(scenario, json_format.read(library))
    assert result.failures == ()


def test_cli_prints_json_event_log_and_exits_zero() -> None:
    result = CliRunner().invoke(_app(), ["scenario", "run", str(FIXTURES[0]), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["passed"] is True
    seqs = [e["seq"] for e in document["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_cli_exits_one_when_an_expectation_fails(tmp_path: Path) -> None:
    text = (
        (HERE / "fixtures" / "dopamine_soft_override.yaml")
        .read_text()
        .replace("alert.overridden: 1", "alert.overridden: 2")
    )
    (tmp_path / "s.yaml").write_text(text)
    result = CliRunner().invoke(
        _app(), ["scenario", "run", str(tmp_path / "s.yaml"), "--library", str(HERE / "library.json")]
    )
    assert result.exit_code == 1
    assert "expected 2 x alert.overridden" in result.output


def test_malformed_scenario_exits_two_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: x\nsteps: 3\n")
    result = CliRunner().invoke(_app(), ["scenario", "run", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2


def test_unknown_action_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: x\nmodel: lvp-4\ncare_area: icu\nsteps:\n  - {action: fly}\n")
    with pytest.raises(ScenarioError):
        run_scenario(load_scenario(tmp_path / "s.yaml"), json_format.read(HERE / "library.json"))


def test_generated_dose_error_scenarios_all_pass_for_the_test_library(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    generated = CliRunner().invoke(
        _app(),
        [
            "scenario",
            "generate",
            "--library",
            str(HERE / "library.json"),
            "--care-area",
            "icu",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert generated.exit_code == 0, generated.output
    written = json.loads(generated.output)["written"]
    dose = [w for w in written if w["family"] == "dose"]
    assert len(dose) == 9  # dopamine and heparin on the ICU's large-volume pump, the PCA entry on a PCA pump
    assert {w["expected"] for w in dose} == {"ok", "soft", "hard"}
    models = {Path(w["file"]).stem: yaml.safe_load(Path(w["file"]).read_text())["model"] for w in written}
    assert {m for stem, m in models.items() if stem.startswith("icu-dopamine")} == {"lvp-4"}
    assert {m for stem, m in models.items() if stem.startswith("icu-morphine-pca")} == {"pca-1"}
    wrong_bags = [w for w in written if w["family"] == "concentration"]
    assert [w["expected"] for w in wrong_bags] == ["program.concentration_not_in_entry"] * 3
    ran = CliRunner().invoke(_app(), ["scenario", "run", str(out), "--json"])
    assert ran.exit_code == 0, ran.output
    document = json.loads(ran.output)
    assert document["passed"] is True and len(document["scenarios"]) == len(written) == 12


def test_generated_expectation_follows_the_limits_not_the_engine() -> None:
    from smartpump.sim.generate import expected_verdict

    library = json_format.read(HERE / "library.json")
    entry, area = library.entry("icu-dopamine"), library.care_area("icu")
    assert expected_verdict(entry, area, Decimal(20), Decimal(10)) == "ok"
    assert expected_verdict(entry, area, Decimal("20.01"), Decimal(10)) == "soft"
    assert expected_verdict(entry, area, Decimal("30.01"), Decimal(10)) == "hard"


def test_human_output_renders_decimals_and_nested_data_plainly() -> None:
    from smartpump.cli.scenario import plain

    assert plain(Decimal("30")) == "30"
    assert plain([{"limit": Decimal("2.50"), "unit": "mL"}]) == "[{limit: 2.5, unit: mL}]"
    result = CliRunner().invoke(
        _app(), ["scenario", "run", str(HERE / "fixtures" / "dopamine_soft_override.yaml")]
    )
    assert result.exit_code == 0
    assert "Decimal(" not in result.output


def test_a_scenario_sets_the_patients_parameters_and_the_running_dose_follows(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: weight corrected while dopamine runs\n"
        "model: lvp-4\n"
        "care_area: icu\n"
        "steps:\n"
        "  - {action: patient, weight_kg: 70}\n"
        '  - {action: program, entry: icu-dopamine, dose: 5, concentration: "400 mg/250 mL"}\n'
        "  - {action: confirm}\n"
        "  - {action: start}\n"
        "  - {action: patient, weight_kg: 25, expect_error: pump.override_required}\n"
        "  - {action: patient, weight_kg: 80}\n"
        "expect_events:\n"
        "  patient.parameters_changed: 2\n"
        "  rate.changed: 1\n"
    )
    result = run_scenario(load_scenario(tmp_path / "s.yaml"), json_format.read(HERE / "library.json"))
    assert result.failures == ()
    [changed] = [e for e in result.events if e.type.value == "rate.changed"]
    assert (changed.data["new_rate_ml_per_h"], changed.data["cause"]) == (Decimal(15), "patient_parameters")
