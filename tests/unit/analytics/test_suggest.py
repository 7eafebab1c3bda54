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
from tests.factories import CARE_AREA_ID, ENTRY_ID, dose_limits, make_entry, make_library
from tests.unit.analytics.handmade import alert, checked, event

UNIT = "mcg/kg/min"


def dopamine_history(catch_dose: str = "24.5") -> list[dict[str, object]]:
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
    factor = str(Decimal(catch_dose) / 20)
    catch = [alert("ders.dose.soft_max", "soft", factor, limit="20", value=catch_dose)]
    events.append(
        checked("P1", seq + 1, 500, CARE_AREA_ID, ENTRY_ID, "soft", catch, dose=catch_dose, unit=UNIT)
    )
    events.append(event("P1", seq + 2, 510, "program.cancelled", entry_id=ENTRY_ID, alerts=catch))
    return events


def test_proposal_is_the_override_quantile_kept_below_the_good_catch() -> None:
    # 90th centile of 21..24 is 24 -> 24 < 24.5 (good catch) and < 30 (hard max).
    (only,) = propose(from_dicts(dopamine_history()), make_library())
    assert (only.entry_id, only.current, only.proposed, only.lowest_good_catch) == (
        ENTRY_ID,
        Decimal(20),
        Decimal(24),
        Decimal("24.5"),
    )


def test_suggestion_keeps_every_good_catch_and_removes_overridden_alerts() -> None:
    (only,) = suggest(from_dicts(dopamine_history()), make_library())
    assert (only.soft_alerts_before, only.soft_alerts_after) == (5, 1)
    assert (only.good_catches, only.good_catches_kept) == (1, 1)


def test_draft_bumps_version_and_never_moves_a_hard_limit() -> None:
    library = make_library()
    draft = to_draft(library, propose(from_dicts(dopamine_history()), library))
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


def _without_hard_max() -> DrugLibrary:
    entry = make_entry(dose=dose_limits(UNIT, default=5, hard_min=1, soft_min=2, soft_max=20))
    return make_library(entries=(entry,))


def test_entry_with_a_hard_max_carries_no_warning() -> None:
    (only,) = suggest(from_dicts(dopamine_history()), make_library())
    assert (only.warnings, only.proposed_hard_max) == ((), None)


def test_no_hard_max_gives_a_warning_and_a_hard_max_below_the_good_catch() -> None:
    # overrides 21-24, good catch 28: soft max 24 proposed; hard max 27 blocks the catch, no override
    (only,) = suggest(from_dicts(dopamine_history(catch_dose="28")), _without_hard_max())
    assert (only.current, only.proposed, only.hard_max, only.proposed_hard_max) == (
        Decimal(20),
        Decimal(24),
        None,
        Decimal(27),
    )
    (warning,) = only.warnings
    assert "no dose hard max" in warning
    assert "raising the soft max to 24 mcg/kg/min leaves no hard stop" in warning
    assert "proposed hard max 27 mcg/kg/min" in warning


def test_no_hard_max_without_a_good_catch_warns_without_a_number() -> None:
    events = dopamine_history()[:-2]  # the four overrides, without the good catch
    (only,) = suggest(from_dicts(events), _without_hard_max())
    assert (only.proposed, only.lowest_good_catch, only.proposed_hard_max) == (Decimal(24), None, None)
    (warning,) = only.warnings
    assert "no good catch to base one on; overridden doses reach 24 mcg/kg/min" in warning


def test_no_hard_max_where_catches_and_overrides_overlap_proposes_none() -> None:
    # good catch 24.5 just above the overrides: the step below it (24) is the proposed soft max itself
    (only,) = suggest(from_dicts(dopamine_history()), _without_hard_max())
    assert only.proposed_hard_max is None
    assert "no hard max separates the good catches (lowest 24.5 mcg/kg/min)" in only.warnings[0]


def test_the_draft_never_sets_the_proposed_hard_max() -> None:
    library = _without_hard_max()
    draft = to_draft(library, suggest(from_dicts(dopamine_history(catch_dose="28")), library))
    assert draft.entry(ENTRY_ID).dose.limits.hard_max is None
    assert draft.entry(ENTRY_ID).dose.limits.soft_max == Decimal(24)
