"""The DERS rule table: ids, order independence, applicability and each rule's measurement."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind, VerdictLevel
from smartpump.ders.rules import RULES, CheckContext, evaluate, rule_ids
from smartpump.library.limits import LIMIT_ORDER, LimitKind
from smartpump.library.model import DrugLibrary, Entry
from tests.unit.ders import ICU_AREA, LIBRARY, dose, pca_program, program

D = Decimal


def context(entry_id: str | None, prog: InfusionProgram, **fields: Any) -> CheckContext:
    values: dict[str, Any] = {
        "program": prog,
        "care_area": ICU_AREA,
        "entry": None if entry_id is None else LIBRARY.entry(entry_id),
        "dose": None,
        "dose_limits": None,
        "rate_ml_per_h": D(10),
        "rate_ml_per_h_exact": D(10),
        "concentration": None,
        "is_custom_concentration": False,
        "weight_kg": None,
        "bsa_m2": None,
        "duration_min": None,
    }
    values.update(fields)
    return CheckContext(**values)


def with_entry(entry: Entry) -> DrugLibrary:
    return dataclasses.replace(
        LIBRARY, entries=tuple(entry if e.id == entry.id else e for e in LIBRARY.entries)
    )


def test_rule_parameters_are_unique() -> None:
    parameters = [r.parameter for r in RULES]
    assert len(parameters) == len(set(parameters))


def test_rule_ids_cover_every_parameter_and_limit_kind() -> None:
    ids = rule_ids()
    assert len(ids) == len(set(ids)) == len(RULES) * len(LIMIT_ORDER)
    for expected in (
        "ders.dose.hard_max",
        "ders.rate.soft_max",
        "ders.care_area.max_rate.hard_max",
        "ders.vtbi.hard_max",
        "ders.duration.soft_min",
        "ders.concentration.hard_min",
        "ders.patient_weight.soft_max",
        "ders.bolus_dose.hard_max",
        "ders.pca.demand_dose.hard_max",
        "ders.basic.rate.soft_max",
    ):
        assert expected in ids


def test_every_rule_measure_states_its_contract() -> None:
    for rule in RULES:
        assert rule.measure.__doc__, rule.parameter


def test_evaluate_reports_alerts_in_rule_order() -> None:
    ctx = context(
        "icu-dopamine",
        program("icu-dopamine", dose=D(25)),
        dose=D(25),
        dose_limits=LIBRARY.entry("icu-dopamine").dose,
        weight_kg=D(400),
        rate_ml_per_h=D(1000),
    )
    assert [a.rule for a in evaluate(ctx)] == [
        "ders.patient_weight.hard_max",
        "ders.dose.soft_max",
        "ders.care_area.max_rate.hard_max",
    ]


def test_evaluate_with_reversed_rules_gives_the_same_alerts() -> None:
    ctx = context(
        "icu-dopamine",
        program("icu-dopamine", dose=D(25)),
        dose=D(25),
        dose_limits=LIBRARY.entry("icu-dopamine").dose,
        weight_kg=D(400),
        rate_ml_per_h=D(1000),
    )
    assert set(evaluate(ctx, tuple(reversed(RULES)))) == set(evaluate(ctx))


def test_rules_that_do_not_apply_to_the_program_kind_are_skipped() -> None:
    # a dose beyond the bolus limits, but programmed as a continuous infusion: only 'dose' applies
    ctx = context(
        "icu-heparin",
        program("icu-heparin", dose=D(150)),
        dose=D(150),
        dose_limits=LIBRARY.entry("icu-heparin").dose,
    )
    assert [a.rule for a in evaluate(ctx)] == ["ders.dose.hard_max"]


def test_no_rule_fires_without_values_to_measure() -> None:
    ctx = context("icu-heparin", program("icu-heparin", dose=D(18)))
    assert evaluate(ctx) == ()


def test_custom_concentration_rule_ignores_listed_concentrations() -> None:
    tiny = LIBRARY.entry("icu-norepinephrine").concentrations[0]
    ctx = context(
        "icu-norepinephrine",
        program("icu-norepinephrine", dose=D(5)),
        concentration=dataclasses.replace(tiny, amount=D("0.001")),
        is_custom_concentration=False,
    )
    assert evaluate(ctx) == ()


def test_pca_rule_without_programmed_value_or_limit_raises_nothing() -> None:
    entry = LIBRARY.entry("icu-morphine-pca")
    assert entry.pca is not None
    no_max = dataclasses.replace(entry, pca=dataclasses.replace(entry.pca, max_dose=None))
    verdict = check(with_entry(no_max), ICU_AREA, pca_program(max_dose=D(100)))
    assert verdict.alerts == ()


def test_pca_rules_do_not_apply_to_a_pca_entry_programmed_without_pca_values() -> None:
    ctx = context("icu-morphine-pca", program("icu-morphine-pca", kind=ProgramKind.PCA))
    assert evaluate(ctx) == ()


def test_bolus_rate_in_dose_units_is_held_as_a_dose_rate() -> None:
    # 420 mL/h of 100 units/mL = 42000 units/h; / 70 kg = 600 units/kg/h = 10 units/kg/min
    entry = dataclasses.replace(
        LIBRARY.entry("icu-heparin"), bolus_rate=dose("units/kg/min", soft_max=8, hard_max=10)
    )
    library = with_entry(entry)
    bolus = program("icu-heparin", kind=ProgramKind.BOLUS, rate_ml_per_h=D(420), duration_min=D(2))
    verdict = check(library, ICU_AREA, bolus)
    (alert,) = verdict.alerts
    assert alert.rule == "ders.bolus_rate.soft_max"
    assert alert.value == D(10)
    assert alert.unit == "units/kg/min"
    over = check(library, ICU_AREA, dataclasses.replace(bolus, rate_ml_per_h=D("420.1")))
    assert [a.rule for a in over.alerts] == ["ders.bolus_rate.hard_max"]


def test_alert_level_is_hard_exactly_for_hard_kinds() -> None:
    ctx = context(
        None,
        InfusionProgram(entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=D(300)),
        rate_ml_per_h=D(300),
        weight_kg=D(20),
    )
    by_kind = {a.limit_kind: a.level for a in evaluate(ctx)}
    assert by_kind == {LimitKind.SOFT_MAX: VerdictLevel.SOFT, LimitKind.SOFT_MIN: VerdictLevel.SOFT}


def test_patient_bsa_is_checked_whenever_one_is_used() -> None:
    verdict = check(
        LIBRARY,
        ICU_AREA,
        program("icu-heparin", dose=D(18), patient=PatientParameters(weight_kg=D(70), bsa_m2=D(4))),
    )
    assert [a.rule for a in verdict.alerts] == ["ders.patient_bsa.hard_max"]


@pytest.mark.parametrize("kind", list(ProgramKind))
def test_care_area_rules_apply_to_every_program_kind(kind: ProgramKind) -> None:
    applies = {r.parameter for r in RULES if kind in r.applies_to}
    assert {"care_area.max_rate", "care_area.max_vtbi", "patient_weight"} <= applies
