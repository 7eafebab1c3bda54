"""The vectorised replay gives exactly ders.check's verdict and alerts, also on and next to every limit
(an intermittent's dose rate included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartpump.analytics.frames import from_dicts
from smartpump.analytics.replay import REPLAYED_RULES, alert_rules, program_rows, replay
from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind, Verdict
from smartpump.errors import ProgramError
from smartpump.library.limits import LimitSet
from smartpump.library.model import BasicInfusionPolicy, Bounds, DeliveryMode, DoseLimits, DrugLibrary
from smartpump.units import DoseUnit
from tests.factories import concentration, make_care_area, make_entry, make_library

T0 = datetime(2025, 1, 6, tzinfo=UTC)
GRID = [Decimal(v) / 4 for v in range(1, 200)]
NUDGE = (Decimal(0), Decimal("0.05"), Decimal("-0.05"), Decimal("1E-10"), Decimal("-1E-10"), Decimal("0.001"))


@st.composite
def limit_sets(draw: st.DrawFn) -> LimitSet:
    values = sorted(draw(st.lists(st.sampled_from(GRID), min_size=4, max_size=4)))
    present = draw(st.lists(st.booleans(), min_size=4, max_size=4))
    hard_min, soft_min, soft_max, hard_max = (v if p else None for v, p in zip(values, present, strict=True))
    return LimitSet(hard_min=hard_min, soft_min=soft_min, soft_max=soft_max, hard_max=hard_max)


def _library(draw: st.DrawFn, version: int) -> DrugLibrary:
    def bounds() -> Bounds:
        return Bounds(limits=draw(limit_sets()))

    area = make_care_area(
        weight_kg=bounds(),
        bsa_m2=Bounds(),
        max_rate_ml_per_h=draw(st.sampled_from([None, Decimal(20), Decimal(35), Decimal("12.5")])),
        basic_infusion=BasicInfusionPolicy(allowed=True, rate_ml_per_h=bounds()),
    )
    mg = make_entry(
        id="icu-mg",
        dose=DoseLimits(unit=DoseUnit.parse("mg/h"), limits=draw(limit_sets())),
        concentrations=(concentration("100 mg/100 mL"),),
        rate_ml_per_h=bounds(),
        vtbi_ml=bounds(),
    )
    weight_based = make_entry(
        id="icu-wb",
        dose=DoseLimits(unit=DoseUnit.parse("mcg/kg/min"), limits=draw(limit_sets())),
        concentrations=(concentration("400 mg/250 mL"),),
        rate_ml_per_h=bounds(),
    )
    kcl = make_entry(
        id="icu-kcl",
        mode=DeliveryMode.INTERMITTENT,
        dose=DoseLimits(unit=DoseUnit.parse("mEq"), limits=draw(limit_sets())),
        dose_rate=draw(
            st.sampled_from([None, DoseLimits(unit=DoseUnit.parse("mEq/h"), limits=draw(limit_sets()))])
        ),
        concentrations=(concentration("10 mEq/100 mL"),),
        rate_ml_per_h=bounds(),
        duration_min=bounds(),
    )
    return make_library(version=version, care_areas=(area,), entries=(mg, weight_based, kcl))


def _near(draw: st.DrawFn, limits: LimitSet) -> Decimal:
    anchors = [v for _, v in limits.items()] or [Decimal(5)]
    value = draw(st.sampled_from(anchors)) + draw(st.sampled_from(NUDGE))
    return value if value > 0 else Decimal("0.25")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[DrugLibrary, DrugLibrary, list[InfusionProgram]]:
    current, candidate = _library(draw, 1), _library(draw, 2)
    programs: list[InfusionProgram] = []
    for _ in range(draw(st.integers(1, 12))):
        which = draw(st.sampled_from(["mg", "wb", "basic", "kcl"]))
        pick = draw(st.sampled_from([current, candidate]))
        area = pick.care_areas[0]
        weight = _near(draw, area.weight_kg.limits)
        vtbi = draw(st.sampled_from([None, _near(draw, pick.entries[0].vtbi_ml.limits)]))
        if which == "basic":
            rate = _near(draw, area.basic_infusion.rate_ml_per_h.limits)
            programs.append(
                InfusionProgram(entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=rate, vtbi_ml=vtbi)
            )
            continue
        if which == "kcl":
            kcl = pick.entry("icu-kcl")
            anchor = _near(draw, kcl.dose_rate.limits if kcl.dose_rate else kcl.dose.limits)
            programs.append(
                InfusionProgram(
                    entry_id=kcl.id,
                    kind=ProgramKind.INTERMITTENT,
                    dose=anchor,
                    duration_min=draw(st.sampled_from([Decimal(60), Decimal(45), Decimal(90)])),
                    patient=PatientParameters(weight_kg=weight),
                )
            )
            continue
        entry = pick.entry("icu-mg" if which == "mg" else "icu-wb")
        source = draw(st.sampled_from([entry.dose.limits, entry.rate_ml_per_h.limits]))
        programs.append(
            InfusionProgram(
                entry_id=entry.id,
                dose=_near(draw, source) / (1 if which == "mg" else 10),
                patient=PatientParameters(weight_kg=weight),
                vtbi_ml=vtbi if which == "mg" else None,
            )
        )
    return current, candidate, programs


def _event(seq: int, verdict: Verdict, program: InfusionProgram, library: DrugLibrary) -> dict[str, Any]:
    return {
        "v": 1,
        "pump": "P1",
        "seq": seq,
        "ts": (T0 + timedelta(seconds=seq)).isoformat(),
        "channel": "A",
        "type": "program.checked",
        "data": {
            "entry_id": verdict.entry_id,
            "care_area": verdict.care_area_id,
            "kind": program.kind.value,
            "dose": None if verdict.dose is None else str(verdict.dose),
            "dose_programmed": None if verdict.dose_programmed is None else str(verdict.dose_programmed),
            "dose_unit": verdict.dose_unit,
            "rate_ml_per_h": str(verdict.rate_ml_per_h),
            "duration_min": None if program.duration_min is None else str(program.duration_min),
            "vtbi_ml": None if verdict.vtbi_ml is None else str(verdict.vtbi_ml),
            "alerts": [
                {"rule": a.rule, "level": a.level.value, "limit": str(a.limit), "value": str(a.value)}
                for a in verdict.alerts
            ],
            "weight_kg": None if program.patient.weight_kg is None else str(program.patient.weight_kg),
            "verdict": verdict.level.value,
            "library_version": library.version,
        },
    }


def _expected(library: DrugLibrary, program: InfusionProgram) -> tuple[str, list[str]] | None:
    try:
        verdict = check(library, library.care_areas[0], program)
    except ProgramError:
        return None
    return verdict.level.value, sorted(a.rule for a in verdict.alerts)


@given(scenarios())
def test_replay_equals_ders_check_before_and_after(
    scenario: tuple[DrugLibrary, DrugLibrary, list[Any]],
) -> None:
    current, candidate, programs = scenario
    events: list[dict[str, Any]] = []
    kept: list[InfusionProgram] = []
    for program in programs:
        try:
            verdict = check(current, current.care_areas[0], program)
        except ProgramError:
            continue
        events.append(_event(len(events) + 1, verdict, program, current))
        kept.append(program)
    if not events:
        return
    replayed = replay(program_rows(from_dicts(events)), current, candidate).programs
    assert replayed is not None
    result = replayed.sort("seq")
    names = {0: "ok", 1: "soft", 2: "hard"}
    for row, program in zip(result.iter_rows(named=True), kept, strict=True):
        for prefix, library in (("before", current), ("after", candidate)):
            expected = _expected(library, program)
            assert expected is not None
            assert (names[row[f"{prefix}_verdict"]], sorted(alert_rules(row, prefix))) == expected, (
                prefix,
                program,
            )


def test_every_replayed_rule_is_a_ders_rule() -> None:
    from smartpump.ders.rules import RULES

    assert {p for p, _ in REPLAYED_RULES} <= {r.parameter for r in RULES}
