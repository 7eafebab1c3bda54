"""Dose-rate limits of intermittent entries (issue 18): how fast an intermittent gives its dose,
held at the rate the pump really runs, for the model, DERS, the JSON format, lint and the replay.

The potassium chloride entry below is example data chosen by hand (a peripheral premix of
10 mEq/100 mL, soft max 10 mEq/h, hard max 20 mEq/h), not a clinical recommendation.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind, Verdict, VerdictLevel
from smartpump.errors import LibraryError, ProgramError
from smartpump.library.formats import json_format
from smartpump.library.model import DeliveryMode, Drug, DrugLibrary
from smartpump.units import round_half_up
from tests.factories import bounds, concentration, dose_limits, make_care_area, make_entry, make_library

D = Decimal
KCL = "kcl-intermittent"


def kcl_library(**dose_rate: int | str) -> DrugLibrary:
    """A library whose one entry is intermittent potassium chloride in mEq over a duration."""
    limits = dose_rate or {"soft_max": 10, "hard_max": 20}
    entry = make_entry(
        id=KCL,
        drug_id="potassium-chloride",
        mode=DeliveryMode.INTERMITTENT,
        dose=dose_limits("mEq", hard_max=40),
        concentrations=(concentration("10 mEq/100 mL"),),
        duration_min=bounds(soft_min=60),
        dose_rate=dose_limits("mEq/h", **{k: D(v) for k, v in limits.items()}),
        rate_ml_per_h=bounds(),
    )
    drug = Drug(id="potassium-chloride", generic_name="potassium chloride", is_high_alert=True)
    return make_library(drugs=(drug,), entries=(entry,))


def kcl(dose_meq: int | str, minutes: int | str) -> InfusionProgram:
    return InfusionProgram(
        entry_id=KCL,
        kind=ProgramKind.INTERMITTENT,
        dose=D(dose_meq),
        duration_min=D(minutes),
        patient=PatientParameters(weight_kg=D(70)),
    )


def verdict_of(program: InfusionProgram, **dose_rate: int | str) -> Verdict:
    library = kcl_library(**dose_rate)
    return check(library, library.care_area(make_care_area().id), program)


def dose_rate_alerts(verdict: Verdict) -> dict[str, Decimal]:
    return {a.rule: a.value for a in verdict.alerts if a.parameter == "dose_rate"}


def test_forty_meq_over_25_minutes_is_a_hard_stop_on_its_dose_rate() -> None:
    # 40 mEq in 400 mL over 25 min = 960 mL/h = 96 mEq/h (the example), hard max 20 mEq/h
    verdict = verdict_of(kcl(40, 25))
    assert verdict.level is VerdictLevel.HARD
    assert dose_rate_alerts(verdict) == {"ders.dose_rate.hard_max": D(96)}
    (alert,) = [a for a in verdict.alerts if a.parameter == "dose_rate"]
    assert (alert.limit, alert.unit, alert.factor) == (D(20), "mEq/h", D("4.8"))


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        ("120", {"ders.dose_rate.soft_max": D(20)}),  # 400 mL in 2 h = 200 mL/h = 20 mEq/h: on the hard max
        ("240", {}),  # 100 mL/h = 10 mEq/h: on the soft max, inside it
        ("180", {"ders.dose_rate.soft_max": D("13.33")}),  # 133.33 mL/h runs 133.3 = 13.33 mEq/h
        ("119", {"ders.dose_rate.hard_max": D("20.17")}),  # 201.68 mL/h runs 201.7 = 20.17 mEq/h
    ],
)
def test_every_edge_of_the_dose_rate_limits(minutes: str, expected: dict[str, Decimal]) -> None:
    verdict = verdict_of(kcl(40, minutes))
    found = {rule: round_half_up(value, D("0.01")) for rule, value in dose_rate_alerts(verdict).items()}
    assert found == {rule: round_half_up(value, D("0.01")) for rule, value in expected.items()}


@pytest.mark.parametrize(
    ("dose_meq", "rate_ml_per_h", "expected"),
    [
        # 20.006 mEq over 1 h = 200.06 mL/h exact, run as 200.1 mL/h = 20.01 mEq/h: above the hard max
        ("20.006", D("200.1"), {"ders.dose_rate.hard_max": D("20.01")}),
        # 20.004 mEq over 1 h = 200.04 mL/h exact (20.004 mEq/h), run as 200.0 mL/h = 20 mEq/h: on it
        ("20.004", D("200.0"), {"ders.dose_rate.soft_max": D(20)}),
    ],
)
def test_the_dose_rate_held_is_the_one_the_rounded_pump_rate_delivers(
    dose_meq: str, rate_ml_per_h: Decimal, expected: dict[str, Decimal]
) -> None:
    verdict = verdict_of(kcl(dose_meq, 60))
    assert verdict.rate_ml_per_h == rate_ml_per_h
    assert dose_rate_alerts(verdict) == expected


@given(
    dose=st.integers(min_value=1, max_value=40),
    minutes=st.integers(min_value=15, max_value=600),
)
def test_a_dose_rate_alert_fires_exactly_when_the_delivered_rate_crosses_a_bound(
    dose: int, minutes: int
) -> None:
    verdict = verdict_of(kcl(dose, minutes))
    # 10 mEq/100 mL: the dose's volume is 10 mL per mEq, run over the minutes at the pump's 0.1 mL/h step
    rate_ml_per_h = round_half_up(Decimal(dose) * 10 * 60 / Decimal(minutes), Decimal("0.1"))
    assert verdict.rate_ml_per_h == rate_ml_per_h
    delivered_meq_per_h = rate_ml_per_h / 10
    alerts = dose_rate_alerts(verdict)
    if delivered_meq_per_h > 20:
        assert set(alerts) == {"ders.dose_rate.hard_max"}
    elif delivered_meq_per_h > 10:
        assert set(alerts) == {"ders.dose_rate.soft_max"}
    else:
        assert alerts == {}
    for value in alerts.values():
        assert value == delivered_meq_per_h


def test_a_weight_based_dose_rate_uses_the_patient_weight() -> None:
    library = kcl_library()
    entry = library.entries[0]
    per_kg = make_library(
        drugs=library.drugs,
        entries=(replace(entry, dose_rate=dose_limits("mEq/kg/h", hard_max="0.3")),),
    )
    area = per_kg.care_area(make_care_area().id)
    # 40 mEq over 2 h = 20 mEq/h; for 50 kg that is 0.4 mEq/kg/h (above 0.3), for 70 kg 0.2857
    light = replace(kcl(40, 120), patient=PatientParameters(weight_kg=D(50)))
    assert dose_rate_alerts(check(per_kg, area, light)) == {"ders.dose_rate.hard_max": D("0.4")}
    assert dose_rate_alerts(check(per_kg, area, kcl(40, 120))) == {}
    no_weight = InfusionProgram(entry_id=KCL, kind=ProgramKind.INTERMITTENT, dose=D(40), duration_min=D(120))
    with pytest.raises(ProgramError) as refused:
        check(per_kg, area, no_weight)
    assert refused.value.code == "program.weight_required"


def test_dose_rate_limits_belong_to_intermittent_entries_with_an_amount_per_time() -> None:
    with pytest.raises(LibraryError) as continuous:
        make_entry(dose_rate=dose_limits("mcg/kg/min", hard_max=30))
    assert continuous.value.code == "library.dose_rate_mode"
    with pytest.raises(LibraryError) as total:
        make_entry(mode=DeliveryMode.INTERMITTENT, dose=dose_limits("mEq"), dose_rate=dose_limits("mEq"))
    assert total.value.code == "library.dose_rate_unit"
    with pytest.raises(LibraryError) as per_m2:
        make_entry(mode=DeliveryMode.INTERMITTENT, dose=dose_limits("mg"), dose_rate=dose_limits("mg/m2/h"))
    assert per_m2.value.code == "library.dose_rate_unit"


def test_dose_rate_limits_round_trip_through_the_canonical_json_and_its_schema() -> None:
    library = kcl_library()
    text = json_format.dumps(library)
    assert '"dose_rate"' in text
    again = json_format.loads(text)
    assert again == library
    assert again.entries[0].dose_rate == library.entries[0].dose_rate


def test_a_library_without_dose_rate_limits_keeps_its_canonical_bytes() -> None:
    library = make_library()
    assert b"dose_rate" not in json_format.canonical_bytes(library)


def test_a_dose_rate_of_another_kind_of_amount_is_refused_when_the_library_is_built() -> None:
    entry = kcl_library().entries[0]
    with pytest.raises(LibraryError) as mixed:
        replace(entry, dose_rate=dose_limits("mg/h", hard_max=20))
    assert mixed.value.code == "library.dose_rate_unit"
    assert "different kinds of amount" in mixed.value.message


def test_a_json_file_with_a_continuous_dose_rate_is_refused_naming_the_entry() -> None:
    document = json_format.to_document(kcl_library())
    document["entries"][0]["mode"] = "continuous"
    with pytest.raises(LibraryError) as refused:
        json_format.from_document(document)
    assert refused.value.code == "library.dose_rate_mode"
    assert KCL in refused.value.message
