"""Re-import equality for vendor exports: what a library loses when written in a vendor layout and read
back, as the field-by-field differences between the library and its re-import (``library.diff``).

Lifecycle status and provenance are not library content (an import is always a draft that names its
file), so they are left out; an empty display name means the generic name is shown, so it is compared
as the name shown. Every other difference is a loss the exporter must report.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from smartpump.library.diff import Change, diff
from smartpump.library.model import DeliveryMode, DrugLibrary

METADATA: Final = frozenset({"status", "provenance"})


def is_metadata(change: Change) -> bool:
    """True for a lifecycle-status or provenance difference (any object's)."""
    parameter = change.parameter
    return parameter.split(".", 1)[0] in METADATA or parameter.endswith(".provenance")


def losses(original: DrugLibrary, reimported: DrugLibrary) -> tuple[Change, ...]:
    """Every content difference between the library and its re-import, in diff reading order."""
    shown = replace(original, drugs=tuple(replace(d, display_name=d.shown_name) for d in original.drugs))
    return tuple(c for c in diff(shown, reimported).changes if not is_metadata(c))


def describe(change: Change) -> str:
    """One line a pharmacist reads: where, which value, what was written and what came back."""
    old = "-" if change.old is None else str(change.old)
    new = "-" if change.new is None else str(change.new)
    if change.is_whole_object:
        return f"{change.where}: the whole {change.section.value} does not come back ({change.kind.value})"
    return f"{change.where}: {change.parameter} {old} -> {new}"


def entry_counts(original: DrugLibrary, reimported: DrugLibrary) -> dict[str, tuple[int, int]]:
    """Per delivery mode (every mode, in model order): entries in the library and entries that came back."""
    return {
        mode.value: (
            sum(e.mode is mode for e in original.entries),
            sum(e.mode is mode for e in reimported.entries),
        )
        for mode in DeliveryMode
    }
