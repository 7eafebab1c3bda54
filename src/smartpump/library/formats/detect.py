"""Which vendor format a spreadsheet is (told by its sheet names), and the cell readers the
vendor importers share: text, exact Decimals (never a float), slugs for stable ids."""

from __future__ import annotations

import re
import zipfile
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from smartpump.errors import LibraryFormatError

ALARIS_SHEETS = frozenset({"Data Set Properties", "Intermittent Drugs", "Master Drugs"})
BAXTER_SHEETS = frozenset({"FullList"})
EHR_MAPPING_SHEETS = frozenset({"Mapping File"})


class ImportFormat(StrEnum):
    """Formats ``smartpump library import`` reads."""

    ALARIS_XLSX = "alaris-xlsx"
    BAXTER_XLSX = "baxter-xlsx"
    EHR_MAPPING_XLSX = "ehr-mapping-xlsx"
    CSV = "csv"


def format_from_sheets(sheet_names: list[str] | tuple[str, ...]) -> ImportFormat:
    """The format a workbook with these sheet names is in.

    Raises:
        LibraryFormatError: the sheets match no known export.
    """
    names = set(sheet_names)
    if names >= ALARIS_SHEETS:
        return ImportFormat.ALARIS_XLSX
    if names >= BAXTER_SHEETS:
        return ImportFormat.BAXTER_XLSX
    if names >= EHR_MAPPING_SHEETS:
        return ImportFormat.EHR_MAPPING_XLSX
    raise LibraryFormatError(
        f"unrecognised workbook: sheets {sorted(names)} match no known export "
        "(Alaris needs 'Data Set Properties', 'Intermittent Drugs', 'Master Drugs'; Baxter needs 'FullList')",
        code="library.format_unknown",
    )


def open_workbook(path: Path) -> Any:
    """Open an .xlsx workbook read-only (formulas as written, not cached values).

    Raises:
        LibraryFormatError: the file is missing or is not a readable .xlsx workbook.
    """
    try:
        return load_workbook(path, read_only=True, data_only=False)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, InvalidFileException) as error:
        raise LibraryFormatError(
            f"{path.name} is not a readable .xlsx workbook: {error}", code="library.format_unreadable"
        ) from None


def detect_format(path: Path) -> ImportFormat:
    """The format of a file: CSV by extension, workbooks by their sheet names.

    Raises:
        LibraryFormatError: the file is not a readable workbook or matches no known export.
    """
    if path.suffix.lower() == ".csv":
        return ImportFormat.CSV
    workbook = open_workbook(path)
    try:
        return format_from_sheets(tuple(workbook.sheetnames))
    finally:
        workbook.close()


BLANKS = frozenset({"", "n/a", "-", "--"})


def cell_text(value: object) -> str:
    """A cell as stripped text ('' for empty); integers stay integral ('2778917', not '2778917.0')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def cell_decimal(value: object, *, what: str) -> Decimal | None:
    """A numeric cell as an exact Decimal; None for blank, 'n/a' and '-'.

    Floats go through their shortest repr (0.81 -> Decimal('0.81')), never binary expansion.

    Raises:
        LibraryFormatError: the cell holds a formula or text that is not a number.
    """
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise LibraryFormatError(f"{what}: expected a number, got {value!r}", code="library.format_number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).strip()
    if text.lower() in BLANKS:
        return None
    if text.startswith("="):
        raise LibraryFormatError(
            f"{what}: formula {text!r} where a number was expected", code="library.format_formula"
        )
    try:
        number = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise LibraryFormatError(f"{what}: {text!r} is not a number", code="library.format_number") from None
    if not number.is_finite():
        raise LibraryFormatError(f"{what}: {text!r} is not a finite number", code="library.format_number")
    return number


def slug(text: str) -> str:
    """Lower-case id fragment: leading sort dots dropped, runs of other characters become '-'."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lstrip(". ").casefold()).strip("-")
    return cleaned or "none"
