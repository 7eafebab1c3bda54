"""Import a Baxter Sigma Spectrum master drug library report (.xlsx, sheet FullList) into a DrugLibrary.

The report opens with a header block (MDL version, library name, version, dates), then one block
per care area: patient-weight limits, the drug table and the BASIC (library-less) row.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from smartpump.errors import LibraryFormatError, SmartpumpError
from smartpump.library.formats.detect import cell_decimal, cell_text, open_workbook, slug
from smartpump.library.formats.import_report import ImportResult, ReportBuilder, flag_high_alert
from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    BasicInfusionPolicy,
    Bounds,
    CareArea,
    CustomConcentration,
    DeliveryMode,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    LibraryStatus,
    Provenance,
    match_key,
)
from smartpump.units import Concentration, DoseUnit, format_decimal, parse_duration_min, parse_weight_kg

FORMAT: Final = "baxter-xlsx"
FULL_LIST: Final = "FullList"
DISCRETE_LIST: Final = "DiscreteList"
_CARE_AREA_PREFIX: Final = "Care Area:"
_VENDOR_SPELLINGS: Final = {"munits": "milliunits"}
_DRUG_COLUMNS: Final = ("Drug", "Drug", "Diluent", "Conc.", "Conc.", "Conc.", "Conc.", "Conc.", "Dose")
_MIN_SEC: Final = "min:sec"
_TIME_UNITS: Final = (_MIN_SEC, "sec", "min", "hr")
_MICROSECONDS_PER_HOUR: Final = Decimal(3_600_000_000)
_NOT_ALLOWED: Final = ("Bolus Not Allowed", "Load Dose Not Allowed")


@dataclass(slots=True)
class _Group:
    template: Entry
    concentrations: list[Concentration] = field(default_factory=list)
    custom: CustomConcentration | None = None


def read_baxter(path: Path) -> ImportResult:
    """Import a Sigma Spectrum report; every row the model cannot hold is listed in the report.

    Raises:
        LibraryFormatError: the workbook has no FullList sheet or its header block is incomplete.
    """
    workbook = open_workbook(path)
    try:
        if FULL_LIST not in workbook.sheetnames:
            raise LibraryFormatError("Baxter report has no sheet 'FullList'", code="library.format_sheet")
        rows = [tuple(r) for r in workbook[FULL_LIST].iter_rows(values_only=True)]
        discrete = (
            [tuple(r) for r in workbook[DISCRETE_LIST].iter_rows(values_only=True)]
            if DISCRETE_LIST in workbook.sheetnames
            else None
        )
    finally:
        workbook.close()
    return _Importer(path.name).run(rows, discrete)


def baxter_unit(text: str) -> DoseUnit:
    """A Sigma dose mode or amount unit ('mcg/kg/min', 'Units/hr', 'mUnits/min') in our vocabulary."""
    parts = text.strip().split("/")
    parts[0] = _VENDOR_SPELLINGS.get(parts[0].lower(), parts[0])
    return DoseUnit.parse("/".join(parts))


def _trimmed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    end = len(row)
    while end and cell_text(row[end - 1]) == "":
        end -= 1
    return row[:end]


def _number(value: object, what: str) -> Decimal | None:
    return cell_decimal(value, what=what)


def _limits(values: tuple[Any, ...], what: str) -> tuple[LimitSet, Decimal | None]:
    """Five cells (lower hard, lower soft, start, upper soft, upper hard) as limits and default."""
    low_hard, low_soft, start, up_soft, up_hard = (_number(v, what) for v in values)
    return LimitSet(hard_min=low_hard, soft_min=low_soft, soft_max=up_soft, hard_max=up_hard), start


def _minutes(value: object, unit: str) -> Decimal | None:
    """A time cell in the row's unit as minutes, converted exactly as ``parse_duration_min`` does
    ('sec' divides by 60); 'min:sec' cells are stored by Excel as h:mm (01:30 is 1.5 minutes)."""
    if unit != _MIN_SEC:
        number = _number(value, "time limit")
        if number is None or number == 0:
            return number
        if number < 0:
            raise LibraryFormatError(f"time limit: {number} is negative", code="library.format_number")
        return parse_duration_min(f"{format_decimal(number)} {unit}")
    if isinstance(value, datetime.time):
        microseconds = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
        return Decimal(microseconds) / _MICROSECONDS_PER_HOUR
    if isinstance(value, datetime.timedelta):
        return Decimal(value // datetime.timedelta(microseconds=1)) / _MICROSECONDS_PER_HOUR
    return _number(value, _MIN_SEC)


class _Importer:
    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.report = ReportBuilder(source=file_name, format=FORMAT)
        self.header: dict[str, str] = {}
        self.areas: list[CareArea] = []
        self.drug_ids: dict[str, str] = {}
        self.groups: dict[tuple[str, str, str], list[_Group]] = {}
        self.last_entry_key: tuple[tuple[str, str, str], int] | None = None
        self.loading_minutes: dict[tuple[tuple[str, str, str], int], Bounds] = {}

    def run(self, rows: list[tuple[Any, ...]], discrete: list[tuple[Any, ...]] | None) -> ImportResult:
        index = self._header(rows)
        area = self._start_area(cell_text(rows[index][0])[len(_CARE_AREA_PREFIX) :].strip())
        state = "area"
        index += 1
        while index < len(rows):
            number, row = index + 1, _trimmed(rows[index])
            index += 1
            first = cell_text(row[0]) if row else ""
            if first.startswith(_CARE_AREA_PREFIX):
                area = self._start_area(first[len(_CARE_AREA_PREFIX) :].strip())
                state = "area"
                continue
            if not row or (
                (first in ("END OF REPORT", "Continuous Drugs", "BASIC") or state == "basic")
                and len(row) == 1
            ):
                state = {"Continuous Drugs": "drugs", "BASIC": "basic"}.get(first, state)
                continue
            if (
                first in ("Patient Weight", "Lower Hard Limit", "Drug")
                or first.startswith("¹")
                or (
                    not first
                    and cell_text(row[-1]) in ("Care Area", "Limit", "Alarm", "Change", "(mL/hr)", "Run")
                )
            ):
                continue
            if state == "area":
                area = self._area_settings(area, row, number)
            elif first == "BASIC":
                area = self._basic(area, row, number)
            elif state == "drugs" and first:
                self._drug_row(area, row, number)
            elif not first and len(row) > 16 and cell_text(row[16]) in _TIME_UNITS:
                self._time_row(row, number)
            elif state == "basic" and not first:
                self.report.represented(FULL_LIST)
            else:
                self.report.skip(
                    FULL_LIST, number, first or "(blank drug)", "row not recognised in the report"
                )
            self.areas[-1] = area
        self._discrete(rows, discrete)
        return self._finish()

    def _header(self, rows: list[tuple[Any, ...]]) -> int:
        """Read the header block (after the report title in row 1) up to the first 'Care Area:' row,
        whose index is returned; any other non-blank row there is reported."""
        for index, raw in enumerate(rows):
            row = _trimmed(raw)
            first = cell_text(row[0]) if row else ""
            if first.startswith(_CARE_AREA_PREFIX):
                return index
            if index == 0 or not row:
                continue
            if first.endswith(":") and len(row) <= 2:
                value = row[1] if len(row) == 2 else None
                text = value.isoformat() if isinstance(value, datetime.datetime) else cell_text(value)
                self.header[first.rstrip(":")] = text
                self.report.represented(FULL_LIST)
            else:
                self.report.skip(
                    FULL_LIST,
                    index + 1,
                    first or "(blank first cell)",
                    "row before the first care area is not a 'Name: value' header row",
                )
        raise LibraryFormatError("FullList has no 'Care Area:' block", code="library.format_baxter")

    def _start_area(self, name: str) -> CareArea:
        area = CareArea(id=slug(name), name=name)
        self.areas.append(area)
        self.last_entry_key = None
        return area

    def _area_settings(self, area: CareArea, row: tuple[Any, ...], number: int) -> CareArea:
        try:
            weights = [None if cell_text(v) in ("", "-") else parse_weight_kg(cell_text(v)) for v in row[:4]]
            limits = LimitSet(
                hard_min=weights[0], soft_min=weights[1], soft_max=weights[2], hard_max=weights[3]
            )
        except SmartpumpError as error:
            self.report.skip(FULL_LIST, number, area.name, f"patient weight limits: {error.message}")
            return area
        self.report.represented(FULL_LIST)
        self.report.note(
            "Care-area weight confirmation, auto keypad lock and the downstream-pressure default setting "
            "(Low/Medium/High, not mmHg) are not held; patient weight limits are."
        )
        return replace(area, weight_kg=Bounds(limits=limits))

    def _basic(self, area: CareArea, row: tuple[Any, ...], number: int) -> CareArea:
        self.last_entry_key = None
        try:
            limits, start = _limits(tuple(row[5:10]), "BASIC rate")
        except SmartpumpError as error:
            self.report.skip(FULL_LIST, number, f"{area.name} / BASIC", error.message)
            return area
        self.report.represented(FULL_LIST)
        return replace(
            area,
            basic_infusion=BasicInfusionPolicy(
                allowed=True, rate_ml_per_h=Bounds(limits=limits, default=start)
            ),
        )

    def _drug_id(self, label: str) -> str:
        """The id ``label`` has, or gets once its row is accepted; registers nothing."""
        found = self.drug_ids.get(label)
        if found is None:
            base = slug(match_key(label))
            found, suffix = base, 2
            while found in self.drug_ids.values():
                found, suffix = f"{base}-{suffix}", suffix + 1
        return found

    def _drug_row(self, area: CareArea, row: tuple[Any, ...], number: int) -> None:
        cells = row + (None,) * (36 - len(row))
        label = cell_text(cells[0])
        try:
            entry, concentration, custom = self._entry(area, cells)
        except SmartpumpError as error:
            self.report.skip(FULL_LIST, number, f"{area.name} / {label}", error.message)
            self.last_entry_key = None
            return
        self.drug_ids.setdefault(label, entry.drug_id)
        key = (area.id, entry.drug_id, slug(str(entry.dose.unit)))
        groups = self.groups.setdefault(key, [])
        position = next(
            (i for i, g in enumerate(groups) if g.template == entry and (custom is None or g.custom is None)),
            None,
        )
        if position is None:
            groups.append(_Group(template=entry))
            position = len(groups) - 1
        group = groups[position]
        if concentration is not None:
            group.concentrations.append(concentration)
        if custom is not None:
            group.custom = custom
        self.last_entry_key = (key, position)
        self.report.represented(FULL_LIST)

    def _entry(
        self, area: CareArea, cells: tuple[Any, ...]
    ) -> tuple[Entry, Concentration | None, CustomConcentration | None]:
        label = cell_text(cells[0])
        conc_text = cell_text(cells[3])
        concentration: Concentration | None = None
        custom: CustomConcentration | None = None
        if conc_text.startswith("Variable"):
            words = conc_text.split()
            if len(words) < 2:
                raise LibraryFormatError(
                    f"variable concentration {conc_text!r} names no amount unit",
                    code="library.format_concentration",
                )
            unit = baxter_unit(words[1].split("/")[0])
            low_hard, low_soft, up_soft, up_hard = (_number(v, "concentration limit") for v in cells[4:8])
            custom = CustomConcentration(
                unit=unit.amount,
                limits=LimitSet(hard_min=low_hard, soft_min=low_soft, soft_max=up_soft, hard_max=up_hard),
            )
        elif conc_text != "mL mode":
            amount_text, _, amount_unit = cell_text(cells[1]).partition(" ")
            amount = _number(amount_text, "drug amount")
            volume = _number(cells[2], "diluent volume")
            if amount is None and volume is None:
                per_ml, _, unit_text = conc_text.partition(" ")
                amount, volume = _number(per_ml, "concentration"), Decimal(1)
                amount_unit = unit_text.split("/")[0]
            if amount is None or volume is None:
                raise LibraryFormatError(
                    f"concentration {conc_text!r} without drug amount and diluent volume"
                )
            concentration = Concentration(amount, baxter_unit(amount_unit).amount, volume)
        dose_unit = baxter_unit(cell_text(cells[8]))
        dose_limits, start = _limits(tuple(cells[9:14]), "dose/rate limit")
        delivery = cell_text(cells[15])
        bolus_unit = cell_text(cells[16])
        bolus = self._optional_dose(cells[17:22], bolus_unit, "bolus")
        loading = self._optional_dose(cells[22:27], bolus_unit, "load")
        template = Entry(
            id="",
            care_area_id=area.id,
            drug_id=self._drug_id(label),
            dose=DoseLimits(unit=dose_unit, limits=dose_limits, default=start),
            mode=DeliveryMode.RATE if dose_unit.is_volume else DeliveryMode.CONTINUOUS,
            concentrations=(),
            rate_ml_per_h=Bounds(limits=dose_limits, default=start) if dose_unit.is_volume else Bounds(),
            vtbi_ml=Bounds(default=_number(cells[14], "VTBI")),
            bolus=bolus,
            loading=loading,
            allows_secondary=delivery in ("P or S", "P w S"),
            provenance=f"Baxter {FULL_LIST}",
        )
        return template, concentration, custom

    def _optional_dose(self, values: tuple[Any, ...], unit_text: str, what: str) -> DoseLimits | None:
        if cell_text(values[0]) in _NOT_ALLOWED:
            return None
        if not unit_text or unit_text == "-":
            raise LibraryFormatError(f"{what} limits without an amount unit")
        limits, start = _limits(tuple(values), f"{what} limit")
        return DoseLimits(unit=baxter_unit(unit_text), limits=limits, default=start)

    def _time_row(self, row: tuple[Any, ...], number: int) -> None:
        """Load-dose time limits of the drug row above; a time row under no imported drug row is reported.

        Raises:
            LibraryFormatError: a time cell is not a number or the limits are out of order; the message
                names the sheet and row.
        """
        if self.last_entry_key is None:
            self.report.skip(FULL_LIST, number, "(time row)", "time row not under an imported drug row")
            return
        cells = row + (None,) * (36 - len(row))
        if cell_text(cells[22]) != "":
            unit = cell_text(cells[16])
            try:
                low_hard, low_soft, start, up_soft, up_hard = (_minutes(v, unit) for v in cells[22:27])
                limits = LimitSet(hard_min=low_hard, soft_min=low_soft, soft_max=up_soft, hard_max=up_hard)
                bounds = Bounds(limits=limits, default=start)
            except SmartpumpError as error:
                raise LibraryFormatError(
                    f"{FULL_LIST} row {number}: load-dose time limits: {error.message}", code=error.code
                ) from None
            self.loading_minutes[self.last_entry_key] = bounds
        self.report.represented(FULL_LIST)
        self.report.note(
            "Bolus delivery-time limits (time rows under bolus drugs) are not held; load-dose times are "
            "held as loading_duration_min."
        )

    def _discrete(self, rows: list[tuple[Any, ...]], discrete: list[tuple[Any, ...]] | None) -> None:
        if discrete is None:
            return
        full = {_trimmed(r) for r in rows}
        for number, raw in enumerate(discrete, start=1):
            row = _trimmed(raw)
            first = cell_text(row[0]) if row else ""
            if (
                not row
                or first == "Drug"
                or (not first and cell_text(row[-1]) in ("Run", "(mL/hr)", "Alarm"))
            ):
                continue
            if row in full:
                self.report.represented(DISCRETE_LIST)
            else:
                self.report.skip(DISCRETE_LIST, number, first, "DiscreteList row matches no FullList row")
        self.report.note(
            "DiscreteList repeats FullList drug rows without their care areas; each of its rows is checked "
            "against FullList and counted as represented when an identical FullList row exists."
        )

    def _finish(self) -> ImportResult:
        entries: list[Entry] = []
        for key, groups in self.groups.items():
            for index, group in enumerate(groups):
                entry = replace(
                    group.template,
                    id=".".join((*key, str(index + 1))),
                    concentrations=tuple(group.concentrations),
                    custom_concentration=group.custom,
                    loading_duration_min=self.loading_minutes.get((key, index), Bounds()),
                )
                entries.append(entry)
        name = self.header.get("Library Name", "")
        version_text = self.header.get("Version", "")
        if not name or not (version_text.isascii() and version_text.isdigit()):
            raise LibraryFormatError(
                "FullList header block lacks 'Library Name' or a numeric 'Version'",
                code="library.format_baxter",
            )
        note = "; ".join(
            f"{k} {v}"
            for k, v in self.header.items()
            if k not in ("Library Name", "Version", "Keypad Lock Code")
        )
        self.report.note(
            "The Sigma report names no hospital: hospital_id is the slug of the library name. The keypad "
            "lock code is not imported (a credential). Entry kind is 'medication' for every row (the "
            "report does not classify fluids or blood products)."
        )
        self.report.note(
            "Not held per drug row: secondary callback, single-step rate change, audio alarm, "
            "bag near empty, completion alarms, upstream occlusion, KVO rate, delay run and advisory flag."
        )
        library = DrugLibrary(
            name=name,
            version=int(version_text),
            hospital_id=slug(name),
            drugs=tuple(
                Drug(id=i, generic_name=label, display_name=label) for label, i in self.drug_ids.items()
            ),
            care_areas=tuple(self.areas),
            entries=tuple(entries),
            status=LibraryStatus.DRAFT,
            provenance=Provenance(
                source=f"Baxter Sigma Spectrum master drug library {name}",
                imported_from=self.file_name,
                note=note,
                is_example=False,
            ),
        )
        library, flags = flag_high_alert(library, self.report, source_has_flags=False)
        return ImportResult(library=library, report=self.report.build(library, high_alert=flags))
