"""Soft-max suggestions: below every good catch and the hard max, hard limits untouched, draft bumped."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from smartpump.analytics.frames import from_dicts
from smartpump.analytics.history import generate
from smartpump.analytics.metrics import catch_events
from smartpump.analytics.replay import program_rows, replay
from smartpump.analytics.suggest import propose, suggest, to_draft
from smartpump.library.model import DrugLibrary, LibraryStatus
from tests.factories import CARE_AREA_ID, ENTRY_ID, make_library
from tests.unit.analytics.handmade import alert, checked, event

UNIT = "mcg/kg/min"


def _history() -> list[dict[str, object]]:
    """Dopamine (soft max 20, hard max 30): overrides at 21, 22, 23, 24; a good catch (cancel) at 24.5."""
    events: list[dict[str, object]] = []
    seq = 0
    for dose in ["21", "22", "23", "24"]:
        alerts = [alert("ders.dose.soft_max", "soft", str(Decimal(dose) / 20), limit="20", value=dose)]
        events.append(
            checked("P1", seq + 1, seq * 10, CARE_AREA_ID, ENTRY_ID, "soft", alerts, dose=dose, unit=UNIT)
        )
        events.append(
            event("P1", seq + 2, seq * 10 + 3, "alert.overridden", entry_id=ENTRY_ID, alerts=alerts)
        )
        seq += 2
    catch = [alert("ders.dose.soft_max", "soft", "1.225", limit="20", value="24.5")]
    events.append(checked("P1", seq + 1, 500, CARE_AREA_ID, ENTRY_ID, "soft", catch, dose="24.5", unit=UNIT))
    events.append(event("P1", seq + 2, 510, "program.cancelled", entry_id=ENTRY_ID, alerts=catch))
    return events


def test_proposal_is_the_override_quantile_kept_below_the_good_catch() -> None:
    # 90th centile of 21..24 is 24 -> 24 < 24.5 (good catch) and < 30 (hard max).
    (only,) = propose(from_dicts(_history()), make_library())
    assert (only.entry_id, only.current, only.proposed, only.lowest_good_catch) == (
        ENTRY_ID,
        Decimal(20),
        Decimal(24),
        Decimal("24.5"),
    )


def test_suggestion_keeps_every_good_catch_and_removes_overridden_alerts() -> None:
    (only,) = suggest(from_dicts(_history()), make_library())
    assert (only.soft_alerts_before, only.soft_alerts_after) == (5, 1)
    assert (only.good_catches, only.good_catches_kept) == (1, 1)


def test_draft_bumps_version_and_never_moves_a_hard_limit() -> None:
    library = make_library()
    draft = to_draft(library, propose(from_dicts(_history()), library))
    old, new = library.entry(ENTRY_ID).dose.limits, draft.entry(ENTRY_ID).dose.limits
    assert (draft.version, draft.status) == (library.version + 1, LibraryStatus.DRAFT)
    assert (new.hard_min, new.hard_max, new.soft_min) == (old.hard_min, old.hard_max, old.soft_min)
    assert new.soft_max == Decimal(24)


def test_on_a_synthetic_history_no_good_catch_is_lost_and_hard_limits_stay(demo_library: DrugLibrary) -> None:
    events = generate(demo_library, pumps=120, days=20, seed=7)
    draft = to_draft(demo_library, suggest(events, demo_library, min_overrides=2))
    for entry in demo_library.entries:
        old, new = entry.dose.limits, draft.entry(entry.id).dose.limits
        assert (old.hard_min, old.hard_max, old.soft_min) == (new.hard_min, new.hard_max, new.soft_min)
    outcome = replay(program_rows(events), demo_library, draft).programs
    assert outcome is not None
    caught = catch_events(events).select(pl.col("check_seq").alias("seq"), "pump")
    kept = caught.join(outcome.with_columns(pl.col("pump").cast(pl.String)), on=["pump", "seq"])
    assert kept.height == caught.height > 0
    assert (kept["after_verdict"] >= 1).all()
    assert (outcome["before_hard"] == outcome["after_hard"]).all()
