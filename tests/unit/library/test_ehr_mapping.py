"""The Alaris EHR mapping file as order-code -> alias mappings, resolved against the real v66 library."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from smartpump.errors import LibraryFormatError
from smartpump.library.formats.ehr_mapping import read_ehr_mapping, resolve_alias
from tests import vendor_libraries
from tests.conftest import shared_file


def test_rows_become_mappings_and_the_alias_less_row_is_reported() -> None:
    library = vendor_libraries.alaris(66).library
    mappings, report = read_ehr_mapping(shared_file("vendor-libraries", "alaris-ehr-mapping.xlsx"), library)
    assert len(mappings) == 52
    first = mappings[0]
    assert (first.order_code, first.alias, first.diluent_code, first.additive_code) == (
        "2778917",
        "1000000000",
        "2778917",
        None,
    )
    assert first.comment == "0.9% Sodium Chloride IVF_MAP"
    (skipped,) = report.unrepresented
    assert skipped.item == "Dapto_WB_MAP"
    assert "WB" in skipped.reason
    drug = resolve_alias(library, "1000000000")
    assert drug is not None and drug.generic_name == "..IVF Maintenance"
    assert report.notes == ()


def test_missing_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "map.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Mapping File"
    sheet.append(["Additive", "Primary"])
    workbook.save(path)
    with pytest.raises(LibraryFormatError, match="lacks columns"):
        read_ehr_mapping(path)
