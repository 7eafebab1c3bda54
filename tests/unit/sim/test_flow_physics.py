"""Flow physics per mechanism (SAF-ACC-01/02): measured through the same procedure a biomed runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smartpump.analytics.flow_accuracy import FlowRecord, analyse, dose_accuracy, mean_error_percent, trumpet
from smartpump.errors import SmartpumpError
from smartpump.pump.capabilities import CAPABILITIES, PumpModel
from smartpump.sim.flow_models import FLOW_MODELS, Mechanism, flow_model
from smartpump.sim.flow_physics import (
    BenchConditions,
    balance_record,
    dose_record,
    occlusion_suite,
    occlusion_test,
    steady_rate_ml_per_h,
)

QUIET = BenchConditions(noise=False)


def ripple_bound_percent(model: str, rate: float) -> float:
    """How far the within-stroke ripple at the two ends of the hour can move its mean (percent)."""
    row = flow_model(model)
    return 100 * 2 * row.pulsation_fraction * row.stroke_ml(row.sets[0]) / 3.14159 / rate


def analysed(
    model: str, rate: float, set_name: str | None = None, conditions: BenchConditions = QUIET
) -> FlowRecord:
    run = balance_record(model, rate, set_name=set_name, conditions=conditions)
    return FlowRecord.from_mass(run.times_s, run.mass_g, density_g_per_ml=conditions.density_g_per_ml)


def test_every_model_has_a_flow_row_whose_claims_cover_its_minimum_rate() -> None:
    assert set(FLOW_MODELS) == set(PumpModel)
    for model, row in FLOW_MODELS.items():
        minimum = float(CAPABILITIES[model].min_rate_ml_per_h)
        assert row.claims[0].from_rate_ml_per_h <= minimum
        assert row.claim_at(minimum).tolerance_percent >= row.claim_at(100).tolerance_percent


@pytest.mark.parametrize("set_name", ["standard-set", "blood-set", "worn-set"])
def test_the_set_tolerance_is_the_mean_error_of_a_peristaltic_pump(set_name: str) -> None:
    error = flow_model("lvp-4").disposable(set_name).volume_error_percent
    assert mean_error_percent(analysed("lvp-4", 25, set_name), 25) == pytest.approx(
        error, abs=ripple_bound_percent("lvp-4", 25)
    )


def test_strokes_make_the_short_windows_wide_and_the_long_windows_narrow() -> None:
    points = trumpet(analysed("lvp-4", 1), 1)
    spreads = [p.ep_max_percent - p.ep_min_percent for p in points]
    assert spreads[0] > 1.0
    assert spreads[0] == max(spreads) and spreads[-1] == min(spreads)


def test_head_height_raises_and_back_pressure_lowers_the_mean_flow() -> None:
    level = mean_error_percent(analysed("lvp-4", 25), 25)
    raised = mean_error_percent(
        analysed("lvp-4", 25, conditions=BenchConditions(noise=False, head_height_cm=80)), 25
    )
    pressed = mean_error_percent(
        analysed("lvp-4", 25, conditions=BenchConditions(noise=False, back_pressure_mmhg=300)), 25
    )
    row = flow_model("lvp-4")
    bound = 2 * ripple_bound_percent("lvp-4", 25)
    assert raised - level == pytest.approx(row.head_percent_per_cm * 80 * (1 + level / 100), abs=bound)
    assert pressed - level == pytest.approx(
        row.back_pressure_percent_per_mmhg * 300 * (1 + level / 100), abs=bound
    )


def test_back_pressure_fills_the_compliant_line_first_and_low_rates_start_slowest() -> None:
    loaded = BenchConditions(noise=False, back_pressure_mmhg=200)
    fast = analyse(analysed("lvp-4", 25, conditions=loaded), 25, tolerance_percent=5)
    slow = analyse(analysed("lvp-4", 1, conditions=loaded), 1, tolerance_percent=5)
    stored_ml = float(CAPABILITIES[PumpModel.LVP].line_compliance_ul_per_mmhg) * 200 / 1000
    assert slow.first_hour_deficit_ml == pytest.approx(stored_ml, rel=0.25)
    assert slow.startup[0][1] < 0.5 * slow.rate_ml_per_h
    assert fast.startup[0][1] > slow.startup[0][1] / slow.rate_ml_per_h * fast.rate_ml_per_h


@pytest.mark.parametrize(("small", "large"), [("10ml", "50ml"), ("1ml", "20ml")])
def test_syringe_slack_delays_the_start_more_with_a_larger_syringe(small: str, large: str) -> None:
    def first_flow_min(set_name: str) -> float:
        report = analyse(analysed("syringe-1", 1, set_name), 1, tolerance_percent=2)
        return next(t for t, q in report.startup if q > 0.5)

    assert flow_model("syringe-1").mechanism is Mechanism.SYRINGE
    assert first_flow_min(large) > first_flow_min(small)
    row = flow_model("syringe-1")
    dead_ml = (row.slack_mm + row.stiction_mm) * row.disposable("50ml").ml_per_mm
    assert first_flow_min("50ml") == pytest.approx(dead_ml * 60, abs=1.0)


def test_noise_is_seeded() -> None:
    one = balance_record("syringe-1", 2, conditions=BenchConditions(seed=7))
    again = balance_record("syringe-1", 2, conditions=BenchConditions(seed=7))
    other = balance_record("syringe-1", 2, conditions=BenchConditions(seed=8))
    assert one.mass_g == again.mass_g != other.mass_g


def test_a_worn_set_fails_its_claim_and_a_good_set_passes() -> None:
    row = flow_model("lvp-4")
    tolerance = row.claim_at(25).tolerance_percent
    assert (
        analyse(analysed("lvp-4", 25, "worn-set", BenchConditions()), 25, tolerance_percent=tolerance).verdict
        == "fail"
    )
    assert (
        analyse(analysed("lvp-4", 25, conditions=BenchConditions()), 25, tolerance_percent=tolerance).verdict
        == "pass"
    )


def test_steady_rate_is_never_negative_and_bad_requests_are_refused() -> None:
    row = flow_model("lvp-4")
    assert steady_rate_ml_per_h(row, row.sets[0], 10, BenchConditions(head_height_cm=-5000)) == 0
    calls: tuple[tuple[Callable[[], object], str], ...] = (
        (lambda: balance_record("lvp-4", 5000), "bench.rate_out_of_range"),
        (lambda: balance_record("lvp-4", 5, duration_s=0), "bench.bad_duration"),
        (lambda: balance_record("lvp-4", 5, set_name="nope"), "bench.unknown_set"),
        (lambda: balance_record("nope", 5), "bench.unknown_model"),
    )
    for call, code in calls:
        with pytest.raises(SmartpumpError) as refused:
            call()
        assert refused.value.code == code


@pytest.mark.parametrize("model", list(PumpModel))
def test_occlusion_alarms_within_a_stroke_of_the_declared_time(model: PumpModel) -> None:
    row = flow_model(model)
    for result in occlusion_suite(model):
        stroke_s = row.stroke_ml(row.sets[0]) / (result.rate_ml_per_h / 3600)
        slack = stroke_s * row.pulsation_fraction / 3.14 + 2
        assert abs(result.alarm_time_s - result.declared_time_s) <= slack + 0.02 * result.declared_time_s
        assert result.passed


def test_post_occlusion_bolus_is_the_stored_volume_after_back_off() -> None:
    caps = CAPABILITIES[PumpModel.LVP]
    result = occlusion_test("lvp-4", 25, threshold_mmhg=1000)
    stored_ml = (1000 - 10) * float(caps.line_compliance_ul_per_mmhg) / 1000
    assert result.bolus_ml == pytest.approx(stored_ml - float(caps.occlusion_backoff_ml), abs=0.01)
    assert (
        occlusion_test("lvp-4", 25, threshold_mmhg=1000).alarm_time_s
        > occlusion_test("lvp-4", 25).alarm_time_s
    )


def test_intermittent_doses_carry_the_set_error_and_the_first_pays_the_slack() -> None:
    row = flow_model("pca-1")
    syringe = row.sets[0]
    run = dose_record("pca-1", 1.0, rate_ml_per_h=60, every_s=600, doses=4, conditions=QUIET)
    record = FlowRecord.from_mass(run.times_s, run.mass_g, density_g_per_ml=QUIET.density_g_per_ml)
    result = dose_accuracy(record, 1.0, [0.0, 600.0, 1200.0, 1800.0, 2400.0])
    physical_ml = 1.0 * (1 + syringe.volume_error_percent / 100)
    dead_ml = (row.slack_mm + row.stiction_mm) * syringe.ml_per_mm
    assert result.delivered_ml[0] == pytest.approx(physical_ml - dead_ml, abs=1e-9)
    for delivered in result.delivered_ml[1:]:
        assert delivered == pytest.approx(physical_ml, abs=1e-9)
    with pytest.raises(SmartpumpError) as crowded:
        dose_record("pca-1", 5.0, rate_ml_per_h=10, every_s=600, doses=2)
    assert crowded.value.code == "bench.bad_doses"
