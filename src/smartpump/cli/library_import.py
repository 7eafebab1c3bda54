"""`smartpump library import`: take in a vendor drug library (Alaris, Baxter) whole; show what was found."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartpump.cli.library import library_app
from smartpump.cli.output import console, emit_json, err_console, fail
from smartpump.errors import SmartpumpError
from smartpump.library.formats import csv_format, json_format, xlsx_format
from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.formats.detect import ImportFormat, detect_format
from smartpump.library.formats.ehr_mapping import read_ehr_mapping
from smartpump.library.formats.import_report import (
    ImportReport,
    ImportResult,
    ReportBuilder,
    flag_high_alert,
    library_summary,
)
from smartpump.library.formats.library_file import FileKind, file_kind, not_a_library_message


@library_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="Vendor export: Alaris Guardrails or Baxter Sigma .xlsx.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the library as JSON here.")
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="alaris-xlsx | baxter-xlsx | smartpump-xlsx | csv (detected from the content when omitted).",
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Alaris EHR mapping .xlsx to attach as the EHR mappings.")
    ] = None,
    settings: Annotated[
        Path | None,
        typer.Option("--settings", help="CSV only: library settings JSON (care areas, Tall Man names...)."),
    ] = None,
    hospital_id: Annotated[
        str | None, typer.Option("--hospital-id", help="CSV only: the hospital the library is for.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the import report as JSON on stdout.")
    ] = False,
) -> None:
    """Import a vendor drug library; print what was found and every row that could not be represented."""
    if not file.is_file():
        fail(f"no such file: {file}", code="cli.no_file")
    if format_ is None and _refuse_non_imports(file) is FileKind.SMARTPUMP_XLSX:
        format_ = SMARTPUMP_XLSX
    if format_ == SMARTPUMP_XLSX:
        _finish(file, _run_read(lambda: _read_workbook(file)), output, as_json)
        return
    try:
        kind = ImportFormat(format_) if format_ is not None else detect_format(file)
    except ValueError:
        fail(
            f"unknown format {format_!r} (use alaris-xlsx, baxter-xlsx, smartpump-xlsx or csv)",
            code="cli.format",
        )
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    if kind is ImportFormat.EHR_MAPPING_XLSX:
        fail(
            f"{file.name} is an EHR mapping file: pass it with --mapping next to a library export",
            code="cli.format",
        )
    readers: dict[ImportFormat, Callable[[Path], ImportResult]] = {
        ImportFormat.ALARIS_XLSX: read_alaris,
        ImportFormat.BAXTER_XLSX: read_baxter,
        ImportFormat.CSV: lambda path: _read_csv(path, settings, hospital_id),
    }
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        steps = 2 + (mapping is not None) + (output is not None)
        task = progress.add_task(f"reading {file.name}", total=steps)
        try:
            result = readers[kind](file)
            progress.advance(task)
            if mapping is not None:
                progress.update(task, description=f"reading {mapping.name}")
                result = _attach_mapping(result, mapping)
                progress.advance(task)
            if output is not None:
                progress.update(task, description=f"writing {output.name}")
                json_format.write(result.library, output)
                progress.advance(task)
        except SmartpumpError as error:
            fail(error.message, code=error.code)
        progress.advance(task)
    if as_json:
        emit_json(_report_document(result))
        return
    _print_report(result.report)


CSV_ROWS = "CSV rows"
_IMPORTABLE: Final = frozenset(
    {
        FileKind.ALARIS_XLSX,
        FileKind.BAXTER_XLSX,
        FileKind.EHR_MAPPING_XLSX,
        FileKind.CSV,
        FileKind.SMARTPUMP_XLSX,
    }
)
SMARTPUMP_XLSX: Final = "smartpump-xlsx"


def _read_workbook(file: Path) -> ImportResult:
    """A smartpump library workbook (the .xlsx export): every sheet row is held; the high-alert
    flags it carries are kept and compared with the table."""
    library = xlsx_format.read(file)
    report = ReportBuilder(source=file.name, format=SMARTPUMP_XLSX)
    report.represented("Entries", rows=len(library.entries))
    report.represented("Drugs", rows=len(library.drugs))
    report.represented("Care Areas", rows=len(library.care_areas))
    library, flags = flag_high_alert(library, report, source_has_flags=True)
    return ImportResult(library=library, report=report.build(library, high_alert=flags))


def _refuse_non_imports(file: Path) -> FileKind:
    """The file's kind; exit 2 with what the file is when it is no vendor export, CSV or smartpump
    workbook (a library JSON needs no import; other files get the reason for their kind; a workbook
    of unknown sheets is left to the sheet detector, which names the sheets each export needs)."""
    try:
        kind = file_kind(file)
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    if kind is FileKind.SMARTPUMP_JSON:
        fail(
            f"{file.name} is a smartpump JSON library: use it directly (library show, lint, diff, sign "
            "take it) or convert it with `smartpump library export`; `library import` reads vendor "
            "exports (Alaris, Baxter .xlsx), smartpump workbooks and pharmacist CSV",
            code="cli.already_a_library",
        )
    if kind not in _IMPORTABLE and kind is not FileKind.OTHER_XLSX:
        fail(not_a_library_message(file, kind), code="cli.format")
    return kind


def _read_csv(file: Path, settings: Path | None, hospital_id: str | None) -> ImportResult:
    """A pharmacist's CSV library; it imports whole or not at all (every bad row is listed)."""
    library = csv_format.read(
        file,
        settings=csv_format.read_settings(settings) if settings is not None else None,
        hospital_id=hospital_id,
    )
    with file.open(newline="", encoding="utf-8-sig") as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
    report = ReportBuilder(source=file.name, format=ImportFormat.CSV.value)
    report.represented(CSV_ROWS, rows=rows)
    for line in csv_format.not_held(library)[:50]:
        report.note(f"a CSV cannot hold: {line}")
    library, flags = flag_high_alert(library, report, source_has_flags=True)
    return ImportResult(library=library, report=report.build(library, high_alert=flags))


def _attach_mapping(result: ImportResult, mapping: Path) -> ImportResult:
    mappings, mapping_report = read_ehr_mapping(mapping, result.library)
    library = replace(result.library, ehr_mappings=mappings)
    report = replace(
        result.report,
        sheets=result.report.sheets + mapping_report.sheets,
        unrepresented=result.report.unrepresented + mapping_report.unrepresented,
        notes=result.report.notes + mapping_report.notes,
        summary={**result.report.summary, **library_summary(library)},
    )
    return ImportResult(library=library, report=report)


def _report_document(result: ImportResult) -> dict[str, object]:
    report = result.report
    return {
        "source": report.source,
        "format": report.format,
        "library": {
            "name": result.library.name,
            "version": result.library.version,
            "hospital_id": result.library.hospital_id,
        },
        "summary": report.summary,
        "sheets": report.sheets,
        "unrepresented": report.unrepresented,
        "notes": report.notes,
        "high_alert": [
            {
                "drug_id": flag.drug_id,
                "drug": flag.drug_name,
                "action": flag.action,
                "listings": [
                    {"id": m.listing.id, "listing": m.listing.label, "matched": m.matched}
                    for m in flag.matches
                ],
            }
            for flag in report.high_alert
        ],
    }


def _print_report(report: ImportReport) -> None:
    summary = Table(title=f"Imported {report.source} ({report.format})")
    summary.add_column("what")
    summary.add_column("count", justify="right")
    for key, value in report.summary.items():
        summary.add_row(key, str(value))
    console.print(summary)
    sheets = Table(title="Rows per sheet")
    for column in ("sheet", "read", "represented", "not represented"):
        sheets.add_column(column, justify="left" if column == "sheet" else "right")
    for sheet in report.sheets:
        sheets.add_row(sheet.sheet, str(sheet.rows_read), str(sheet.represented), str(sheet.not_represented))
    console.print(sheets)
    if report.unrepresented:
        reasons = Table(title="Not represented (by reason)")
        reasons.add_column("sheet")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        counts: dict[tuple[str, str], int] = {}
        for row in report.unrepresented:
            counts[(row.sheet, row.reason)] = counts.get((row.sheet, row.reason), 0) + 1
        for (sheet_name, reason), count in counts.items():
            reasons.add_row(sheet_name, reason, str(count))
        console.print(reasons)
    if report.high_alert:
        flagged = Table(title="High-alert drugs to confirm or clear")
        flagged.add_column("drug", no_wrap=True)
        flagged.add_column("action", no_wrap=True)
        flagged.add_column("why (listing, matched name)", overflow="fold")
        for flag in report.high_alert:
            flagged.add_row(flag.drug_name, flag.action, flag.reasons)
        console.print(flagged)
    for note in report.notes:
        console.print(f"- {note}", markup=False, highlight=False)


def _run_read(read: Callable[[], ImportResult]) -> ImportResult:
    try:
        return read()
    except SmartpumpError as error:
        fail(error.message, code=error.code)


def _finish(file: Path, result: ImportResult, output: Path | None, as_json: bool) -> None:
    """Write the library (when asked) and print the report."""
    if output is not None:
        try:
            json_format.write(result.library, output)
        except OSError as error:
            fail(f"cannot write {output}: {error}", code="cli.write")
    if as_json:
        emit_json(_report_document(result))
        return
    _print_report(result.report)
