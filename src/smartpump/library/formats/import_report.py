"""What an import read, what it represented, and every row it could not represent, with the reason.

Counts are per sheet; ``rows_read == represented + not_represented`` holds for every sheet, so
nothing an importer read is lost silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from smartpump.library.formats.high_alert_table import high_alert_table
from smartpump.library.high_alert import FLAGGED, HighAlertFlag, apply_high_alert
from smartpump.library.model import Bounds, CustomConcentration, DoseLimits, DrugLibrary, Entry


@dataclass(frozen=True, slots=True, kw_only=True)
class Unrepresented:
    """One source row (1-based sheet row number) the library does not hold, and why."""

    sheet: str
    row: int
    item: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SheetCount:
    """Data rows of one sheet: read, represented in the library, and not represented."""

    sheet: str
    rows_read: int
    represented: int
    not_represented: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """The outcome of an import: source, per-sheet counts, unrepresented rows, notes, summary, and
    the drugs the high-alert table flagged (or would have) for the pharmacist to confirm or clear."""

    source: str
    format: str
    sheets: tuple[SheetCount, ...]
    unrepresented: tuple[Unrepresented, ...]
    notes: tuple[str, ...]
    summary: dict[str, int]
    high_alert: tuple[HighAlertFlag, ...] = ()

    def sheet(self, name: str) -> SheetCount:
        """The counts of one sheet (KeyError when the import did not read it)."""
        for count in self.sheets:
            if count.sheet == name:
                return count
        raise KeyError(name)

    @property
    def rows_read(self) -> int:
        """Data rows read over all sheets."""
        return sum(s.rows_read for s in self.sheets)

    @property
    def rows_not_represented(self) -> int:
        """Data rows over all sheets that the library does not hold."""
        return len(self.unrepresented)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """A library built from a vendor export and the report of what was (not) represented."""

    library: DrugLibrary
    report: ImportReport


@dataclass(slots=True)
class ReportBuilder:
    """Mutable tally an importer fills while it reads; ``build`` freezes it into an ImportReport."""

    source: str
    format: str
    _read: Counter[str] = field(default_factory=Counter)
    _represented: Counter[str] = field(default_factory=Counter)
    _sheets: list[str] = field(default_factory=list)
    _unrepresented: list[Unrepresented] = field(default_factory=list)
    _notes: list[str] = field(default_factory=list)

    def sheet(self, name: str) -> None:
        """Declare a sheet (so it is listed even with zero data rows)."""
        if name not in self._sheets:
            self._sheets.append(name)

    def represented(self, sheet: str, rows: int = 1) -> None:
        """Count rows read and represented in the library."""
        self.sheet(sheet)
        self._read[sheet] += rows
        self._represented[sheet] += rows

    def skip(self, sheet: str, row: int, item: str, reason: str) -> None:
        """Count a row read and not represented, with the reason."""
        self.sheet(sheet)
        self._read[sheet] += 1
        self._unrepresented.append(Unrepresented(sheet=sheet, row=row, item=item, reason=reason))

    def note(self, text: str) -> None:
        """Record a statement about the import as a whole (e.g. a column the model does not hold)."""
        if text not in self._notes:
            self._notes.append(text)

    def build(
        self,
        library: DrugLibrary | None,
        extra: dict[str, int] | None = None,
        high_alert: tuple[HighAlertFlag, ...] = (),
    ) -> ImportReport:
        """Freeze the tally, adding summary counts of the library built (None when none was)."""
        not_represented = Counter(u.sheet for u in self._unrepresented)
        sheets = tuple(
            SheetCount(
                sheet=name,
                rows_read=self._read[name],
                represented=self._represented[name],
                not_represented=not_represented[name],
            )
            for name in self._sheets
        )
        summary = library_summary(library) if library is not None else {}
        summary.update(extra or {})
        return ImportReport(
            source=self.source,
            format=self.format,
            sheets=sheets,
            unrepresented=tuple(self._unrepresented),
            notes=tuple(self._notes),
            summary=summary,
            high_alert=high_alert,
        )


def library_summary(library: DrugLibrary) -> dict[str, int]:
    """Counts a reviewer checks after an import: care areas, drugs, entries by kind and mode,
    concentrations, custom concentrations and configured limit bounds."""
    summary: dict[str, int] = {
        "care_areas": len(library.care_areas),
        "drugs": len(library.drugs),
        "entries": len(library.entries),
    }
    for entry in library.entries:
        summary[f"entries.kind.{entry.kind.value}"] = summary.get(f"entries.kind.{entry.kind.value}", 0) + 1
        summary[f"entries.mode.{entry.mode.value}"] = summary.get(f"entries.mode.{entry.mode.value}", 0) + 1
    summary["concentrations"] = sum(len(e.concentrations) for e in library.entries)
    summary["custom_concentrations"] = sum(1 for e in library.entries if e.custom_concentration is not None)
    summary["limits"] = sum(_bounds_in(e) for e in library.entries)
    summary["ehr_mappings"] = len(library.ehr_mappings)
    summary["high_alert_drugs"] = sum(1 for d in library.drugs if d.is_high_alert)
    return summary


def _bounds_in(entry: Entry) -> int:
    parts: list[Bounds | DoseLimits | CustomConcentration | None] = [
        entry.dose,
        entry.rate_ml_per_h,
        entry.vtbi_ml,
        entry.duration_min,
        entry.dose_rate,
        entry.bolus,
        entry.bolus_rate,
        entry.loading,
        entry.loading_duration_min,
        entry.custom_concentration,
    ]
    return sum(len(p.limits.items()) for p in parts if p is not None)


def flag_high_alert(
    library: DrugLibrary, report: ReportBuilder, *, source_has_flags: bool
) -> tuple[DrugLibrary, tuple[HighAlertFlag, ...]]:
    """Apply the packaged high-alert table to an imported library and note what it did in the report
    (see ``apply_high_alert``: vendor exports get flags set, flagged sources are only compared)."""
    table = high_alert_table()
    flagged, flags = apply_high_alert(library, table, source_has_flags=source_has_flags)
    set_count = sum(1 for f in flags if f.action == FLAGGED)
    if source_has_flags:
        report.note(
            f"High-alert: the source's flags are kept; {len(flags)} drugs it marks not high-alert are on "
            f"the {table.source}: confirm or clear each."
        )
    else:
        report.note(
            f"High-alert: the source has no high-alert flag; {set_count} drugs flagged from the "
            f"{table.source}: confirm or clear each."
        )
    return flagged, flags
