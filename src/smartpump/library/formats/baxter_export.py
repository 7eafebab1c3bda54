"""Write a DrugLibrary in the Baxter Sigma Spectrum master-drug-library report layout the importer reads
(.xlsx, sheet FullList): a header block, then per care area its patient-weight limits, the continuous
drug rows (one per concentration; 'mL mode' for rate entries, 'Variable <unit>/mL' for a custom
concentration), load-dose time rows and the BASIC row.

Sigma continuous libraries hold no intermittent or PCA entries, entry kinds, dose defaults of bolus or
load separately from their start amount, drug aliases or classes: what the layout drops is found by
re-importing the file and comparing (``vendor_roundtrip.losses``), never guessed here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Final

from openpyxl import Workbook

from smartpump.library.formats.alaris_export import cell_number
from smartpump.library.formats.baxter import FULL_LIST
from smartpump.library.formats.xlsx_format import append_literal_row
from smartpump.library.limits import LimitSet
from smartpump.library.model import Bounds, CareArea, DeliveryMode, DoseLimits, DrugLibrary, Entry
from smartpump.units import Concentration, format_decimal

ROW_CELLS: Final = 36
NONE_MARK: Final = "-"
_LOAD_TIME_UNIT: Final = "min"


def _bound(value: Any) -> Any:
    number = cell_number(value)
    return NONE_MARK if number is None else number


def _five(limits: LimitSet, start: Any) -> list[Any]:
    """Lower hard, lower soft, start, upper soft, upper hard (``-`` where unset)."""
    return [
        _bound(limits.hard_min),
        _bound(limits.soft_min),
        _bound(start),
        _bound(limits.soft_max),
        _bound(limits.hard_max),
    ]


def _weight(value: Any) -> str:
    return NONE_MARK if value is None else f"{format_decimal(value)} kg"


class _Writer:
    def __init__(self, library: DrugLibrary) -> None:
        self.library = library
        self.rows: list[list[Any]] = []

    def run(self) -> Workbook:
        library = self.library
        self.rows += [
            ["Custom Report"],
            ["Library Name:", library.name],
            ["Version:", library.version],
            [],
        ]
        for area in library.care_areas:
            self._area(area)
        self.rows.append(["END OF REPORT"])
        workbook = Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.title = FULL_LIST
        for number, row in enumerate(self.rows, start=1):
            append_literal_row(sheet, row, f"{FULL_LIST} row {number}", code="library.export_text")
        return workbook

    def _area(self, area: CareArea) -> None:
        weight = area.weight_kg.limits
        self.rows += [
            [f"Care Area: {area.name}"],
            ["Lower Hard Limit", "Lower Soft Limit", "Upper Soft Limit", "Upper Hard Limit"],
            [
                _weight(weight.hard_min),
                _weight(weight.soft_min),
                _weight(weight.soft_max),
                _weight(weight.hard_max),
            ],
            [],
            ["Continuous Drugs"],
            [
                "Drug",
                "Drug Amount",
                "Diluent Volume",
                "Conc.",
                "Conc. Lower Hard",
                "Conc. Lower Soft",
                "Conc. Upper Soft",
                "Conc. Upper Hard",
                "Dose Mode",
            ],
        ]
        for entry in self.library.entries_in(area.id):
            if entry.mode in (DeliveryMode.CONTINUOUS, DeliveryMode.RATE):
                self._entry(entry)
        basic = area.basic_infusion
        if basic.allowed:
            rate = basic.rate_ml_per_h
            self.rows += [[], ["BASIC"], ["BASIC", None, None, None, None, *_five(rate.limits, rate.default)]]
        self.rows.append([])

    def _entry(self, entry: Entry) -> None:
        name = self.library.drug(entry.drug_id).shown_name
        bags: list[Concentration | None] = list(entry.concentrations)
        if entry.custom_concentration is not None or not bags:
            bags.append(None)
        for bag in bags:
            self.rows.append(self._row(entry, name, bag))
            if entry.loading is not None and entry.loading_duration_min != Bounds():
                time_row: list[Any] = [None] * ROW_CELLS
                time_row[16] = _LOAD_TIME_UNIT
                time_row[22:27] = _five(entry.loading_duration_min.limits, entry.loading_duration_min.default)
                self.rows.append(time_row)

    def _row(self, entry: Entry, name: str, bag: Concentration | None) -> list[Any]:
        row: list[Any] = [None] * ROW_CELLS
        row[0] = name
        custom = entry.custom_concentration
        if bag is not None:
            row[1:4] = [
                f"{format_decimal(bag.amount)} {bag.unit}",
                cell_number(bag.volume_ml),
                f"{format_decimal(bag.per_ml)} {bag.unit}/mL",
            ]
        elif custom is not None:
            limits = custom.limits
            row[1:8] = [
                NONE_MARK,
                NONE_MARK,
                f"Variable {custom.unit}/mL",
                _bound(limits.hard_min),
                _bound(limits.soft_min),
                _bound(limits.soft_max),
                _bound(limits.hard_max),
            ]
        else:
            row[1:4] = [NONE_MARK, NONE_MARK, "mL mode"]
        row[8] = str(entry.dose.unit)
        row[9:14] = _five(entry.dose.limits, entry.dose.default)
        row[14] = _bound(entry.vtbi_ml.default)
        row[15] = "P or S" if entry.allows_secondary else "P No S"
        unit = entry.bolus or entry.loading
        row[16] = str(unit.unit) if unit is not None else NONE_MARK
        row[17:22] = self._optional(entry.bolus, "Bolus Not Allowed")
        row[22:27] = self._optional(entry.loading, "Load Dose Not Allowed")
        return row

    @staticmethod
    def _optional(dose: DoseLimits | None, not_allowed: str) -> list[Any]:
        if dose is None:
            return [not_allowed, None, None, None, None]
        return _five(dose.limits, dose.default)


def dumps(library: DrugLibrary) -> bytes:
    """The library as Sigma FullList report .xlsx bytes.

    Raises:
        LibraryFormatError: text a workbook cannot store, naming its row.
    """
    buffer = io.BytesIO()
    _Writer(library).run().save(buffer)
    return buffer.getvalue()


def write_baxter(library: DrugLibrary, path: Path | str) -> None:
    """Write the library as a Sigma Spectrum FullList report to ``path`` (see ``dumps``)."""
    Path(path).write_bytes(dumps(library))
