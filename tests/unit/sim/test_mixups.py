"""Drug mix-up scenarios: look-alike/sound-alike picks and ten-times-stronger bags, for every care area
of the demo library (PCA included), each played on the simulated pump and passing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from smartpump.library.formats import json_format
from smartpump.library.formats.confused_names_table import confused_names_table
from smartpump.library.model import CustomConcentration, DrugLibrary
from smartpump.sim.generate import Family, GeneratedScenario, generate
from smartpump.sim.mixups import look_alike, wrong_concentration
from smartpump.sim.scenario import Scenario, run_scenario
from smartpump.units import AmountUnit
from tests.factories import concentration, limit_set, make_care_area, make_entry, make_library

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"


@pytest.fixture(scope="module")
def demo() -> DrugLibrary:
    return json_format.read(DEMO)


def _play(scenario: GeneratedScenario, library: DrugLibrary) -> tuple[str, ...]:
    document = scenario.document
    return run_scenario(
        Scenario(
            name=document["name"],
            model=document["model"],
            care_area=document["care_area"],
            steps=tuple(document["steps"]),
            expect_events=document["expect_events"],
            patient_id=document["patient_id"],
        ),
        library,
    ).failures


def test_every_care_area_gets_mixup_scenarios_and_the_pump_does_what_they_expect(demo: DrugLibrary) -> None:
    for area in demo.care_areas:
        alike, _ = look_alike(demo, area.id, confused_names_table(), library_ref="lib.json")
        bags, _ = wrong_concentration(demo, area.id, library_ref="lib.json")
        assert bags, area.id
        for scenario in alike + bags:
            assert _play(scenario, demo) == (), scenario.stem


def test_pca_hydromorphone_and_morphine_are_written_both_ways(demo: DrugLibrary) -> None:
    alike, skipped = look_alike(demo, "PCA", confused_names_table(), library_ref="lib.json")
    assert skipped == []
    by_stem = {s.stem: s for s in alike}
    assert set(by_stem) == {
        "PCA.hydromorphone_picked_as_PCA.morphine",
        "PCA.morphine_picked_as_PCA.hydromorphone",
    }
    # morphine's usual demand (2.05 mg, middle of 0.1-4) keyed as HYDROmorphone: above its 2 mg hard max
    to_hydro = by_stem["PCA.morphine_picked_as_PCA.hydromorphone"]
    assert (to_hydro.expected, to_hydro.family) == ("hard", Family.LOOK_ALIKE)
    assert to_hydro.document["steps"][0]["demand_dose"] == "2.05"
    assert to_hydro.note.endswith("caught (hard)")
    # HYDROmorphone's usual demand (0.5 mg) keyed as morphine is inside morphine's limits: not caught
    to_morphine = by_stem["PCA.hydromorphone_picked_as_PCA.morphine"]
    assert to_morphine.expected == "ok"
    assert "NOT CAUGHT by the library" in to_morphine.note
    assert "HYDROmorphone / morphine (ISMP)" in to_morphine.document["name"]


def test_pca_dose_errors_are_generated_and_pass(demo: DrugLibrary) -> None:
    scenarios, skipped = generate(demo, "PCA", library_ref="lib.json")
    assert skipped == []
    assert [s.stem for s in scenarios][:3] == ["PCA.morphine_2x", "PCA.morphine_5x", "PCA.morphine_10x"]
    assert {s.expected for s in scenarios} == {"ok", "soft", "hard"}
    for scenario in scenarios:
        assert scenario.document["steps"][0]["kind"] == "pca"
        assert _play(scenario, demo) == (), scenario.stem


def test_a_listed_strength_ten_times_over_is_refused(demo: DrugLibrary) -> None:
    bags, _ = wrong_concentration(demo, "PCA", library_ref="lib.json")
    hydro = next(s for s in bags if s.stem == "PCA.hydromorphone_wrong_concentration")
    assert hydro.expected == "program.concentration_not_in_entry"
    assert hydro.document["steps"][0]["concentration"] == "60 mg/30 mL"
    assert hydro.document["expect_events"] == {
        "program.refused": 1,
        "program.checked": 0,
        "infusion.started": 0,
    }


def _custom_library(**custom_limits: int) -> DrugLibrary:
    entry = make_entry(
        concentrations=(concentration("400 mg/250 mL"),),
        custom_concentration=CustomConcentration(unit=AmountUnit.MG, limits=limit_set(**custom_limits)),
    )
    return make_library(care_areas=(make_care_area(),), entries=(entry,))


@pytest.mark.parametrize(
    ("limits", "expected", "note"),
    [
        ({"hard_min": 1, "hard_max": 4}, "hard", "caught (hard)"),
        ({"hard_min": 1, "soft_max": 8, "hard_max": 32}, "soft", "caught (soft)"),
        ({"hard_min": 1}, "ok", "NOT CAUGHT by the library"),
    ],
)
def test_a_custom_concentration_takes_the_wrong_bag_and_its_limits_decide(
    limits: dict[str, int], expected: str, note: str
) -> None:
    # 10 x 400 mg/250 mL = 16 mg/mL as a custom concentration; the usual dose at that strength is ok
    library = _custom_library(**limits)
    (scenario,) = wrong_concentration(library, "icu", library_ref="lib.json")[0]
    assert (scenario.expected, scenario.family) == (expected, Family.CONCENTRATION)
    assert scenario.note.endswith(note)
    assert _play(scenario, library) == ()


def test_a_care_area_without_confused_pairs_gets_no_look_alike(demo: DrugLibrary) -> None:
    alike, skipped = look_alike(demo, "ONCOLOGY", confused_names_table(), library_ref="lib.json")
    assert (alike, skipped) == ([], [])


def test_the_wrong_bag_that_is_a_listed_strength_is_skipped() -> None:
    entry = make_entry(concentrations=(concentration("40 mg/250 mL"), concentration("400 mg/250 mL")))
    library = make_library(care_areas=(make_care_area(),), entries=(entry,))
    scenarios, skipped = wrong_concentration(library, "icu", library_ref="lib.json")
    assert scenarios == []
    assert skipped == [f"{entry.id}: ten times 40 mg/250 mL is one of its own concentrations"]
    assert Decimal(10) * entry.concentrations[0].amount == entry.concentrations[1].amount
