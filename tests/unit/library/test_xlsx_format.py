"""Library workbook: lossless JSON -> XLSX -> JSON, layout (bold frozen header, widths), escaping."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from openpyxl import load_workbook

from smartpump.errors import LibraryFormatError
from smartpump.library.formats import json_format, xlsx_format
from smartpump.library.model import DrugLibrary
from tests.unit.library.test_json_format import libraries, small_library

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"


def test_demo_library_json_to_xlsx_to_json_is_lossless() -> None:
    library = json_format.read(DEMO)
    assert json_format.dumps(xlsx_format.loads(xlsx_format.dumps(library))) == DEMO.read_text(
        encoding="utf-8"
    )


@settings(max_examples=40)
@given(libraries())
def test_any_library_round_trips_through_xlsx(library: DrugLibrary) -> None:
    assert xlsx_format.loads(xlsx_format.dumps(library)) == library


def test_numbers_a_float_cannot_hold_are_kept_exactly() -> None:
    library = small_library(advisory="x")
    exact = Decimal("0.12345678901234567890123")
    dose = replace(library.entries[0].dose, default=exact)
    precise = replace(library, entries=(replace(library.entries[0], dose=dose),))
    assert xlsx_format.loads(xlsx_format.dumps(precise)).entries[0].dose.default == exact


def test_layout_has_sheets_bold_frozen_headers_and_widths() -> None:
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(json_format.read(DEMO))))
    assert tuple(workbook.sheetnames) == xlsx_format.SHEETS
    entries = workbook["Entries"]
    assert entries.freeze_panes == "A2"
    assert all(cell.font.bold for cell in entries[1])
    assert entries.column_dimensions["A"].width > 2
    assert entries.max_row == 70
    headers = [c.value for c in entries[1]]
    assert "dose.limits.soft_max" in headers and "concentrations" in headers


def test_formula_like_text_is_escaped_in_cells() -> None:
    library = small_library(advisory="=cmd|' /C calc'!A0")
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(library)))
    sheet = workbook["Entries"]
    column = [c.value for c in sheet[1]].index("advisory") + 1
    assert sheet.cell(row=2, column=column).value == "'=cmd|' /C calc'!A0"
    assert sheet.cell(row=2, column=column).data_type == "s"
    assert xlsx_format.loads(xlsx_format.dumps(library)) == library


def _edited(library: DrugLibrary, sheet: str, header: str, value: object) -> bytes:
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(library)))
    target = workbook[sheet]
    headers = [c.value for c in target[1]]
    column = headers.index(header) + 1 if header in headers else len(headers) + 1
    target.cell(row=1, column=column, value=header)
    target.cell(row=2, column=column, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _problems(data: bytes) -> tuple[str, ...]:
    with pytest.raises(LibraryFormatError) as caught:
        xlsx_format.loads(data)
    return caught.value.problems


def test_text_in_a_number_column_is_reported_with_sheet_row_and_column() -> None:
    found = _problems(_edited(small_library(), "Entries", "dose.limits.soft_max", "lots"))
    assert found[0].startswith("Entries row 2 column dose.limits.soft_max:")


def test_limit_order_errors_name_the_sheet_row() -> None:
    found = _problems(_edited(small_library(), "Entries", "dose.limits.soft_min", 25))
    assert found[0].startswith("Entries row 2.dose.limits: soft_min 25 is above soft_max 20")


def test_unknown_column_is_reported() -> None:
    found = _problems(_edited(small_library(), "Drugs", "colour", "red"))
    assert any("Drugs row 2" in p and "colour" in p for p in found)


def test_fractional_whole_number_field_is_reported() -> None:
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(small_library())))
    sheet = workbook["Library"]
    version_row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == "version")
    version_row[1].value = 1.5
    buffer = io.BytesIO()
    workbook.save(buffer)
    found = _problems(buffer.getvalue())
    assert any(p.startswith("Library row") and "not a whole number" in p for p in found)


def test_missing_and_unknown_sheets_are_listed() -> None:
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(small_library())))
    workbook.remove(workbook["Syringes"])
    workbook.create_sheet("Notes")
    buffer = io.BytesIO()
    workbook.save(buffer)
    found = _problems(buffer.getvalue())
    assert "workbook: missing sheet 'Syringes'" in found
    assert any(p.startswith("workbook: unknown sheet 'Notes'") for p in found)


def test_not_a_workbook_is_refused() -> None:
    with pytest.raises(LibraryFormatError) as caught:
        xlsx_format.loads(b"not a zip")
    assert caught.value.code == "library.xlsx"


def test_text_a_workbook_cannot_store_is_refused() -> None:
    with pytest.raises(LibraryFormatError) as caught:
        xlsx_format.dumps(small_library(advisory="bell\x07"))
    assert "Entries row 2" in caught.value.message


def test_write_and_read_file(tmp_path: Path) -> None:
    path = tmp_path / "lib.xlsx"
    xlsx_format.write(small_library(), path)
    assert xlsx_format.read(path) == small_library()
    with pytest.raises(LibraryFormatError):
        xlsx_format.read(tmp_path / "missing.xlsx")


def _saved(workbook: object) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def test_library_sheet_needs_its_header_and_values() -> None:
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(small_library())))
    workbook["Library"].cell(row=1, column=1, value="setting")
    assert "Library row 1: header must be ['key', 'value']" in _problems(_saved(workbook))
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(small_library())))
    workbook["Library"].append(["note_without_value", None])
    assert any("a key needs a value" in p for p in _problems(_saved(workbook)))


def test_clashing_duplicate_and_untitled_columns_are_reported() -> None:
    clash = _problems(_edited(small_library(), "Entries", "dose.unit.extra", "x"))
    assert any("clashes with column 'unit'" in p for p in clash)
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(small_library())))
    sheet = workbook["Drugs"]
    sheet.cell(row=1, column=sheet.max_column + 1, value="id")
    sheet.cell(row=2, column=sheet.max_column, value="again")
    assert any("'id' is given twice" in p for p in _problems(_saved(workbook)))
    workbook = load_workbook(io.BytesIO(xlsx_format.dumps(small_library())))
    sheet = workbook["Drugs"]
    sheet.cell(row=1, column=sheet.max_column + 1, value=7)
    assert "Drugs row 1: every column needs a text header" in _problems(_saved(workbook))


def test_true_false_in_a_number_column_is_reported() -> None:
    found = _problems(_edited(small_library(), "Entries", "dose.limits.hard_max", True))
    assert any("is not a number" in p for p in found)


def test_number_typed_into_a_text_column_is_read_as_text() -> None:
    library = xlsx_format.loads(_edited(small_library(), "Entries", "therapy", 5))
    assert library.entries[0].therapy == "5"
