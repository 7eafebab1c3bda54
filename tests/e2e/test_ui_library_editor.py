"""The library editor's entry table in real headless Chromium at 1366x768: each row's Edit and Remove sit in
their own cell, in line with the row's other cells and under the header's actions column."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, login, shot

pytestmark = pytest.mark.e2e

GEOMETRY = """table => {
  const head = table.querySelector('thead th:last-child').getBoundingClientRect();
  const box = el => { const b = el.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  return Array.from(table.querySelectorAll('tbody tr[data-entry]')).map(row => ({
    entry: row.getAttribute('data-entry'),
    display: getComputedStyle(row.lastElementChild).display,
    row: box(row), head: [head.left, head.right], cells: Array.from(row.children).map(box),
    name: box(row.querySelector('a[data-open-entry]')),
    parts: Array.from(row.lastElementChild.querySelectorAll('a, button')).map(box),
  }));
}"""
TOLERANCE_PX = 1.0


def _middle(box: list[float]) -> float:
    return (box[1] + box[3]) / 2


def test_edit_and_remove_sit_in_line_with_their_entry_row(new_page: Any, live_server: LiveServer) -> None:
    page = new_page({"width": 1366, "height": 768})
    login(page, "phil")
    page.goto("/ui/libraries")
    page.click("button[data-action=new-draft]")
    expect(page.locator("#library-status")).to_have_text("draft")
    table = page.locator("table.entries")
    expect(table.locator("a[data-action=edit-entry]").first).to_be_visible()
    rows = table.evaluate(GEOMETRY)
    assert rows, "the care area lists entries"
    for row in rows:
        top, bottom = row["row"][1], row["row"][3]
        actions = row["cells"][-1]
        assert row["display"] == "table-cell", row["entry"]
        spans = [abs(c[1] - top) <= TOLERANCE_PX and abs(c[3] - bottom) <= TOLERANCE_PX for c in row["cells"]]
        assert all(spans), f"{row['entry']}: every cell spans its row"
        assert abs(actions[0] - row["head"][0]) <= TOLERANCE_PX, f"{row['entry']}: under the actions header"
        assert len(row["parts"]) == 2, row["entry"]
        for part in row["parts"]:
            assert actions[0] <= part[0] and part[2] <= actions[2], f"{row['entry']}: inside its cell"
            in_line = abs(_middle(part) - _middle(row["name"])) <= 2
            assert in_line, f"{row['entry']}: in line with the entry name"
    shot(page, "library-editor-entries-1366x768", full_page=False)
