"""Import an Alaris EHR interoperability mapping file (.xlsx: Additive, Diluent, Primary, Alias,
Comment, Method) as the order-code -> library alias mappings auto-programming uses."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from smartpump.errors import LibraryFormatError
from smartpump.library.formats.detect import cell_text, open_workbook
from smartpump.library.formats.import_report import ImportReport, ReportBuilder
from smartpump.library.model import Drug, DrugLibrary, EhrMapping, match_key

FORMAT: Final = "ehr-mapping-xlsx"
SHEET: Final = "Mapping File"
COLUMNS: Final = ("Additive", "Diluent", "Primary", "Alias", "Comment", "Method")


def read_ehr_mapping(
    path: Path, library: DrugLibrary | None = None
) -> tuple[tuple[EhrMapping, ...], ImportReport]:
    """The mappings of the file, and a report; with a library, aliases that resolve to none of its
    drugs (by EHR code, with or without the Alaris one-letter suffix, or by name) are reported.

    Raises:
        LibraryFormatError: the workbook has no 'Mapping File' sheet or lacks a column.
    """
    workbook = open_workbook(path)
    try:
        if SHEET not in workbook.sheetnames:
            raise LibraryFormatError(f"{path.name} has no sheet {SHEET!r}", code="library.format_sheet")
        rows = [tuple(r) for r in workbook[SHEET].iter_rows(values_only=True)]
    finally:
        workbook.close()
    report = ReportBuilder(source=path.name, format=FORMAT)
    report.sheet(SHEET)
    header = [cell_text(h) for h in rows[0]] if rows else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise LibraryFormatError(
            f"{SHEET!r} lacks columns {missing}", problems=tuple(missing), code="library.format_columns"
        )
    position = {name: header.index(name) for name in COLUMNS}
    mappings: list[EhrMapping] = []
    for number, row in enumerate(rows[1:], start=2):
        values = {name: cell_text(row[i]) if i < len(row) else "" for name, i in position.items()}
        if not any(values.values()):
            continue
        item = values["Comment"] or values["Primary"]
        if not values["Primary"]:
            report.skip(SHEET, number, item, "no Primary order identifier")
            continue
        if not values["Alias"]:
            report.skip(
                SHEET, number, item, f"no Alias: the row names no library entry (method {values['Method']!r})"
            )
            continue
        if library is not None and resolve_alias(library, values["Alias"]) is None:
            report.note(f"alias {values['Alias']} (row {number}) matches no drug or fluid of the library")
        mappings.append(
            EhrMapping(
                order_code=values["Primary"],
                alias=values["Alias"],
                additive_code=values["Additive"] or None,
                diluent_code=values["Diluent"] or None,
                comment=values["Comment"] or None,
                method=values["Method"] or None,
            )
        )
        report.represented(SHEET)
    return tuple(mappings), report.build(None, {"ehr_mappings": len(mappings)})


def resolve_alias(library: DrugLibrary, alias: str) -> Drug | None:
    """The drug an EHR alias names: an EHR code equal to it (Alaris codes may add a one-letter
    suffix such as F, I or C), else a drug whose name matches; None when nothing does."""
    for drug in library.drugs:
        for code in drug.ehr_codes:
            if code == alias or (code[:-1] == alias and code[-1:].isalpha()):
                return drug
    key = match_key(alias)
    return next((d for d in library.drugs if key in (match_key(n) for n in d.names())), None)
