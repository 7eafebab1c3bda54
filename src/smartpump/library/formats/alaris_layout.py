"""The BD Alaris Guardrails (Editor v12) data-set report layout: sheet and column names, and the cell
readers the importer (``alaris``) uses; the exporter (``alaris_export``) writes the same layout."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from smartpump.errors import LibraryFormatError, SmartpumpError
from smartpump.library.formats.detect import cell_decimal, cell_text
from smartpump.library.limits import LimitSet
from smartpump.library.model import DeviceDefaults, DeviceType
from smartpump.units import AmountUnit, Basis, DoseUnit

FORMAT: Final = "alaris-xlsx"
CUSTOM: Final = "- -"
NO_DRUGS: Final = "No drugs exist in this section"
SECTION_CONT: Final = "ContBolus Non-Anesth Drugs"
SECTION_ANES: Final = "ContBolus Anesth Drugs"
SECTION_INT: Final = "Intermittent Drugs"
SECTION_FLUIDS: Final = "Fluids"
SECTION_PCA: Final = "PCA Drugs"
SECTION_IDS: Final = {
    SECTION_CONT: "cont",
    SECTION_ANES: "anes",
    SECTION_INT: "int",
    SECTION_FLUIDS: "fluid",
    SECTION_PCA: "pca",
}
PCA_WINDOW_MAX_H: Final = 12
MINUTES_MAX: Final = 59
VERSION_RE: Final = re.compile(r"v(\d+)", re.IGNORECASE)
MASTER_CONC_RE: Final = re.compile(
    r"(?P<amount>[\d,.]+|---)\s*(?P<unit>[A-Za-z]+)\s*/\s*(?P<volume>[\d,.]+|---)\s*mL"
)


@dataclass(slots=True)
class Row:
    """One report row: its 1-based number and its values by column name."""

    number: int
    values: dict[str, Any]

    def text(self, column: str) -> str:
        """The cell as text ('' when blank or absent)."""
        return cell_text(self.values.get(column))

    def number_of(self, column: str) -> Decimal | None:
        """The cell as a number (None when blank); text that is no number is refused."""
        return cell_decimal(self.values.get(column), what=f"{column!r}")


def sheet_rows(workbook: Any, sheet: str, header_row: int = 2) -> Iterator[Row]:
    """The rows of an Alaris report sheet under its header row (blank rows left out), by column name."""
    if sheet not in workbook.sheetnames:
        raise LibraryFormatError(f"Alaris report has no sheet {sheet!r}", code="library.format_sheet")
    rows = workbook[sheet].iter_rows(values_only=True)
    header: Sequence[Any] = ()
    for number, values in enumerate(rows, start=1):
        if number == header_row:
            header = [" ".join(cell_text(h).split()) for h in values]
        elif number > header_row and any(cell_text(v) for v in values):
            yield Row(number, dict(zip(header, values, strict=False)))


def limits_of(
    hard_min: Decimal | None = None,
    soft_min: Decimal | None = None,
    soft_max: Decimal | None = None,
    hard_max: Decimal | None = None,
) -> LimitSet:
    """A LimitSet from the four bounds (any may be None)."""
    return LimitSet(hard_min=hard_min, soft_min=soft_min, soft_max=soft_max, hard_max=hard_max)


def hhmm_minutes(value: object, *, what: str) -> Decimal | None:
    """'hh:mm' (or a time cell) as minutes; blank -> None; minutes above 59 or seconds are refused."""
    if isinstance(value, datetime.time):
        if value.second or value.microsecond:
            raise LibraryFormatError(
                f"{what}: {value.isoformat()!r} carries seconds; hh:mm expected",
                code="library.format_duration",
            )
        return Decimal(value.hour * 60 + value.minute)
    text = cell_text(value)
    if not text or text.lower() == "n/a":
        return None
    match = re.fullmatch(r"(\d+):(\d{2})", text)
    if match is None:
        raise LibraryFormatError(f"{what}: {text!r} is not hh:mm", code="library.format_duration")
    if int(match[2]) > MINUTES_MAX:
        raise LibraryFormatError(
            f"{what}: {text!r} is not hh:mm (minutes {match[2]} above {MINUTES_MAX})",
            code="library.format_duration",
        )
    return Decimal(int(match[1]) * 60 + int(match[2]))


def amount_unit(text: str) -> AmountUnit:
    """An amount unit (mg, mcg, units...); a dose unit with a basis or time is refused."""
    unit = DoseUnit.parse(text)
    if unit.basis is not Basis.NONE or unit.time is not None:
        raise LibraryFormatError(f"{text!r} is not an amount unit", code="library.format_unit")
    return unit.amount


def per_ml_unit(text: str) -> AmountUnit:
    """The amount unit of an '<amount>/mL' concentration unit."""
    amount, _, volume = text.partition("/")
    if volume.strip().lower() != "ml":
        raise LibraryFormatError(
            f"concentration unit {text!r} is not <amount>/mL", code="library.format_unit"
        )
    return amount_unit(amount)


def devices_of(text: str) -> tuple[DeviceType, ...]:
    """The device types a 'Module Availability' text names (pump, syringe)."""
    lowered = text.lower()
    devices = []
    if "pump" in lowered:
        devices.append(DeviceType.LARGE_VOLUME)
    if "syringe" in lowered:
        devices.append(DeviceType.SYRINGE)
    if not devices:
        raise LibraryFormatError(f"unknown module availability {text!r}", code="library.format_module")
    return tuple(devices)


def enabled(text: str) -> bool:
    """True for the report's spellings of 'on' (Enabled, Yes, Y, True)."""
    return text.strip().lower() in ("enabled", "yes", "y", "true")


def whole_number(value: Decimal | None, *, what: str) -> int | None:
    """A count cell as an int; a fraction or a negative number is refused, never truncated."""
    if value is None:
        return None
    if value != value.to_integral_value() or value < 0:
        raise LibraryFormatError(
            f"{what}: {value} is not a whole number of 0 or more", code="library.format_number"
        )
    return int(value)


def master_number(text: str, what: str) -> Decimal:
    """A number of a Master Drugs concentration; a blank is refused."""
    number = cell_decimal(text, what=what)
    if number is None:
        raise LibraryFormatError(f"{what} is blank", code="library.format_concentration")
    return number


def config_error(sheet: str, row: Row, error: SmartpumpError) -> LibraryFormatError:
    """A config-sheet error naming its sheet, row and profile; the cause's code is kept."""
    return LibraryFormatError(
        f"{sheet} row {row.number} (profile {row.text('Profile')!r}): {error.message}", code=error.code
    )


def device_defaults(row: Row) -> DeviceDefaults:
    """A Pump Config row as device defaults."""
    return DeviceDefaults(
        occlusion_pressure_mmhg=row.number_of("Default Pressure (mmHg)"),
        max_occlusion_pressure_mmhg=row.number_of("Max Occlusion Pressure (mmHg)"),
        air_in_line_ul=row.number_of("Air In Line (microliter)"),
        accumulated_air_in_line=enabled(row.text("Accumulated Air-In-Line")),
        kvo_rate_ml_per_h=row.number_of("KVO Rate Adjust (mL/h)"),
        auto_restart_attempts=whole_number(
            row.number_of("Auto-Restart Attempts"), what="'Auto-Restart Attempts'"
        ),
        secondary_allowed=enabled(row.text("Secondary Infusion")),
        max_rate_ml_per_h=row.number_of("Maximum Rate (mL/h)"),
        max_vtbi_ml=row.number_of("Maximum VTBI (mL)"),
    )


def pca_window(value: Decimal | None) -> int | None:
    """The PCA max-dose window in whole hours, 1-12 (the range the model and the pump accept)."""
    window = whole_number(value, what="'Time Window (h)'")
    if window is not None and not 1 <= window <= PCA_WINDOW_MAX_H:
        raise LibraryFormatError(
            f"'Time Window (h)': {window} h is outside 1-{PCA_WINDOW_MAX_H} h", code="library.format_pca"
        )
    return window
