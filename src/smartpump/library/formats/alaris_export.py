"""Write a DrugLibrary in the BD Alaris Guardrails data-set report layout the importer reads (.xlsx).

Every sheet the importer needs is written (header in row 2 under a title row): care areas as profiles
(PC Unit, Pump, PCA, PCA Pause and EtCO2 config), continuous entries in the ContBolus sheets (one row
per concentration, custom concentrations as '- -' rows), intermittent entries, IV fluids, PCA entries
(PCA Drugs, the columns of the Guardrails v12 report), the master drug, fluid, therapy, advisory,
channel-label and syringe lists. The layout cannot carry everything the model holds (e.g. dose hard
minima, drug aliases and classes, entry routes, a PCA basal in another unit than the PCA dose per hour):
what it drops is found by re-importing the file and comparing (``vendor_roundtrip.losses``), never
guessed here.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from openpyxl import Workbook

from smartpump.errors import LibraryFormatError
from smartpump.library.formats.alaris import alaris_version
from smartpump.library.formats.alaris_layout import (
    CUSTOM,
    SECTION_ANES,
    SECTION_CONT,
    SECTION_FLUIDS,
    SECTION_INT,
    SECTION_PCA,
)
from smartpump.library.formats.xlsx_format import append_literal_row
from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    Bounds,
    CareArea,
    DeliveryMode,
    DeviceDefaults,
    DeviceType,
    DoseLimits,
    DrugLibrary,
    Entry,
    EntryKind,
    PCASettings,
)
from smartpump.units import Concentration

_CONC_COLUMNS: Final = [
    "Drug Amount (- - = custom concentration)",
    "Drug Amount Units",
    "Diluent Volume (- - = custom concentration)",
    "Diluent Volume Units",
    "Final Concentration",
    "Final Concentration Units",
    "Module Availability",
]
CONT_COLUMNS: Final = [
    "Line Item",
    "Profile",
    "Drug Name",
    "Therapy Name",
    *_CONC_COLUMNS,
    "Dosing Units",
    "Dose Limits Soft Min",
    "Dose Limits Soft Max",
    "Dose Limits Hard Max",
    "Dose Initial Value",
    "Bolus Dose Units",
    "Bolus Dose Limits Soft Min",
    "Bolus Dose Limits Soft Max",
    "Bolus Dose Limits Hard Max",
    "Bolus Dose Limits Initial Value",
    "Bolus Dose Admin. Rate Units",
    "Bolus Dose Admin. Rate Limits Soft Min",
    "Bolus Dose Admin. Rate Limits Soft Max",
    "Bolus Dose Admin. Rate Limits Hard Max",
    "Bolus Dose Admin. Rate Initial Value",
    "Conc. Limit Units",
    "Conc. Limits Hard Min",
    "Conc. Limits Soft Min",
    "Conc. Limits Soft Max",
    "Clinical Advisory",
]
INT_COLUMNS: Final = [
    "Line Item",
    "Profile",
    "Drug Name",
    "Therapy Name",
    *_CONC_COLUMNS,
    "Available As",
    "Duration Limits (hh:mm) Hard Min",
    "Duration Limits (hh:mm) Soft Min",
    "Duration Limits (hh:mm) Soft Max",
    "Duration (hh:mm) Initial Value",
    "Dosing Units",
    "Dose Limits Soft Min",
    "Dose Limits Soft Max",
    "Dose Limits Hard Max",
    "Conc. Units",
    "Conc. Limits Hard Min",
    "Conc. Limits Soft Min",
    "Conc. Limits Soft Max",
    "Clinical Advisory",
]
FLUID_COLUMNS: Final = [
    "Line Item",
    "Profile",
    "Fluid Name",
    "Therapy Name",
    "Module Availability",
    "Supports Secondary (Y/N)",
    "Rate Units",
    "Rate Limits (mL/h) Soft Min",
    "Rate Limits (mL/h) Soft Max",
    "Rate Limits (mL/h) Hard Max",
    "Clinical Advisory",
]
PCA_COLUMNS: Final = [
    "Line Item",
    "Profile",
    "Drug Name",
    "Therapy Name",
    "Drug Amount",
    "Drug Amount Units",
    "Diluent Volume",
    "Diluent Volume Units",
    "Final Concentration",
    "Final Concentration Units",
    "Max Accumulated Lockout",
    "Dosing Units",
    "Max Accumulated Dose Range Soft Min",
    "Max Accumulated Dose Range Soft Max",
    "Max Accumulated Dose Range Hard Max",
    "Max Accumulated Dose Range Initial Value",
    "PCA Dose Limits Soft Min",
    "PCA Dose Limits Soft Max",
    "PCA Dose Limits Hard Max",
    "PCA Dose Limits Initial Value",
    "Lock Out Interval (minutes) Hard Min",
    "Lock Out Interval (minutes) Soft Min",
    "Lock Out Interval (minutes) Soft Max",
    "Lock Out Interval (minutes) Initial Value",
    "Continuous Dose Limits Soft Min",
    "Continuous Dose Limits Soft Max",
    "Continuous Dose Limits Hard Max",
    "Continuous Dose Limits Initial Value",
    "Bolus Dose Limits Soft Min",
    "Bolus Dose Limits Soft Max",
    "Bolus Dose Limits Hard Max",
    "Bolus Dose included in Accum Max Dose (Y/N)",
    "Loading Dose Limits Soft Min",
    "Loading Dose Limits Soft Max",
    "Loading Dose Limits Hard Max",
    "Conc. Units",
    "Conc. Limits Hard Min",
    "Conc. Limits Soft Min",
    "Conc. Limits Soft Max",
    "Supports PCA Pause Protocol (Y/N)",
    "Clinical Advisory",
]
_PC_UNIT_COLUMNS: Final = [
    "Line Item",
    "Profile",
    "Max Patient BSA (m2)",
    "Max Patient Weight (kg)",
    "No Guardrails Basic Infusion Clinical Advisory",
    "Clinical Advisory Message",
]
_PUMP_COLUMNS: Final = [
    "Line Item",
    "Profile",
    "Accumulated Air-In-Line",
    "Air In Line (microliter)",
    "Auto-Restart Attempts",
    "KVO Rate Adjust (mL/h)",
    "Max Occlusion Pressure (mmHg)",
    "Default Pressure (mmHg)",
    "Maximum Rate (mL/h)",
    "Maximum VTBI (mL)",
    "Secondary Infusion",
]
_PCA_COLUMNS: Final = [
    "Line Item",
    "Profile",
    "Bolus Delivery Rate (mL/h)",
    "Max Dose Limit",
    "Time Window (h)",
]
_PAUSE_COLUMNS: Final = ["Line Item", "Profile", "PCA Pause Protocol Enabled", "PCA Pause Protocol"]
_ETCO2_COLUMNS: Final = ["Line Item", "Profile", "PCA Pause Resp. Rate Initial Value (bpm)"]
_EMPTY_SHEETS: Final = {
    "Syringe Config": ["Line Item", "Profile"],
    "Pump & Syringe Shared Config": ["Line Item", "Profile"],
    "PCA & Syringe Shared Config": ["Line Item", "Profile"],
}
_DEVICE_WORDS: Final = {DeviceType.LARGE_VOLUME: "Pump", DeviceType.SYRINGE: "Syringe"}


def cell_number(value: Decimal | int | None) -> int | float | str | None:
    """A number as a cell: int when whole, float when its shortest repr is exact, else exact text."""
    if value is None or isinstance(value, int):
        return value
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else format(value, "f")


def _enabled(flag: bool) -> str:
    return "Enabled" if flag else "Disabled"


def _hhmm(minutes: Decimal | None) -> str | None:
    """Minutes as 'h:mm'; a fraction of a minute cannot be written and is refused."""
    if minutes is None:
        return None
    if minutes != minutes.to_integral_value() or minutes < 0:
        raise LibraryFormatError(
            f"duration {minutes} min is not a whole number of minutes (the Alaris layout holds hh:mm)",
            code="library.export_duration",
        )
    whole = int(minutes)
    return f"{whole // 60}:{whole % 60:02d}"


def _modules(entry: Entry) -> str:
    devices = entry.devices or (DeviceType.LARGE_VOLUME, DeviceType.SYRINGE)
    return ", ".join(_DEVICE_WORDS[d] for d in devices if d in _DEVICE_WORDS) or "Pump"


def _soft_soft_hard(limits: LimitSet) -> list[Any]:
    return [cell_number(limits.soft_min), cell_number(limits.soft_max), cell_number(limits.hard_max)]


def _optional_dose(dose: DoseLimits | None) -> list[Any]:
    if dose is None:
        return [None] * 5
    return [str(dose.unit), *_soft_soft_hard(dose.limits), cell_number(dose.default)]


class _Writer:
    def __init__(self, library: DrugLibrary) -> None:
        self.library = library
        self.workbook = Workbook()
        self.advisories: dict[str, str] = {}
        self.sheets: dict[str, list[list[Any]]] = {
            SECTION_CONT: [],
            SECTION_ANES: [],
            SECTION_INT: [],
            SECTION_FLUIDS: [],
            SECTION_PCA: [],
        }

    def run(self) -> Workbook:
        library = self.library
        for entry in library.entries:
            self._entry(entry)
        default = self.workbook.active
        assert default is not None
        self.workbook.remove(default)
        self._properties()
        self._sheet(SECTION_CONT, CONT_COLUMNS, self.sheets[SECTION_CONT])
        self._sheet(SECTION_ANES, CONT_COLUMNS[:-1], [r[:-1] for r in self.sheets[SECTION_ANES]])
        self._sheet(SECTION_INT, INT_COLUMNS, self.sheets[SECTION_INT])
        self._sheet(SECTION_FLUIDS, FLUID_COLUMNS, self.sheets[SECTION_FLUIDS])
        self._sheet(SECTION_PCA, PCA_COLUMNS, self.sheets[SECTION_PCA])
        self._care_areas(library.care_areas)
        for title, columns in _EMPTY_SHEETS.items():
            self._sheet(title, columns, [])
        self._masters()
        return self.workbook

    def _sheet(self, title: str, columns: Sequence[str], rows: Iterable[list[Any]]) -> None:
        sheet = self.workbook.create_sheet(title)
        sheet.append([title])
        sheet.append(list(columns))
        for number, row in enumerate(rows, start=1):
            append_literal_row(sheet, [number, *row], f"{title} line {number}", code="library.export_text")

    def _properties(self) -> None:
        library = self.library
        name = library.name
        if alaris_version(name) != library.version:
            name = f"{name} v{library.version}"
        sheet = self.workbook.create_sheet("Data Set Properties")
        sheet.append(["Data Set Properties"])
        for key, value in (
            ("Data Set Name:", name),
            ("Hospital Name:", library.hospital_id),
            ("Status:", library.status.value),
            ("Data Set ID:", ""),
        ):
            sheet.append([key, value])

    def _advisory(self, text: str | None) -> str | None:
        if text is None:
            return None
        return self.advisories.setdefault(text, f"Advisory {len(self.advisories) + 1}")

    def _entry(self, entry: Entry) -> None:
        area = self.library.care_area(entry.care_area_id).name
        drug = self.library.drug(entry.drug_id).shown_name
        advisory = self._advisory(entry.advisory)
        if entry.kind is EntryKind.IV_FLUID and entry.mode is DeliveryMode.RATE:
            limits = entry.rate_ml_per_h.limits if entry.rate_ml_per_h != Bounds() else entry.dose.limits
            self.sheets[SECTION_FLUIDS].append(
                [
                    area,
                    drug,
                    entry.therapy,
                    _modules(entry),
                    "Y" if entry.allows_secondary else "N",
                    "mL/h",
                    *_soft_soft_hard(limits),
                    advisory,
                ]
            )
            return
        for concentration in self._bags(entry):
            if entry.mode is DeliveryMode.PCA:
                self.sheets[SECTION_PCA].append(self._pca_row(entry, area, drug, concentration, advisory))
                continue
            if entry.mode is DeliveryMode.INTERMITTENT:
                self.sheets[SECTION_INT].append(
                    self._intermittent_row(entry, area, drug, concentration, advisory)
                )
            else:
                section = SECTION_ANES if entry.provenance == f"Alaris {SECTION_ANES}" else SECTION_CONT
                self.sheets[section].append(self._cont_row(entry, area, drug, concentration, advisory))

    @staticmethod
    def _bags(entry: Entry) -> list[Concentration | None]:
        bags: list[Concentration | None] = list(entry.concentrations)
        if entry.custom_concentration is not None or not bags:
            bags.append(None)
        return bags

    def _concentration_cells(self, entry: Entry, bag: Concentration | None) -> tuple[list[Any], list[Any]]:
        """The concentration columns and the concentration-limit columns of one row."""
        custom = entry.custom_concentration
        if bag is not None:
            per_ml = cell_number(bag.per_ml)
            cells = [cell_number(bag.amount), str(bag.unit), cell_number(bag.volume_ml), "mL", per_ml]
            return [*cells, f"{bag.unit}/mL", _modules(entry)], ["n/a", None, None, None]
        unit = custom.unit if custom is not None else entry.dose.unit.amount
        limits = custom.limits if custom is not None else LimitSet()
        units = f"{unit}/mL" if custom is not None else "no"
        cells = [CUSTOM, str(unit), CUSTOM, "mL", None, None, _modules(entry)]
        return cells, [
            units,
            cell_number(limits.hard_min),
            cell_number(limits.soft_min),
            cell_number(limits.soft_max),
        ]

    def _cont_row(
        self, entry: Entry, area: str, drug: str, bag: Concentration | None, advisory: str | None
    ) -> list[Any]:
        conc, conc_limits = self._concentration_cells(entry, bag)
        return [
            area,
            drug,
            entry.therapy,
            *conc,
            str(entry.dose.unit),
            *_soft_soft_hard(entry.dose.limits),
            cell_number(entry.dose.default),
            *_optional_dose(entry.bolus),
            *_optional_dose(entry.bolus_rate),
            *conc_limits,
            advisory,
        ]

    def _intermittent_row(
        self, entry: Entry, area: str, drug: str, bag: Concentration | None, advisory: str | None
    ) -> list[Any]:
        conc, conc_limits = self._concentration_cells(entry, bag)
        duration = entry.duration_min.limits
        return [
            area,
            drug,
            entry.therapy,
            *conc,
            "Primary or secondary" if entry.allows_secondary else "Primary",
            _hhmm(duration.hard_min),
            _hhmm(duration.soft_min),
            _hhmm(duration.soft_max),
            _hhmm(entry.duration_min.default),
            str(entry.dose.unit),
            *_soft_soft_hard(entry.dose.limits),
            *conc_limits,
            advisory,
        ]

    def _pca_row(
        self, entry: Entry, area: str, drug: str, bag: Concentration | None, advisory: str | None
    ) -> list[Any]:
        """One PCA Drugs row: every PCA dose in the one dosing unit, the basal in that unit per hour (a
        limit in another unit is left blank and shows as a loss), the window from the profile's PCA Config."""
        pca = entry.pca
        assert pca is not None
        unit = pca.demand_dose.unit
        conc, conc_limits = self._concentration_cells(entry, bag)

        def in_unit(dose: DoseLimits | None, wanted: str, initial: bool = True) -> list[Any]:
            if dose is None or str(dose.unit) != wanted:
                return [None] * (4 if initial else 3)
            cells = _soft_soft_hard(dose.limits)
            return [*cells, cell_number(dose.default)] if initial else cells

        lockout = pca.lockout_min
        return [
            area,
            drug,
            entry.therapy,
            *conc[:6],
            None,
            str(unit),
            *in_unit(pca.max_dose, str(unit)),
            *in_unit(pca.demand_dose, str(unit)),
            cell_number(lockout.limits.hard_min),
            cell_number(lockout.limits.soft_min),
            cell_number(lockout.limits.soft_max),
            cell_number(lockout.default),
            *in_unit(pca.basal, f"{unit}/h"),
            *in_unit(pca.clinician_bolus, str(unit), initial=False),
            None if pca.clinician_bolus is None else "Y",
            *in_unit(pca.loading_dose, str(unit), initial=False),
            *conc_limits,
            "Y" if self.library.care_area(entry.care_area_id).pca.pause_enabled else "N",
            advisory,
        ]

    def _care_areas(self, areas: Sequence[CareArea]) -> None:
        units, pumps, pcas, pauses, etco2s = [], [], [], [], []
        for area in areas:
            message = area.basic_infusion.advisory
            units.append(
                [
                    area.name,
                    cell_number(area.bsa_m2.limits.hard_max),
                    cell_number(area.weight_kg.limits.hard_max),
                    _enabled(message is not None),
                    message or "n/a",
                ]
            )
            device = area.device
            if device != DeviceDefaults() or area.max_rate_ml_per_h is not None:
                pumps.append(
                    [
                        area.name,
                        _enabled(device.accumulated_air_in_line),
                        cell_number(device.air_in_line_ul),
                        device.auto_restart_attempts,
                        cell_number(device.kvo_rate_ml_per_h),
                        cell_number(device.max_occlusion_pressure_mmhg),
                        cell_number(device.occlusion_pressure_mmhg),
                        cell_number(device.max_rate_ml_per_h or area.max_rate_ml_per_h),
                        cell_number(device.max_vtbi_ml),
                        _enabled(device.secondary_allowed),
                    ]
                )
            pca = area.pca
            if pca.bolus_delivery_rate_ml_per_h is not None or pca.max_dose_window_h is not None:
                window = pca.max_dose_window_h
                pcas.append(
                    [
                        area.name,
                        cell_number(pca.bolus_delivery_rate_ml_per_h),
                        _enabled(window is not None),
                        window,
                    ]
                )
            if pca != PCASettings():
                pauses.append([area.name, _enabled(pca.pause_enabled), pca.pause_message])
                etco2s.append([area.name, cell_number(pca.pause_resp_rate_min_bpm)])
        self._sheet("PC Unit Config", _PC_UNIT_COLUMNS, units)
        self._sheet("Pump Config", _PUMP_COLUMNS, pumps)
        self._sheet("PCA Config", _PCA_COLUMNS, pcas)
        self._sheet("PCA Pause Protocol", _PAUSE_COLUMNS, pauses)
        self._sheet("EtCO2 Config", _ETCO2_COLUMNS, etco2s)

    def _masters(self) -> None:
        library = self.library
        fluid_ids = {
            e.drug_id for e in library.entries if e.kind is EntryKind.IV_FLUID and e.mode is DeliveryMode.RATE
        }
        drugs = [
            [d.shown_name, None, None, ", ".join(d.ehr_codes)] for d in library.drugs if d.id not in fluid_ids
        ]
        fluids = [[d.shown_name, None, ", ".join(d.ehr_codes)] for d in library.drugs if d.id in fluid_ids]
        self._sheet("Master Drugs", ["Line Item", "Drug Name", "Concentration", "Used As", "Aliases"], drugs)
        self._sheet("Master Fluids", ["Line Item", "Fluid Name", "Supports Secondary", "Aliases"], fluids)
        self._sheet(
            "Master Clinical Advisories",
            ["Line Item", "Advisory Name", "Advisory Text"],
            [[name, text] for text, name in self.advisories.items()],
        )
        therapies = dict.fromkeys(e.therapy for e in library.entries if e.therapy)
        self._sheet("Master Therapies", ["Line Item", "Therapy"], [[t] for t in therapies])
        labels = dict.fromkeys(label for area in library.care_areas for label in area.channel_labels)
        self._sheet("Channel Labels", ["Line Item", "Channel Label"], [[label] for label in labels])
        pca_prefix = "PCA: "
        syringes = [[s, "TRUE"] for s in library.syringes if not s.startswith(pca_prefix)]
        pca_syringes = [
            [s.removeprefix(pca_prefix), "TRUE"] for s in library.syringes if s.startswith(pca_prefix)
        ]
        self._sheet("Master Syringe List", ["Line Item", "Syringe Type", "Included?"], syringes)
        self._sheet("Master PCA Syringe List", ["Line Item", "PCA Syringe Type", "Included?"], pca_syringes)


def dumps(library: DrugLibrary) -> bytes:
    """The library as Alaris report .xlsx bytes.

    Raises:
        LibraryFormatError: a value the layout cannot write at all (a duration in fractions of a minute,
            text a workbook cannot store), naming it.
    """
    buffer = io.BytesIO()
    _Writer(library).run().save(buffer)
    return buffer.getvalue()


def write_alaris(library: DrugLibrary, path: Path | str) -> None:
    """Write the library as an Alaris Guardrails data-set report to ``path`` (see ``dumps``)."""
    Path(path).write_bytes(dumps(library))
