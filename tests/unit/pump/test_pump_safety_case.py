"""docs/safety-case.md cannot drift: every referenced test exists and every matrix ID appears."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CASE = REPO / "docs" / "safety-case.md"
MATRIX_IDS = (
    [f"SAF-OCC-0{i}" for i in range(1, 5)]
    + ["SAF-AIR-01", "SAF-FF-01", "SAF-ACC-01", "SAF-ACC-02", "SAF-BOL-01", "SAF-DISP-01", "SAF-CMD-01"]
    + ["SAF-SCM-01..11", "SAF-PWR-01", "SAF-PWR-02", "SAF-STO-01", "SAF-CLK-01", "SAF-WDG-01"]
    + [f"SAF-SCM-{i:02d}" for i in range(1, 12)]
    + [f"ALM-0{i}" for i in range(1, 8)]
    + [f"DERS-0{i}" for i in range(1, 7)]
)


def _rows() -> list[tuple[str, str]]:
    rows = []
    for line in CASE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("ID", "---"):
            rows.append((cells[0], cells[2]))
    return rows


def test_every_matrix_id_is_traced() -> None:
    ids = {row_id for row_id, _ in _rows()}
    assert [i for i in MATRIX_IDS if i not in ids] == []


def test_every_referenced_test_exists() -> None:
    for row_id, covered in _rows():
        if covered.startswith("**open**"):
            continue
        path, _, name = covered.partition("::")
        source = (REPO / path).read_text(encoding="utf-8")
        assert re.search(rf"^(def|class) {re.escape(name)}\b", source, re.M), f"{row_id}: {covered} not found"
