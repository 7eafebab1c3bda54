"""What kind of file a path holds (by its bytes, not its name), and reading a smartpump library from
either of its two lossless forms: the canonical JSON and the smartpump workbook (.xlsx export).

Anything else is refused with a specific code and a message that says what the file is and which
command takes it (a vendor export goes through ``library import``; a JSON library needs no import).
"""

from __future__ import annotations

import json
import zipfile
from enum import StrEnum
from pathlib import Path
from typing import Final

from smartpump.errors import LibraryFormatError
from smartpump.library.formats import json_format, xlsx_format
from smartpump.library.formats.detect import ImportFormat, format_from_sheets, open_workbook
from smartpump.library.model import DrugLibrary
from smartpump.library.signing import SignedLibrary

_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0"
_PDF_MAGIC: Final = b"%PDF"


class FileKind(StrEnum):
    """The kinds of file a pharmacist hands the library commands."""

    SMARTPUMP_JSON = "smartpump-json"
    SMARTPUMP_XLSX = "smartpump-xlsx"
    SIGNED_JSON = "signed-json"
    ALARIS_XLSX = "alaris-xlsx"
    BAXTER_XLSX = "baxter-xlsx"
    EHR_MAPPING_XLSX = "ehr-mapping-xlsx"
    CSV = "csv"
    OTHER_JSON = "other-json"
    OTHER_XLSX = "other-xlsx"
    LEGACY_XLS = "legacy-xls"
    PDF = "pdf"
    OTHER_ZIP = "other-zip"
    UNKNOWN = "unknown"


_FROM_IMPORT: Final = {
    ImportFormat.ALARIS_XLSX: FileKind.ALARIS_XLSX,
    ImportFormat.BAXTER_XLSX: FileKind.BAXTER_XLSX,
    ImportFormat.EHR_MAPPING_XLSX: FileKind.EHR_MAPPING_XLSX,
}


def _workbook_kind(path: Path) -> FileKind:
    try:
        with zipfile.ZipFile(path) as archive:
            if "xl/workbook.xml" not in archive.namelist():
                return FileKind.OTHER_ZIP
    except zipfile.BadZipFile:
        return FileKind.UNKNOWN
    workbook = open_workbook(path)
    try:
        names = tuple(workbook.sheetnames)
    finally:
        workbook.close()
    if set(xlsx_format.SHEETS) <= set(names):
        return FileKind.SMARTPUMP_XLSX
    try:
        return _FROM_IMPORT[format_from_sheets(names)]
    except LibraryFormatError:
        return FileKind.OTHER_XLSX


def _json_kind(path: Path) -> FileKind:
    """Signed library, another format's JSON, or (also when it does not parse, or names no format)
    a library document, so that the library reader reports exactly what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return FileKind.SMARTPUMP_JSON
    if not isinstance(document, dict):
        return FileKind.OTHER_JSON
    named = document.get("format")
    if named == SignedLibrary.FORMAT:
        return FileKind.SIGNED_JSON
    return FileKind.SMARTPUMP_JSON if named in (None, json_format.FORMAT) else FileKind.OTHER_JSON


def file_kind(path: Path) -> FileKind:
    """The kind of file at ``path``, told by its content (the extension only separates CSV from text).

    Raises:
        LibraryFormatError: the file cannot be read (code ``library.unreadable``).
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise LibraryFormatError(f"cannot read {path}: {error.strerror}", code="library.unreadable") from None
    if head.startswith(_ZIP_MAGIC):
        return _workbook_kind(path)
    if head.startswith(_OLE_MAGIC):
        return FileKind.LEGACY_XLS
    if head.startswith(_PDF_MAGIC):
        return FileKind.PDF
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
        return _json_kind(path)
    if path.suffix.lower() == ".csv":
        return FileKind.CSV
    return FileKind.UNKNOWN


_NOT_A_LIBRARY: Final = {
    FileKind.SIGNED_JSON: "is a signed library: check it with `smartpump library verify`; the library "
    "commands take the unsigned library JSON",
    FileKind.ALARIS_XLSX: "is a BD Alaris export: import it first with `smartpump library import FILE -o "
    "library.json`",
    FileKind.BAXTER_XLSX: "is a Baxter Sigma export: import it first with `smartpump library import FILE -o "
    "library.json`",
    FileKind.EHR_MAPPING_XLSX: "is an Alaris EHR mapping file: pass it with --mapping to `smartpump library "
    "import` next to the library export",
    FileKind.CSV: "is a CSV file: import it first with `smartpump library import FILE -o library.json` "
    "(pharmacist CSV layout)",
    FileKind.OTHER_JSON: 'is JSON of another kind, not a smartpump library ("format": "smartpump.library/1")',
    FileKind.OTHER_XLSX: "is a workbook in no layout smartpump knows (neither its own export nor an Alaris "
    "or Baxter report)",
    FileKind.LEGACY_XLS: "is a legacy Excel .xls file: save it as .xlsx first",
    FileKind.PDF: "is a PDF: drug libraries are read from .json, .xlsx or .csv files",
    FileKind.OTHER_ZIP: "is a zip archive, not an .xlsx workbook",
    FileKind.UNKNOWN: "is not a drug library file smartpump can read (.json library, .xlsx export)",
}


def not_a_library_message(path: Path, kind: FileKind) -> str:
    """Why a file of this kind is not taken as a library, and what to do with it."""
    return f"{path.name} {_NOT_A_LIBRARY[kind]}"


def read_library(path: Path) -> DrugLibrary:
    """A library from its canonical JSON or smartpump workbook, whatever the file is named.

    Raises:
        LibraryFormatError: the file is another kind (code ``library.file_kind``, naming the kind and
            the command that takes it) or holds an invalid library (the reader's codes and problems).
    """
    kind = file_kind(path)
    if kind is FileKind.SMARTPUMP_JSON:
        return json_format.read(path)
    if kind is FileKind.SMARTPUMP_XLSX:
        return xlsx_format.read(path)
    raise LibraryFormatError(not_a_library_message(path, kind), code="library.file_kind")
