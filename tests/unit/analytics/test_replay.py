"""What-if replay on a hand-built history: alerts before/after per entry and the changed programs."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from smartpump.analytics.frames import from_dicts
from smartpump.analytics.replay import program_rows, replay
from smartpump.library.model import DrugLibrary
from tests.factories import CARE_AREA_ID, ENTRY_ID, dose_limits, make_entry, make_library
from tests.unit.analytics.handmade import event


def _programs(doses: list[str]) -> list[dict[str, object]]:
    return [
        event(
            "P1",
            i,
            i,
            "program.checked",
            entry_id=ENTRY_ID,
            care_area=CARE_AREA_ID,
            kind="continuous",
            dose=d,
            dose_unit="mcg/kg/min",
            rate_ml_per_h="1",
            weight_kg="70",
        )
        for i, d in enumerate(doses, start=1)
    ]


def _with_soft_max(library: DrugLibrary, soft_max: int) -> DrugLibrary:
    entry = make_entry(dose=dose_limits("mcg/kg/min", hard_min=1, soft_min=2, soft_max=soft_max, hard_max=30))
    return replace(library, version=library.version + 1, entries=(entry,))


def test_raising_a_soft_max_removes_the_alerts_below_it() -> None:
    current = make_library()  # dopamine 1-2-20-30 mcg/kg/min
    candidate = _with_soft_max(current, 25)
    # 10 ok/ok; 20 on the limit ok/ok; 22 soft/ok; 25 soft/ok (on the new limit); 26 soft/soft; 31 hard/hard.
    frame = from_dicts(_programs(["10", "20", "22", "25", "26", "31"]))
    result = replay(program_rows(frame), current, candidate)
    row = result.summary.row(0, named=True)
    assert (row["programs"], row["soft_alerts_before"], row["soft_alerts_after"]) == (6, 3, 1)
    assert (row["hard_alerts_before"], row["hard_alerts_after"], row["verdict_changes"]) == (1, 1, 2)
    assert result.changes.select("seq", "verdict_before", "verdict_after").rows() == [
        (3, "soft", "ok"),
        (4, "soft", "ok"),
    ]


def test_an_entry_missing_from_the_candidate_is_not_evaluated() -> None:
    current = make_library()
    candidate = replace(current, version=2, entries=(make_entry(id="other"),))
    result = replay(program_rows(from_dicts(_programs(["10"]))), current, candidate)
    assert result.programs is not None
    assert result.programs["after_status"].cast(str).to_list() == ["entry_missing"]
    assert result.summary["not_evaluated_after"].to_list() == [1]


def test_a_changed_dosing_unit_is_not_compared() -> None:
    current = make_library()
    entry = make_entry(dose=dose_limits("mcg/min", soft_max=Decimal(100)))
    candidate = replace(current, version=2, entries=(entry,))
    result = replay(program_rows(from_dicts(_programs(["10"]))), current, candidate)
    assert result.programs is not None
    assert result.programs["after_status"].cast(str).to_list() == ["unit_changed"]
