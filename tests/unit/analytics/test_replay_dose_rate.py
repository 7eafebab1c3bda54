"""What-if replay of dose-rate limits (issue 18) on the events a real pump writes: an intermittent
potassium chloride programmed on a Pump, its ``program.checked`` events replayed under libraries whose
dose-rate limits differ (EXAMPLE DATA, synthetic limits, not a clinical recommendation)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import polars as pl
import pytest

from smartpump.analytics.frames import from_events
from smartpump.analytics.replay import alert_rules, program_rows, replay
from smartpump.clock import ManualClock
from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram
from smartpump.errors import ProgramError
from smartpump.library.model import DrugLibrary
from smartpump.pump import Pump, PumpModel
from smartpump.pump.events import EventType
from tests.factories import bounds, dose_limits
from tests.unit.pump.delivered import delivered_library, kcl

D = Decimal
#: 10 mEq/100 mL over 60 min: 10 mEq -> 100 mL/h = 10 mEq/h; 20 mEq -> 20 mEq/h; 40 mEq -> 40 mEq/h.
DOSES = ("10", "20", "40")


def kcl_with_dose_rate(library: DrugLibrary, version: int, **limits: int) -> DrugLibrary:
    """``library`` whose KCl entry holds its dose rate in mEq/h to ``limits`` (none: no dose-rate limit)."""
    entries = tuple(
        replace(
            e,
            dose_rate=dose_limits("mEq/h", **limits) if limits else None,
            rate_ml_per_h=bounds(),
        )
        if e.id == "icu-kcl"
        else e
        for e in library.entries
    )
    return replace(library, version=version, entries=entries)


CURRENT = kcl_with_dose_rate(delivered_library(), 1, soft_max=10, hard_max=20)


PROGRAMS = [kcl(dose) for dose in DOSES]


def pump_events() -> pl.DataFrame:
    """The KCl programs checked on a real pump under ``CURRENT`` (each cancelled before the next)."""
    pump = Pump("pump-1", PumpModel.LVP, ManualClock(), library=CURRENT)
    pump.select_care_area("icu")
    for program in PROGRAMS:
        pump.program("A", program)
        pump.cancel("A")
    assert sum(e.type is EventType.PROGRAM_CHECKED for e in pump.events) == len(PROGRAMS)
    return from_events(pump.events)


def _replayed(candidate: DrugLibrary) -> tuple[list[dict[str, object]], list[InfusionProgram]]:
    result = replay(program_rows(pump_events()), CURRENT, candidate).programs
    assert result is not None
    return list(result.sort("seq").iter_rows(named=True)), PROGRAMS


def _check(library: DrugLibrary, program: InfusionProgram) -> tuple[str, list[str]]:
    verdict = check(library, library.care_area("icu"), program)
    return verdict.level.value, sorted(a.rule for a in verdict.alerts)


def test_replay_under_the_current_library_gives_the_verdicts_the_pump_logged() -> None:
    rows, _ = _replayed(CURRENT)
    replayed = [(verdict_of(r["before_verdict"]), sorted(alert_rules(r, "before"))) for r in rows]
    logged = program_rows(pump_events()).select("alert_rules").to_series().to_list()
    assert [sorted(rules) for _, rules in replayed] == [sorted(rules) for rules in logged]
    assert replayed == [
        ("ok", []),
        ("soft", ["ders.dose_rate.soft_max"]),
        ("hard", ["ders.dose.soft_max", "ders.dose_rate.hard_max"]),  # 40 mEq is also above the dose soft max
    ]


def verdict_of(code: object) -> str:
    return {0: "ok", 1: "soft", 2: "hard"}[int(str(code))]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        # raised: 20 mEq/h now inside the soft max, 40 mEq/h only soft
        ({"soft_max": 25, "hard_max": 45}, ["ok", "ok", "soft"]),
        # lowered: 10 mEq/h above the soft max, 20 mEq/h above the hard max
        ({"soft_max": 5, "hard_max": 15}, ["soft", "hard", "hard"]),
        # removed: nothing holds the dose rate any more (40 mEq stays above the dose soft max)
        ({}, ["ok", "ok", "soft"]),
    ],
)
def test_a_changed_dose_rate_limit_changes_the_replayed_verdict_as_ders_check_does(
    limits: dict[str, int], expected: list[str]
) -> None:
    candidate = kcl_with_dose_rate(CURRENT, 2, **limits)
    rows, programs = _replayed(candidate)
    assert [verdict_of(r["after_verdict"]) for r in rows] == expected
    for row, program in zip(rows, programs, strict=True):
        assert (verdict_of(row["after_verdict"]), sorted(alert_rules(row, "after"))) == _check(
            candidate, program
        )


def test_the_changes_frame_lists_the_programs_a_lowered_dose_rate_limit_stops() -> None:
    candidate = kcl_with_dose_rate(CURRENT, 2, soft_max=5, hard_max=15)
    changes = replay(program_rows(pump_events()), CURRENT, candidate).changes
    assert changes.select("verdict_before", "verdict_after").rows() == [("ok", "soft"), ("soft", "hard")]


def test_a_concentration_the_candidate_entry_no_longer_lists_raises_no_dose_rate_alert() -> None:
    entries = tuple(
        replace(e, concentrations=(), custom_concentration=None) if e.id == "icu-kcl" else e
        for e in CURRENT.entries
    )
    with pytest.raises(ProgramError):
        check(replace(CURRENT, entries=entries), CURRENT.care_area("icu"), kcl("40"))
    rows, _ = _replayed(kcl_with_dose_rate(replace(CURRENT, entries=entries), 2, soft_max=1, hard_max=2))
    assert [r["after:dose_rate"] for r in rows] == [0, 0, 0]
