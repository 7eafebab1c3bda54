"""Soft-maximum dose suggestions from overridden alerts, kept below every good catch and every hard max.

A proposal only ever raises an entry's dose ``soft_max``; hard limits never move. The evidence (alerts
removed, good catches kept) comes from replaying the history against the draft the proposal makes.
An entry without a dose hard max gets a warning with every proposal (raising its soft max leaves no
hard stop at all above it) and, when a good catch gives the evidence, a hard-max proposal for the
committee: two significant digits strictly below the lowest good-catch dose, above every overridden
dose. The draft never sets it: a hard max is the committee's decision.
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
from smartpump.pump.events import EventType

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
    proposed_hard_max: Decimal | None = None
    warnings: tuple[str, ...] = ()


def _two_digits(value: Decimal, rounding: str) -> Decimal:
    """Round to two significant digits (a limit a committee can read), in the given direction."""
    if value <= 0:
        return value
    exponent = value.adjusted() - 1
    rounded = value.scaleb(-exponent).to_integral_value(rounding=rounding).scaleb(exponent)
    return Decimal(format(rounded, "f"))


def _shown(value: Decimal) -> str:
    """``value`` to three significant digits, without an exponent."""
    return format(Decimal(f"{value:.3g}"), "f")


def no_hard_max_warning(
    unit: str,
    proposed: Decimal,
    highest_override: Decimal,
    lowest_good_catch: Decimal | None,
    proposed_hard_max: Decimal | None,
) -> str:
    """The warning a soft-max proposal on an entry without a hard max carries."""
    reach = _two_digits(highest_override, ROUND_CEILING)
    if proposed_hard_max is not None:
        hard = (
            f"proposed hard max {proposed_hard_max} {unit}, below the lowest good catch; not set in the draft"
        )
    elif lowest_good_catch is None:
        hard = f"no good catch to base one on; overridden doses reach {reach} {unit}"
    else:
        hard = (
            f"no hard max separates the good catches (lowest {_shown(lowest_good_catch)} {unit}) from the "
            f"overridden doses (up to {reach} {unit})"
        )
    return (
        f"entry has no dose hard max: raising the soft max to {proposed} {unit} leaves no hard stop above "
        f"it; set a hard max before release ({hard})"
    )


def _step_below(value: Decimal) -> Decimal:
    """The largest two-significant-digit number strictly below ``value``."""
    below = _two_digits(value, ROUND_FLOOR)
    if below >= value:
        below = _two_digits(below - Decimal(1).scaleb(below.adjusted() - 1), ROUND_FLOOR)
    return below


def _hard_max_proposal(
    highest: Decimal, proposed: Decimal, lowest_good_catch: Decimal | None
) -> Decimal | None:
    """Two digits strictly below the lowest good catch, when that is above the proposed soft max and
    blocks no overridden dose; else None (no evidence for a hard max)."""
    if lowest_good_catch is None:
        return None
    candidate = _step_below(lowest_good_catch)
    if candidate <= proposed or candidate < highest:
        return None
    return candidate


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
        (pl.col("type") == EventType.ALERT_OVERRIDDEN)
        & (pl.col("prev_type") == EventType.PROGRAM_CHECKED)
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
        warnings: tuple[str, ...] = ()
        proposed_hard_max = None
        if limits.hard_max is None:
            highest = max(Decimal(d) for d in doses)
            proposed_hard_max = _hard_max_proposal(highest, proposed, lowest)
            warnings = (
                no_hard_max_warning(str(entry.dose.unit), proposed, highest, lowest, proposed_hard_max),
            )
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
                proposed_hard_max=proposed_hard_max,
                warnings=warnings,
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
