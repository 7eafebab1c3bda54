"""`smartpump library show|schema|export|import-csv`: read, print and convert library files."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.table import Table

from smartpump.cli.library import library_app
from smartpump.cli.output import console, emit_json, err_console, fail
from smartpump.errors import LibraryFormatError, SmartpumpError
from smartpump.library.formats import (
    alaris_export,
    baxter_export,
    csv_format,
    json_format,
    vendor_roundtrip,
    xlsx_format,
)
from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.formats.library_file import read_library
from smartpump.library.limits import LimitSet
from smartpump.library.model import EXAMPLE_LABEL, DrugLibrary, Entry
from smartpump.units import format_decimal

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]
_MAX_PROBLEMS_SHOWN = 50
EXIT_LOSSY = 1


class ExportFormat(StrEnum):
    """Formats `library export` writes."""

    CSV = "csv"
    XLSX = "xlsx"
    ALARIS = "alaris"
    BAXTER = "baxter"


VENDOR_FORMATS: Final = frozenset({ExportFormat.ALARIS, ExportFormat.BAXTER})


def _fail_with(error: SmartpumpError) -> NoReturn:
    problems = error.problems if isinstance(error, LibraryFormatError) else ()
    for problem in problems[:_MAX_PROBLEMS_SHOWN]:
        err_console.print(f"  {problem}", markup=False, highlight=False)
    if len(problems) > _MAX_PROBLEMS_SHOWN:
        err_console.print(f"  ... and {len(problems) - _MAX_PROBLEMS_SHOWN} more", markup=False)
    fail(error.message, code=error.code)


def load_library(path: Path) -> DrugLibrary:
    """Read a library file: canonical JSON or the smartpump workbook, told by content, not name."""
    if not path.is_file():
        fail(f"no such file: {path}", code="cli.no_file")
    try:
        return read_library(path)
    except SmartpumpError as error:
        _fail_with(error)


def _range(low: Any, high: Any) -> str:
    if low is None and high is None:
        return "-"
    return f"{'' if low is None else format_decimal(low)} - {'' if high is None else format_decimal(high)}"


def shown_limits(entry: Entry) -> tuple[str, LimitSet]:
    """The unit and limits a listing shows for an entry: a PCA entry's demand dose, else its dose."""
    if entry.pca is not None:
        return f"{entry.pca.demand_dose.unit}/dose", entry.pca.demand_dose.limits
    return str(entry.dose.unit), entry.dose.limits


def _summary(library: DrugLibrary, entries: list[Entry]) -> dict[str, Any]:
    return {
        "name": library.name,
        "version": library.version,
        "hospital_id": library.hospital_id,
        "status": library.status.value,
        "is_example": library.provenance.is_example,
        "entries": len(entries),
        "drugs": len({e.drug_id for e in entries}),
        "care_areas": len({e.care_area_id for e in entries}),
        "high_alert_entries": sum(library.drug(e.drug_id).is_high_alert for e in entries),
        "entries_without_hard_max": sum(shown_limits(e)[1].hard_max is None for e in entries),
        "pca_entries": sum(e.pca is not None for e in entries),
    }


@library_app.command("show")
def show_command(
    file: Annotated[
        Path, typer.Argument(help="Library file: .json (canonical) or .xlsx (smartpump layout).")
    ],
    care_area: Annotated[
        str | None, typer.Option("--care-area", help="Only this care area (id or name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a library's entries with their concentrations and soft/hard limits, and summary counts."""
    library = load_library(file)
    entries = list(library.entries)
    if care_area is not None:
        try:
            area_id = library.care_area(care_area).id
        except SmartpumpError as error:
            fail(f"{error.message} (known: {', '.join(a.id for a in library.care_areas)})", code=error.code)
        entries = [e for e in entries if e.care_area_id == area_id]
    summary = _summary(library, entries)
    if as_json:
        emit_json({**summary, "entry_list": [_entry_document(library, e) for e in entries]})
        return
    if library.provenance.is_example:
        console.print(f"[bold red]{EXAMPLE_LABEL}[/]")
    table = Table(title=f"{library.name} v{library.version} ({library.hospital_id}, {library.status.value})")
    for column in ("care area", "drug", "therapy", "concentration", "dosing unit", "soft", "hard"):
        table.add_column(column, no_wrap=column in ("drug", "dosing unit", "soft", "hard"))
    for entry in entries:
        drug = library.drug(entry.drug_id)
        unit, limits = shown_limits(entry)
        table.add_row(
            library.care_area(entry.care_area_id).name,
            drug.shown_name + (" [red](HA)[/]" if drug.is_high_alert else ""),
            entry.therapy or "",
            "; ".join(str(c) for c in entry.concentrations) or "-",
            unit,
            _range(limits.soft_min, limits.soft_max),
            _range(limits.hard_min, limits.hard_max),
        )
    console.print(table)
    console.print(
        f"{summary['entries']} entries, {summary['drugs']} drugs, {summary['care_areas']} care areas; "
        f"{summary['high_alert_entries']} high-alert entries (HA), {summary['pca_entries']} PCA, "
        f"{summary['entries_without_hard_max']} without a hard maximum",
        highlight=False,
    )


def _entry_document(library: DrugLibrary, entry: Entry) -> dict[str, Any]:
    unit, limits = shown_limits(entry)
    return {
        "id": entry.id,
        "care_area": entry.care_area_id,
        "drug": library.drug(entry.drug_id).shown_name,
        "therapy": entry.therapy,
        "mode": entry.mode.value,
        "concentrations": [str(c) for c in entry.concentrations],
        "dosing_unit": unit,
        "limits": json_format.encode_value(limits),
    }


@library_app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema (draft 2020-12) of the canonical library document."""
    sys.stdout.write(json.dumps(json_format.SCHEMA, indent=2, ensure_ascii=False) + "\n")


@library_app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="Library file: .json (canonical) or .xlsx.")],
    format_: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="csv (pharmacist columns), xlsx (smartpump workbook), alaris (BD Alaris Guardrails report) "
            "or baxter (Baxter Sigma Spectrum report).",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="alaris/baxter: refuse (write nothing, exit 1) when the layout cannot carry everything.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a library to CSV (entries only), XLSX (the whole library) or a vendor layout. CSV losses are
    listed; a vendor file is re-imported and every value that does not come back is listed."""
    library = load_library(file)
    not_held: tuple[str, ...] = ()
    counts: dict[str, tuple[int, int]] = {}
    try:
        if format_ is ExportFormat.CSV:
            not_held = csv_format.not_held(library)
            csv_format.write(library, output)
        elif format_ is ExportFormat.XLSX:
            xlsx_format.write(library, output)
        else:
            not_held, counts = vendor_export(library, format_, output)
    except OSError as error:
        fail(f"cannot write {output}: {error}", code="cli.write")
    except SmartpumpError as error:
        _fail_with(error)
    if strict and not_held and format_ in VENDOR_FORMATS:
        output.unlink(missing_ok=True)
        for line in not_held:
            err_console.print(f"not carried: {line}", markup=False, highlight=False)
        fail(
            f"the {format_.value} layout cannot carry {len(not_held)} values of this library (listed above); "
            "nothing written",
            code="library.export_lossy",
            exit_code=EXIT_LOSSY,
        )
    if as_json:
        emit_json(
            {
                "output": str(output),
                "format": format_.value,
                "entries": len(library.entries),
                "not_held": not_held,
                **(
                    {"entries_by_mode": {m: {"written": w, "reimported": b} for m, (w, b) in counts.items()}}
                    if counts
                    else {}
                ),
            }
        )
        return
    label = "not in CSV" if format_ is ExportFormat.CSV else "not carried"
    for line in not_held:
        err_console.print(f"{label}: {line}", markup=False, highlight=False)
    checked = ""
    if format_ in VENDOR_FORMATS:
        checked = (
            f"; re-imported: {len(not_held)} values do not come back" if not_held else "; re-imported: equal"
        )
    console.print(
        f"wrote {output} ({format_.value}, {len(library.entries)} entries{checked})", highlight=False
    )
    if counts:
        console.print(
            "entries written -> re-imported: "
            + ", ".join(f"{mode} {written} -> {back}" for mode, (written, back) in counts.items()),
            highlight=False,
        )


def vendor_export(
    library: DrugLibrary, format_: ExportFormat, output: Path
) -> tuple[tuple[str, ...], dict[str, tuple[int, int]]]:
    """Write the library in a vendor layout, re-import the file and return every value that did not come
    back (one line each; empty when the re-import equals the library) and, per delivery mode, the entries
    written and re-imported."""
    if format_ is ExportFormat.ALARIS:
        alaris_export.write_alaris(library, output)
        back = read_alaris(output).library
    else:
        baxter_export.write_baxter(library, output)
        back = read_baxter(output).library
    lines = tuple(vendor_roundtrip.describe(c) for c in vendor_roundtrip.losses(library, back))
    return lines, vendor_roundtrip.entry_counts(library, back)


@library_app.command("import-csv")
def import_csv_command(
    csv_file: Annotated[Path, typer.Argument(help="Pharmacist CSV, one row per entry.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Library JSON to write.")],
    care_areas: Annotated[
        Path | None,
        typer.Option(
            "--care-areas",
            help="Settings JSON: care areas, drug display names, PCA limits, library metadata.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Library name (overrides the settings).")] = None,
    hospital_id: Annotated[
        str | None, typer.Option("--hospital-id", help="Hospital id (overrides the settings).")
    ] = None,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Library version.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a CSV drug library (plus a settings file) into the canonical JSON; every bad row is listed."""
    if not csv_file.is_file():
        fail(f"no such file: {csv_file}", code="cli.no_file")
    if care_areas is not None and not care_areas.is_file():
        fail(f"no such file: {care_areas}", code="cli.no_file")
    try:
        settings = None if care_areas is None else csv_format.read_settings(care_areas)
        library = csv_format.read(
            csv_file, settings=settings, name=name, hospital_id=hospital_id, version=version
        )
        json_format.write(library, output)
    except OSError as error:
        fail(f"cannot write {output}: {error}", code="cli.write")
    except SmartpumpError as error:
        _fail_with(error)
    summary = _summary(library, list(library.entries))
    if as_json:
        emit_json({"output": str(output), **summary})
        return
    console.print(
        f"wrote {output}: {summary['entries']} entries, {summary['drugs']} drugs, "
        f"{summary['care_areas']} care areas",
        highlight=False,
    )
