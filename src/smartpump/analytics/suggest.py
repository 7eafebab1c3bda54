"""Soft-maximum dose suggestions from overridden alerts, kept below every good catch and every hard max.

A proposal only ever raises an entry's dose ``soft_max``; hard limits never move. The evidence (alerts
removed, good catches kept) comes from replaying the history against the draft the proposal makes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

import polars as pl

from smartpump.analytics.metrics import catch_events, program_flow
from smartpump.analytics.replay import program_rows
from smartpump.analytics.replay import replay as replay_programs
from smartpump.library.limits import LimitKind
from smartpump.library.model import DrugLibrary, LibraryStatus, Provenance

SOFT_MAX_RULE: Final = "ders.dose.soft_max"


@dataclass(frozen=True, slots=True, kw_only=True)
class Suggestion:
    """A proposed dose soft_max for one entry, with the evidence a pharmacy committee reads."""

    entry_id: str
    parameter: str
    limit_kind: LimitKind
    unit: str
    current: Decimal
    proposed: Decimal
    hard_max: Decimal | None
    overrides: int
    lowest_good_catch: Decimal | None
    soft_alerts_before: int = 0
    soft_alerts_after: int = 0
    good_catches: int = 0
    good_catches_kept: int = 0


def _two_digits(value: Decimal, rounding: str) -> Decimal:
    """Round to two significant digits (a limit a committee can read), in the given direction."""
    if value <= 0:
        return value
    exponent = value.adjusted() - 1
    rounded = value.scaleb(-exponent).to_integral_value(rounding=rounding).scaleb(exponent)
    return Decimal(format(rounded, "f"))


def _quantile(values: list[Decimal], q: float) -> Decimal:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def propose(
    events: pl.DataFrame, library: DrugLibrary, *, quantile: float = 0.9, min_overrides: int = 3
) -> list[Suggestion]:
    """Proposed soft_max per entry: the ``quantile`` of overridden soft-max doses, rounded up to two
    significant digits, kept strictly below every good-catch dose and the hard max, above today's."""
    flow = program_flow(events)
    overridden = flow.filter(
        (pl.col("type") == "alert.overridden")
        & (pl.col("prev_type") == "program.checked")
        & pl.col("prev_alert_rules").list.contains(SOFT_MAX_RULE)
    ).select("entry_id", "prev_dose")
    catches = catch_events(events).filter(pl.col("dose").is_not_null())
    suggestions: list[Suggestion] = []
    for entry_id, doses in overridden.group_by("entry_id").agg(pl.col("prev_dose")).iter_rows():
        if entry_id is None or len(doses) < min_overrides:
            continue
        entry = next((e for e in library.entries if e.id == entry_id), None)
        limits = entry.dose.limits if entry else None
        if entry is None or limits is None or limits.soft_max is None:
            continue
        rows = catches.filter(pl.col("entry_id") == entry_id).select("dose", "dose_programmed").iter_rows()
        caught = [max(Decimal(d) for d in row if d is not None) for row in rows]
        lowest = min((d for d in caught if d > limits.soft_max), default=None)
        proposed = _two_digits(_quantile([Decimal(d) for d in doses], quantile), ROUND_CEILING)
        ceilings = [c for c in (lowest, limits.hard_max) if c is not None]
        while ceilings and proposed >= min(ceilings):
            proposed = _two_digits(proposed - Decimal(1).scaleb(proposed.adjusted() - 1), ROUND_FLOOR)
        if proposed <= limits.soft_max:
            continue
        suggestions.append(
            Suggestion(
                entry_id=entry_id,
                parameter="dose",
                limit_kind=LimitKind.SOFT_MAX,
                unit=str(entry.dose.unit),
                current=limits.soft_max,
                proposed=proposed,
                hard_max=limits.hard_max,
                overrides=len(doses),
                lowest_good_catch=lowest,
            )
        )
    return sorted(suggestions, key=lambda s: s.entry_id)


def to_draft(library: DrugLibrary, suggestions: list[Suggestion]) -> DrugLibrary:
    """A new draft (version + 1) with each suggested soft_max applied; nothing else changes."""
    by_entry = {s.entry_id: s for s in suggestions}
    entries = tuple(
        replace(e, dose=replace(e.dose, limits=replace(e.dose.limits, soft_max=by_entry[e.id].proposed)))
        if e.id in by_entry
        else e
        for e in library.entries
    )
    note = f"draft from CQI limit suggestions on version {library.version}: {', '.join(sorted(by_entry))}"
    provenance = Provenance(
        source=library.provenance.source,
        imported_from=library.provenance.imported_from,
        note=note,
        is_example=library.provenance.is_example,
    )
    return replace(
        library,
        version=library.version + 1,
        status=LibraryStatus.DRAFT,
        entries=entries,
        provenance=provenance,
    )


def suggest(
    events: pl.DataFrame, library: DrugLibrary, *, quantile: float = 0.9, min_overrides: int = 3
) -> list[Suggestion]:
    """``propose`` with its evidence filled in by replaying the history against the resulting draft;
    proposals that would remove no soft alert are dropped."""
    proposals = propose(events, library, quantile=quantile, min_overrides=min_overrides)
    if not proposals:
        return []
    result = replay_programs(program_rows(events), library, to_draft(library, proposals))
    assert result.programs is not None
    outcome = result.programs.with_columns(pl.col("entry_id").cast(pl.String), pl.col("pump").cast(pl.String))
    catches = catch_events(events).select("pump", "entry_id", pl.col("check_seq").alias("seq"))
    kept = catches.join(outcome.select("pump", "seq", "after_verdict"), on=["pump", "seq"])
    evidence: list[Suggestion] = []
    for s in proposals:
        rows = outcome.filter(pl.col("entry_id") == s.entry_id)
        mine = kept.filter(pl.col("entry_id") == s.entry_id)
        evidence.append(
            replace(
                s,
                soft_alerts_before=int((rows["before_verdict"] == 1).sum()),
                soft_alerts_after=int((rows["after_verdict"] == 1).sum()),
                good_catches=mine.height,
                good_catches_kept=int((mine["after_verdict"] >= 1).sum()),
            )
        )
    return [s for s in evidence if s.soft_alerts_after < s.soft_alerts_before]
