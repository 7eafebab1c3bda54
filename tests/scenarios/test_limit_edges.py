"""Limit-edge scenarios (issue 18): intermittent entries at their dose, duration and dose-rate limits and
custom concentrations at their concentration limits, for every care area of a library; each expects what
the limits call for, and the simulated pump agrees (the scenarios are run, not only written).

The libraries below are EXAMPLE DATA with synthetic limits, not clinical recommendations; the real BD
Alaris v66 export is read from ../shared/data (the test fails, never skips, when it is absent)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartpump.library.formats import json_format
from smartpump.library.model import CustomConcentration, DeliveryMode, DrugLibrary
from smartpump.sim.edges import limit_edges
from smartpump.sim.generate import Family, GeneratedScenario
from smartpump.sim.scenario import Scenario, run_scenario
from smartpump.units import AmountUnit
from tests import vendor_libraries
from tests.factories import bounds, concentration, dose_limits, limit_set, make_entry, make_library
from tests.scenarios.test_generate_cli import DEMO, _app, _generate

runner = CliRunner()


def edge_library() -> DrugLibrary:
    """Intermittent KCl (dose, duration and dose-rate limits), intermittent vancomycin with a custom
    concentration, and continuous dopamine with a custom concentration (limits chosen for the test)."""
    kcl = make_entry(
        id="icu-kcl",
        drug_id="dopamine",
        mode=DeliveryMode.INTERMITTENT,
        dose=dose_limits("mEq", soft_min=5, soft_max=20, hard_max=40),
        concentrations=(concentration("10 mEq/100 mL"),),
        duration_min=bounds(hard_min=30, soft_min=60, soft_max=240),
        dose_rate=dose_limits("mEq/h", soft_max=10, hard_max=20),
        rate_ml_per_h=bounds(),
    )
    vancomycin = make_entry(
        id="icu-vanco",
        drug_id="dopamine",
        therapy="vancomycin",
        mode=DeliveryMode.INTERMITTENT,
        dose=dose_limits("mg", soft_max=2000, hard_max=3000),
        concentrations=(),
        custom_concentration=CustomConcentration(
            unit=AmountUnit.MG,
            limits=limit_set(hard_min=1, soft_max=5, hard_max=10),
        ),
        duration_min=bounds(hard_min=60),
        rate_ml_per_h=bounds(),
    )
    dopamine = make_entry(
        custom_concentration=CustomConcentration(
            unit=AmountUnit.MG, limits=limit_set(soft_max=3, hard_max="6.4")
        ),
    )
    return make_library(entries=(kcl, vancomycin, dopamine))


def _run(scenario: GeneratedScenario, library: DrugLibrary) -> tuple[str, ...]:
    document = scenario.document
    played = Scenario(
        name=document["name"],
        model=document["model"],
        care_area=document["care_area"],
        steps=tuple(document["steps"]),
        expect_events=document["expect_events"],
        patient_id=document["patient_id"],
    )
    return run_scenario(played, library).failures


@pytest.fixture(scope="module")
def edges() -> list[GeneratedScenario]:
    scenarios, skipped = limit_edges(edge_library(), "icu", library_ref="library.json")
    assert skipped == []
    return scenarios


def test_every_bound_of_every_limited_parameter_gets_an_on_and_a_beyond_scenario(
    edges: list[GeneratedScenario],
) -> None:
    per_entry = Counter(
        (s.document["steps"][0]["entry"], s.note.split(" on its ")[0].split(" beyond its ")[0]) for s in edges
    )
    # KCl: dose 3 bounds, duration 3, dose rate 2 (x2 each); vancomycin: dose 2, duration 1, concentration 3;
    # dopamine: concentration 2.
    assert per_entry == {
        ("icu-kcl", "dose"): 6,
        ("icu-kcl", "duration"): 6,
        ("icu-kcl", "dose rate"): 4,
        ("icu-vanco", "dose"): 4,
        ("icu-vanco", "duration"): 2,
        ("icu-vanco", "concentration"): 6,
        ("icu-dopamine", "concentration"): 4,
    }
    assert {s.family for s in edges} == {Family.LIMITS}


def test_the_expected_verdicts_follow_the_limits(edges: list[GeneratedScenario]) -> None:
    expected = {s.document["name"].split(": expect")[0]: s.expected for s in edges}
    assert expected["icu-kcl: dose on its hard_max (40 mEq)"] == "soft"  # above the soft max, on the hard max
    assert expected["icu-kcl: dose beyond its hard_max (44 mEq)"] == "hard"
    assert expected["icu-kcl: duration beyond its hard_min (27 min)"] == "hard"
    # 10 mEq/h is inside; 11 mEq/h is above the soft max; 22 mEq/h above the hard max
    assert expected["icu-kcl: dose rate on its soft_max (10 mEq/h)"] == "ok"
    assert expected["icu-kcl: dose rate beyond its soft_max (11 mEq/h)"] == "soft"
    assert expected["icu-kcl: dose rate beyond its hard_max (22 mEq/h)"] == "hard"
    assert expected["icu-vanco: concentration beyond its hard_min (0.9 mg/mL)"] == "hard"
    assert expected["icu-dopamine: concentration beyond its hard_max (7.04 mg/mL)"] == "hard"


def test_the_simulated_pump_gives_every_expected_verdict(edges: list[GeneratedScenario]) -> None:
    library = edge_library()
    failed = {s.document["name"]: _run(s, library) for s in edges}
    assert {name: f for name, f in failed.items() if f} == {}


@pytest.fixture(scope="module")
def v66() -> DrugLibrary:
    return vendor_libraries.alaris(66).library


def test_every_care_area_of_the_real_alaris_v66_gets_limit_edges_the_pump_agrees_with(
    v66: DrugLibrary,
) -> None:
    made: dict[str, int] = {}
    for area in v66.care_areas:
        scenarios, _ = limit_edges(v66, area.id, library_ref="v66.json")
        made[area.id] = len(scenarios)
        sample = scenarios[:: max(1, len(scenarios) // 12)]
        failed = {s.document["name"]: _run(s, v66) for s in sample}
        assert {name: f for name, f in failed.items() if f} == {}, area.id
    assert all(count > 0 for count in made.values()), made


def test_cli_writes_limit_edges_and_they_all_pass(tmp_path: Path) -> None:
    library = tmp_path / "edges.json"
    json_format.write(edge_library(), library)
    out = tmp_path / "out"
    code, output = _generate(out, "--care-area", "icu", "--family", "limits", "--json", library=library)
    assert code == 0, output
    written = json.loads(output)["written"]
    assert len(written) == 32 and {w["family"] for w in written} == {"limits"}
    ran = runner.invoke(_app(), ["scenario", "run", str(out), "--json"])
    assert ran.exit_code == 0, ran.output


def test_a_library_without_intermittent_or_custom_concentration_entries_makes_none_and_exits_1(
    tmp_path: Path,
) -> None:
    code, output = _generate(tmp_path / "o", "--care-area", "ADULT_ICU", "--family", "limits", library=DEMO)
    assert code == 1
    assert "error [scenario.none_generated]" in output and "families: limits" in output
    assert not any((tmp_path / "o").glob("*.yaml"))
