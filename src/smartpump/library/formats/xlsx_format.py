"""Drug-library workbook (.xlsx): the canonical JSON document laid out as sheets, lossless both ways.

Sheets: 'Library' (key/value), 'Drugs', 'Care Areas', 'Entries', 'EHR Mappings', 'Syringes'. One
row per object; columns are the document's dotted keys (``dose.limits.soft_max``); a blank cell is
an absent value. Concentrations read ``400 mg/250 mL; 800 mg/250 mL``; other lists are JSON text.
Numbers are numeric cells unless a float cannot hold them exactly (then exact text). Formula-like
text is escaped as in the CSV.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import IllegalCharacterError, InvalidFileException

from smartpump.errors import LibraryFormatError, SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.formats.csv_format import escape_cell, unescape_cell
from smartpump.library.model import DrugLibrary
from smartpump.units import Concentration, to_decimal

LIBRARY_SHEET: Final = "Library"
SYRINGES_SHEET: Final = "Syringes"
LIST_SHEETS: Final = {
    "drugs": "Drugs",
    "care_areas": "Care Areas",
    "entries": "Entries",
    "ehr_mappings": "EHR Mappings",
}
SHEETS: Final = (LIBRARY_SHEET, *LIST_SHEETS.values(), SYRINGES_SHEET)
_DECIMAL_KEYS: Final = frozenset(
    {
        "hard_min",
        "soft_min",
        "soft_max",
        "hard_max",
        "default",
        "default_volume_ml",
        "max_rate_ml_per_h",
        "bsa_resolution_m2",
        "occlusion_pressure_mmhg",
        "max_occlusion_pressure_mmhg",
        "air_in_line_ul",
        "kvo_rate_ml_per_h",
        "max_vtbi_ml",
        "bolus_delivery_rate_ml_per_h",
        "pause_spo2_min_percent",
        "pause_etco2_max_mmhg",
        "pause_resp_rate_min_bpm",
    }
)
_INTEGER_KEYS: Final = frozenset(
    {"schema_version", "version", "max_dose_window_h", "auto_restart_attempts", "tubing_change_h"}
)
_CONCENTRATIONS: Final = "concentrations"
_LIST_KEYS: Final = frozenset({"aliases", "ehr_codes", "channel_labels", "devices"})
_MAX_WIDTH: Final = 60


# --- export ----------------------------------------------------------------------------------


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested document as dotted keys -> cell values (lists become text)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif key == _CONCENTRATIONS:
            out[name] = "; ".join(_concentration_text(c) for c in value)
        elif isinstance(value, list):
            out[name] = json_format.encode_json(value)
        else:
            out[name] = value
    return out


def _concentration_text(doc: Mapping[str, Any]) -> str:
    amount, volume = (json_format.decimal_text(doc[k]) for k in ("amount", "volume_ml"))
    return f"{amount} {doc['unit']}/{volume} mL"


def _cell_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else json_format.decimal_text(value)
    if isinstance(value, str):
        return escape_cell(value)
    return value


def to_workbook(library: DrugLibrary) -> Workbook:
    """The library as an openpyxl Workbook (header rows bold and frozen, column widths set).

    Raises:
        LibraryFormatError: a text value holds characters a workbook cannot store.
    """
    doc = json_format.to_document(library)
    workbook = Workbook()
    workbook.remove(workbook.active)
    scalars = {k: v for k, v in doc.items() if k not in LIST_SHEETS and k != "syringes"}
    _add_sheet(workbook, LIBRARY_SHEET, ["key", "value"], [[k, v] for k, v in flatten(scalars).items()])
    for key, title in LIST_SHEETS.items():
        flat = [flatten(item) for item in doc[key]]
        columns = list(dict.fromkeys(k for row in flat for k in row)) or ["id"]
        _add_sheet(workbook, title, columns, [[row.get(c) for c in columns] for row in flat])
    _add_sheet(workbook, SYRINGES_SHEET, ["syringe"], [[s] for s in doc["syringes"]])
    return workbook


def append_literal_row(sheet: Any, row: list[Any], where: str, *, code: str) -> None:
    """Append ``row`` with every text kept as text: a value starting with ``=`` is stored as a string,
    never as a formula (a drug name cannot run in the pharmacist's spreadsheet); text a workbook cannot
    hold is refused with ``code``, naming ``where``."""
    try:
        sheet.append(row)
    except IllegalCharacterError:
        raise LibraryFormatError(
            f"{where}: text holds characters a workbook cannot store", code=code
        ) from None
    for cell in sheet[sheet.max_row]:
        if cell.data_type == "f":
            cell.data_type = "s"


def _add_sheet(workbook: Workbook, title: str, columns: list[str], rows: Iterable[list[Any]]) -> None:
    sheet = workbook.create_sheet(title)
    sheet.append(columns)
    widths = [len(c) for c in columns]
    for number, row in enumerate(rows, start=2):
        try:
            sheet.append([_cell_value(v) for v in row])
        except IllegalCharacterError:
            raise LibraryFormatError(
                f"{title} row {number}: text holds characters a workbook cannot store",
                code="library.xlsx",
            ) from None
        widths = [max(w, len(str(v)) if v is not None else 0) for w, v in zip(widths, row, strict=True)]
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(width, _MAX_WIDTH) + 2


def dumps(library: DrugLibrary) -> bytes:
    """The library as .xlsx bytes."""
    buffer = io.BytesIO()
    to_workbook(library).save(buffer)
    return buffer.getvalue()


def write(library: DrugLibrary, path: Path | str) -> None:
    """Write the library's workbook to ``path``."""
    Path(path).write_bytes(dumps(library))


# --- import ----------------------------------------------------------------------------------


def loads(data: bytes) -> DrugLibrary:
    """Read a library from workbook bytes in this module's layout.

    Raises:
        LibraryFormatError: not a workbook, wrong sheets, bad cells, or an invalid library;
            ``problems`` names each sheet row (the header is row 1).
    """
    try:
        workbook = load_workbook(io.BytesIO(data), data_only=True)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, InvalidFileException) as error:
        raise LibraryFormatError(f"not a readable .xlsx workbook: {error}", code="library.xlsx") from None
    problems: list[str] = []
    names = list(workbook.sheetnames)
    problems += [f"workbook: missing sheet {s!r}" for s in SHEETS if s not in names]
    problems += [
        f"workbook: unknown sheet {s!r} (known: {', '.join(SHEETS)})" for s in names if s not in SHEETS
    ]
    if problems:
        raise LibraryFormatError(
            f"workbook layout: {problems[0]}", problems=tuple(problems), code="library.xlsx"
        )
    doc: dict[str, Any] = {}
    for number, (key, value) in _rows(workbook[LIBRARY_SHEET], LIBRARY_SHEET, ["key", "value"], problems):
        if isinstance(key, str) and value is not None:
            where = f"{LIBRARY_SHEET} row {number}"
            _put(doc, key, _from_cell(key, value, where, problems), where, problems)
        elif key is not None or value is not None:
            problems.append(f"{LIBRARY_SHEET} row {number}: a key needs a value")
    for key, title in LIST_SHEETS.items():
        doc[key] = _objects(workbook[title], title, problems)
    doc["syringes"] = [
        _from_cell("syringe", v, f"{SYRINGES_SHEET} row {n}", problems)
        for n, (v,) in _rows(workbook[SYRINGES_SHEET], SYRINGES_SHEET, ["syringe"], problems)
        if v is not None
    ]
    if problems:
        raise LibraryFormatError(
            f"workbook cells: {problems[0]}", problems=tuple(problems), code="library.xlsx"
        )
    try:
        return json_format.from_document(doc)
    except LibraryFormatError as error:
        located = tuple(_sheet_location(p) for p in error.problems)
        raise LibraryFormatError(f"workbook: {located[0]}", problems=located, code=error.code) from None


def read(path: Path | str) -> DrugLibrary:
    """Read a library workbook file.

    Raises:
        LibraryFormatError: the file cannot be read or is not a valid library workbook.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise LibraryFormatError(f"cannot read {path}: {error}", code="library.unreadable") from None
    return loads(data)


def _rows(
    sheet: Any, title: str, expected: list[str] | None, problems: list[str]
) -> list[tuple[int, tuple[Any, ...]]]:
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0]) if values else []
    if expected is not None and header[: len(expected)] != expected:
        problems.append(f"{title} row 1: header must be {expected}")
        return []
    return [(n, tuple(r)) for n, r in enumerate(values[1:], start=2) if any(v is not None for v in r)]


def _objects(sheet: Any, title: str, problems: list[str]) -> list[dict[str, Any]]:
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0]) if values else []
    if any(not isinstance(h, str) for h in header):
        problems.append(f"{title} row 1: every column needs a text header")
        return []
    objects: list[dict[str, Any]] = []
    for number, row in _rows(sheet, title, None, problems):
        obj: dict[str, Any] = {}
        for column, value in zip(header, row, strict=False):
            if value is not None:
                where = f"{title} row {number} column {column}"
                _put(obj, column, _from_cell(column, value, where, problems), where, problems)
        objects.append(obj)
    return objects


def _from_cell(key: str, value: Any, where: str, problems: list[str]) -> Any:
    leaf = key.rsplit(".", 1)[-1]
    try:
        if leaf in _DECIMAL_KEYS or leaf in _INTEGER_KEYS:
            number = _to_decimal(value)
            if leaf in _INTEGER_KEYS:
                if number != number.to_integral_value():
                    raise ValueError(f"{value!r} is not a whole number")
                return int(number)
            return number
        if isinstance(value, bool):
            return value
        text = unescape_cell(
            value if isinstance(value, str) else json_format.decimal_text(_to_decimal(value))
        )
        if leaf == _CONCENTRATIONS:
            return [
                json_format.encode_value(Concentration.parse(part))
                for part in text.split(";")
                if part.strip()
            ]
        if leaf in _LIST_KEYS:
            return json_format.parse_json(text, what=where)
        return text
    except (SmartpumpError, ValueError) as error:
        problems.append(f"{where}: {error}")
        return None


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float):
        return Decimal(repr(value))
    return to_decimal(value.strip() if isinstance(value, str) else value)


def _put(doc: dict[str, Any], dotted: str, value: Any, where: str, problems: list[str]) -> None:
    *parents, leaf = dotted.split(".")
    target = doc
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            problems.append(f"{where}: column {dotted!r} clashes with column {part!r}")
            return
    if leaf in target:
        problems.append(f"{where}: column {dotted!r} is given twice")
        return
    target[leaf] = value


def _sheet_location(problem: str) -> str:
    for key, title in LIST_SHEETS.items():
        if problem.startswith(f"{key}["):
            index, _, rest = problem[len(key) + 1 :].partition("]")
            if index.isascii() and index.isdigit():
                return f"{title} row {int(index) + 2}{rest}"
    return problem
