"""The CQI report: self-contained HTML that escapes every text, and CSV with every section."""

from __future__ import annotations

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
