"""The real vendor library exports under ../shared/data (BD Alaris v65 and v66, Baxter Sigma v14), each
imported once per test process (an import takes 1-2 s); a test that checks the reading itself (the same
file read twice, a damaged copy) calls the reader."""

from __future__ import annotations

import functools

from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.baxter import read_baxter
from smartpump.library.formats.import_report import ImportResult
from tests.conftest import shared_file

ALARIS_V65 = "alaris-guardrails-dataset-v65.xlsx"
ALARIS_V66 = "alaris-guardrails-dataset-v66.xlsx"
BAXTER_V14 = "baxter-sigma-library-v14.xlsx"


@functools.cache
def alaris(version: int) -> ImportResult:
    """The BD Alaris Guardrails data set of that version (65 or 66), imported."""
    return read_alaris(shared_file("vendor-libraries", f"alaris-guardrails-dataset-v{version}.xlsx"))


@functools.cache
def baxter() -> ImportResult:
    """The Baxter Sigma Spectrum v14 library, imported."""
    return read_baxter(shared_file("vendor-libraries", BAXTER_V14))
