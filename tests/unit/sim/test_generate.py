"""Generated dose-error scenarios expect what the pump really does: the verdict on the rate it runs
(rounded to the model's resolution) and the dose that rate delivers, device limits as hard limits."""

from __future__ import annotations

from decimal import Decimal

from smartpump.library.model import DrugLibrary
from smartpump.pump import PumpModel, capabilities
from smartpump.sim.generate import GeneratedScenario, expected_verdict, generate
from smartpump.sim.scenario import Scenario, run_scenario
from tests.factories import concentration, dose_limits, make_care_area, make_entry, make_library

D = Decimal
LVP = capabilities(PumpModel.LVP)


def _library(*entries: object) -> DrugLibrary:
    """An example ICU (LVP pumps) holding the given entries (synthetic limits)."""
    return make_library(care_areas=(make_care_area(),), entries=entries)


def _run(scenario: GeneratedScenario, library: DrugLibrary) -> tuple[str, ...]:
    document = scenario.document
    played = run_scenario(
        Scenario(
            name=document["name"],
            model=document["model"],
            care_area=document["care_area"],
            steps=tuple(document["steps"]),
            expect_events=document["expect_events"],
            patient_id=document["patient_id"],
        ),
        library,
    )
    return played.failures


def test_a_dose_whose_rate_rounds_to_zero_expects_a_hard_verdict_not_a_refusal() -> None:
    # defect prevented: expecting pump.rate_out_of_range (or an ok start) for a rate the pump cannot run
    tiny = make_entry(
        dose=dose_limits("mcg/h", default="0.01", soft_max=10, hard_max=20),
        concentrations=(concentration("400 mg/250 mL"),),
    )
    library = _library(tiny)
    scenarios, skipped = generate(library, "icu", library_ref="library.json")
    assert skipped == []
    assert [s.expected for s in scenarios] == ["hard", "hard", "hard"]
    for scenario in scenarios:
        assert "expect_error" not in scenario.document["steps"][0]
        assert _run(scenario, library) == ()


def test_rounding_that_carries_the_delivered_dose_past_the_soft_max_expects_soft() -> None:
    # 2 x 22.5 = 45 mcg/min at 16 mcg/mL is 168.75 mL/h; the pump runs 169 mL/h = 45.07 mcg/min
    entry = make_entry(
        dose=dose_limits("mcg/min", soft_max=45),
        concentrations=(concentration("4 mg/250 mL"),),
        rate_ml_per_h=make_entry().rate_ml_per_h,
    )
    library = _library(entry)
    scenarios, _ = generate(library, "icu", library_ref="library.json")
    two_x = scenarios[0]
    assert two_x.stem.endswith("_2x") and two_x.document["steps"][0]["dose"] == "45"
    assert two_x.expected == "soft"
    assert _run(two_x, library) == ()


def test_expected_verdict_holds_the_rate_the_model_runs_against_its_range() -> None:
    entry, area = make_entry(), make_care_area()
    ambulatory = capabilities(PumpModel.AMBULATORY)
    assert expected_verdict(entry, area, D(5), D(400)) == "ok"
    assert expected_verdict(entry, area, D(5), D(600), caps=ambulatory) == "hard"
    assert expected_verdict(entry, area, D(5), D("0.04"), caps=LVP) == "hard"
    assert expected_verdict(entry, area, D(5), D("0.05"), caps=LVP) == "ok"


def test_expected_verdict_holds_the_delivered_dose_as_well_as_the_programmed_one() -> None:
    entry, area = make_entry(), make_care_area()  # dose limits 1-2-20-30 mcg/kg/min
    assert expected_verdict(entry, area, D(30), D(10), caps=LVP, delivered=D("30.01")) == "hard"
    assert expected_verdict(entry, area, D(20), D(10), caps=LVP, delivered=D("20.01")) == "soft"
    assert expected_verdict(entry, area, D(20), D(10), caps=LVP, delivered=D("19.99")) == "ok"
