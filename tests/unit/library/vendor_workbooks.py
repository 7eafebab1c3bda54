"""Builders of small SYNTHETIC Alaris-like, Baxter-like and EHR-mapping-like .xlsx workbooks for
malformed-input tests. Built from scratch with made-up drugs and values (no row of a real export):
test data only, not a vendor export, not for clinical use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from openpyxl import Workbook

from smartpump.library.model import EXAMPLE_LABEL

SYNTHETIC_LABEL: Final = f"SYNTHETIC TEST WORKBOOK - {EXAMPLE_LABEL}"

Cell = object
Row = dict[str, Cell]

AMOUNT: Final = "Drug Amount (- - = custom concentration)"
VOLUME: Final = "Diluent Volume (- - = custom concentration)"
PROFILE: Final = "Synthetic Unit"

_DRUG_HEAD: Final = (
    "Line Item",
    "Profile",
    "Drug Name",
    "Therapy Name",
    AMOUNT,
    "Drug Amount Units",
    VOLUME,
    "Diluent Volume Units",
    "Module Availability",
)
ALARIS_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "ContBolus Non-Anesth Drugs": (
        *_DRUG_HEAD,
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
    ),
    "Intermittent Drugs": (
        *_DRUG_HEAD,
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
    ),
    "Fluids": (
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
    ),
    "PCA Drugs": ("Line Item", "Profile", "Drug Name"),
    "PC Unit Config": (
        "Line Item",
        "Profile",
        "Max Patient BSA (m2)",
        "Max Patient Weight (kg)",
        "No Guardrails Basic Infusion Clinical Advisory",
        "Clinical Advisory Message",
    ),
    "Pump Config": (
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
    ),
    "Syringe Config": ("Line Item", "Profile"),
    "Pump & Syringe Shared Config": ("Line Item", "Profile"),
    "PCA Config": ("Line Item", "Profile", "Bolus Delivery Rate (mL/h)", "Max Dose Limit", "Time Window (h)"),
    "PCA Pause Protocol": ("Line Item", "Profile", "PCA Pause Protocol Enabled", "PCA Pause Protocol"),
    "PCA & Syringe Shared Config": ("Line Item", "Profile"),
    "EtCO2 Config": ("Line Item", "Profile", "PCA Pause Resp. Rate Initial Value (bpm)"),
    "Master Drugs": ("Line Item", "Drug Name", "Concentration", "Used As", "Aliases"),
    "Master Fluids": ("Line Item", "Fluid Name", "Supports Secondary", "Aliases"),
    "Master Clinical Advisories": ("Line Item", "Advisory Name", "Advisory Text"),
    "Master Therapies": ("Line Item", "Therapy"),
    "Channel Labels": ("Line Item", "Label A", "Label B"),
    "Master Syringe List": ("Line Item", "Syringe Type", "Included?"),
    "Master PCA Syringe List": ("Line Item", "PCA Syringe Type", "Included?"),
}
CONT: Final = "ContBolus Non-Anesth Drugs"
ANES: Final = "ContBolus Anesth Drugs"
INT: Final = "Intermittent Drugs"
ALARIS_COLUMNS[ANES] = ALARIS_COLUMNS[CONT]

ALARIS_PROPERTIES: Final = {
    "Data Set Name": "Synthetic2099v7",
    "Hospital Name": "Synthetic Test Hospital",
    "Status": "Synthetic",
    "Data Set ID": "synthetic-0001",
}


def cont_row(**overrides: Cell) -> Row:
    """A valid synthetic continuous row (synthamycin 100 mg / 100 mL, mg/h); keys are column names."""
    row: Row = {
        "Profile": PROFILE,
        "Drug Name": "synthamycin",
        "Therapy Name": "",
        AMOUNT: 100,
        "Drug Amount Units": "mg",
        VOLUME: 100,
        "Diluent Volume Units": "mL",
        "Module Availability": "Pump",
        "Dosing Units": "mg/h",
        "Dose Limits Soft Min": 1,
        "Dose Limits Soft Max": 10,
        "Dose Limits Hard Max": 20,
        "Dose Initial Value": 5,
        "Conc. Limit Units": "n/a",
    }
    return {**row, **overrides}


def int_row(**overrides: Cell) -> Row:
    """A valid synthetic intermittent row (synthacillin 500 mg / 100 mL over hh:mm limits)."""
    row: Row = {
        "Profile": PROFILE,
        "Drug Name": "synthacillin",
        "Therapy Name": "",
        AMOUNT: 500,
        "Drug Amount Units": "mg",
        VOLUME: 100,
        "Diluent Volume Units": "mL",
        "Module Availability": "Pump",
        "Available As": "Primary and Secondary",
        "Duration Limits (hh:mm) Hard Min": "00:15",
        "Duration Limits (hh:mm) Soft Min": "00:20",
        "Duration Limits (hh:mm) Soft Max": "01:00",
        "Duration (hh:mm) Initial Value": "00:30",
        "Dosing Units": "mg",
        "Dose Limits Soft Min": 250,
        "Dose Limits Soft Max": 500,
        "Dose Limits Hard Max": 1000,
        "Conc. Units": "n/a",
    }
    return {**row, **overrides}


def fluid_row(**overrides: Cell) -> Row:
    """A valid synthetic fluid row (.Synthetic Fluid, mL/h limits)."""
    row: Row = {
        "Profile": PROFILE,
        "Fluid Name": ".Synthetic Fluid",
        "Therapy Name": "",
        "Module Availability": "Pump",
        "Supports Secondary (Y/N)": "Y",
        "Rate Units": "mL/h",
        "Rate Limits (mL/h) Soft Min": 1,
        "Rate Limits (mL/h) Soft Max": 500,
        "Rate Limits (mL/h) Hard Max": 999,
    }
    return {**row, **overrides}


def alaris_rows() -> dict[str, list[Row]]:
    """Data rows of the baseline synthetic Alaris workbook; every one of them imports."""
    return {
        CONT: [cont_row()],
        ANES: [],
        INT: [int_row()],
        "Fluids": [fluid_row()],
        "PCA Drugs": [],
        "PC Unit Config": [
            {
                "Profile": PROFILE,
                "Max Patient BSA (m2)": 3,
                "Max Patient Weight (kg)": 300,
                "No Guardrails Basic Infusion Clinical Advisory": "Enabled",
                "Clinical Advisory Message": "Synthetic basic-infusion advisory",
            }
        ],
        "Pump Config": [
            {
                "Profile": PROFILE,
                "Accumulated Air-In-Line": "Enabled",
                "Air In Line (microliter)": 100,
                "Auto-Restart Attempts": 1,
                "KVO Rate Adjust (mL/h)": 5,
                "Max Occlusion Pressure (mmHg)": 500,
                "Default Pressure (mmHg)": 400,
                "Maximum Rate (mL/h)": 999,
                "Maximum VTBI (mL)": 2000,
                "Secondary Infusion": "Enabled",
            }
        ],
        "Syringe Config": [],
        "Pump & Syringe Shared Config": [],
        "PCA Config": [],
        "PCA Pause Protocol": [],
        "PCA & Syringe Shared Config": [],
        "EtCO2 Config": [],
        "Master Drugs": [
            {
                "Drug Name": "synthamycin",
                "Concentration": "100 mg / 100 mL (1 mg / mL)",
                "Used As": "Continuous",
                "Aliases": "9000001C",
            },
            {
                "Drug Name": "synthacillin",
                "Concentration": "500 mg / 100 mL (5 mg / mL)",
                "Used As": "Intermittent",
                "Aliases": "9000002I",
            },
        ],
        "Master Fluids": [
            {"Fluid Name": ".Synthetic Fluid", "Supports Secondary": "Y", "Aliases": "9000003F"}
        ],
        "Master Clinical Advisories": [],
        "Master Therapies": [],
        "Channel Labels": [],
        "Master Syringe List": [{"Syringe Type": "Synthetic Syringe 10 mL", "Included?": "True"}],
        "Master PCA Syringe List": [],
    }


def _table(workbook: Workbook, title: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
    sheet = workbook.create_sheet(title)
    sheet.append([SYNTHETIC_LABEL, title])
    sheet.append(list(columns))
    for number, row in enumerate(rows, start=1):
        sheet.append([row.get(c, number if c == "Line Item" else None) for c in columns])


def write_alaris(
    path: Path,
    *,
    rows: Mapping[str, list[Row]] | None = None,
    properties: Mapping[str, str] | None = None,
    omit: Sequence[str] = (),
    columns: Mapping[str, tuple[str, ...]] | None = None,
) -> Path:
    """Write a synthetic Alaris-like data-set report: the baseline rows, with ``rows`` replacing the
    rows of the sheets it names, ``properties`` replacing Data Set Properties, ``omit`` dropping sheets
    and ``columns`` replacing a sheet's header."""
    data = {**alaris_rows(), **(rows or {})}
    headers = {**ALARIS_COLUMNS, **(columns or {})}
    workbook = Workbook()
    props = workbook.active
    props.title = "Data Set Properties"
    props.append(["Data Set Properties", SYNTHETIC_LABEL])
    for key, value in (ALARIS_PROPERTIES if properties is None else properties).items():
        props.append([f"{key}:", value])
    for title, sheet_rows in data.items():
        if title not in omit:
            _table(workbook, title, headers[title], sheet_rows)
    for title in omit:
        if title in workbook.sheetnames:
            del workbook[title]
    workbook.save(path)
    return path


BAXTER_HEADER: Final = {
    "MDL Version": "0.0.1",
    "Library Name": "SyntheticDrugLibrary",
    "Version": 3,
    "Keypad Lock Code": 1234,
}
BAXTER_AREA: Final = "SYNTHETIC WARD"
NOT_ALLOWED: Final = ("Bolus Not Allowed", "-", "-", "-", "-")
LOAD_NOT_ALLOWED: Final = ("Load Dose Not Allowed", "-", "-", "-", "-")


def baxter_drug_row(
    name: str = "SYNTHAMYCIN",
    *,
    amount: Cell = "100 mg",
    diluent_ml: Cell = 100,
    conc: Cell = "1 mg/mL",
    conc_limits: Sequence[Cell] = ("-", "-", "-", "-"),
    dose_mode: Cell = "mg/hr",
    dose: Sequence[Cell] = ("-", 1, 5, 10, 20),
    vtbi_ml: Cell = 100,
    delivery: Cell = "P or S",
    bolus_unit: Cell = None,
    bolus: Sequence[Cell] = NOT_ALLOWED,
    load: Sequence[Cell] = LOAD_NOT_ALLOWED,
) -> list[Cell]:
    """A synthetic 36-column Sigma drug row; dose: lower hard, lower soft, start, upper soft, upper hard."""
    return [
        name,
        amount,
        diluent_ml,
        conc,
        *conc_limits,
        dose_mode,
        *dose,
        vtbi_ml,
        delivery,
        bolus_unit,
        *bolus,
        *load,
        "Optional",
        5,
        "Low",
        "Off",
        "Off",
        "Off",
        30,
        "Off",
        "No",
    ]


def baxter_time_row(unit: str, *, bolus: Sequence[Cell] = (None,) * 5, load: Sequence[Cell]) -> list[Cell]:
    """A synthetic time row (below a bolus/load drug row): unit in column 16, bolus and load times."""
    return [None] * 16 + [unit, *bolus, *load]


@dataclass(slots=True)
class BaxterArea:
    """One synthetic care-area block: weight limits (4 cells), drug rows and the BASIC rate limits."""

    name: str = BAXTER_AREA
    weights: Sequence[Cell] = ("-", "1 kg", "250 kg", "-")
    drugs: list[list[Cell]] = field(default_factory=lambda: [baxter_drug_row()])
    basic: Sequence[Cell] = (0.5, "-", "-", "-", 999)


_DRUG_TABLE_HEAD: Final = (
    ["Drug", "Drug", "Diluent", "Conc.", "Conc.", "Conc.", "Conc.", "Conc.", "Dose", "Rate"],
    [None, "Amount", "Volume", None, "Lower", "Lower", "Upper", "Upper", "Mode", "Run"],
    [None, None, "(mL)", None, "Hard", "Soft", "Soft", "Hard", None, "(mL/hr)"],
    [None, None, None, None, "Limit", "Limit", "Limit", "Limit", None, "Alarm"],
)


def write_baxter(
    path: Path,
    *,
    header: Mapping[str, Cell] | None = None,
    areas: Sequence[BaxterArea] | None = None,
    before_first_area: Sequence[list[Cell]] = (),
    discrete: Sequence[list[Cell]] | None = None,
) -> Path:
    """Write a synthetic Sigma-like report: header block, care-area blocks, optional DiscreteList."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "FullList"
    sheet.append([f"Custom Report ({SYNTHETIC_LABEL})"])
    for key, value in (BAXTER_HEADER if header is None else header).items():
        sheet.append([f"{key}:", value])
    sheet.append([])
    for row in before_first_area:
        sheet.append(row)
    for area in [BaxterArea()] if areas is None else areas:
        sheet.append([f"Care Area: {area.name}"])
        sheet.append(["Patient Weight"] * 4 + ["Weight", "Auto", "Downstream Pressure", "Drugs"])
        sheet.append(["Lower Hard Limit", "Lower Soft Limit", "Upper Soft Limit", "Upper Hard Limit"])
        sheet.append([None] * 7 + ["Care Area"])
        sheet.append([*area.weights, "Off", "Off", "Low", len(area.drugs)])
        sheet.append([])
        sheet.append(["Continuous Drugs"])
        for head in _DRUG_TABLE_HEAD:
            sheet.append(head)
        for drug in area.drugs:
            sheet.append(drug)
        sheet.append([])
        sheet.append(["BASIC"])
        for head in _DRUG_TABLE_HEAD:
            sheet.append(head)
        sheet.append(["BASIC", "User", "User", "User", "User", *area.basic, "-", "P or S"])
        sheet.append([None, "Selectable", "Selectable", "Selectable", "Selectable¹"])
        sheet.append([])
        sheet.append(["¹ Available dose modes in BASIC (synthetic footnote)"])
        sheet.append(["mL/hr, mg/hr"])
    sheet.append([])
    sheet.append(["END OF REPORT"])
    if discrete is not None:
        listing = workbook.create_sheet("DiscreteList")
        for head in _DRUG_TABLE_HEAD:
            listing.append(head)
        for row in discrete:
            listing.append(row)
    workbook.save(path)
    return path


MAPPING_COLUMNS: Final = ("Additive", "Diluent", "Primary", "Alias", "Comment", "Method")


def mapping_row(**overrides: Cell) -> Row:
    """A valid synthetic EHR mapping row: order code 8000001 -> alias 9000001 (synthamycin)."""
    row: Row = {
        "Additive": "8000001",
        "Diluent": None,
        "Primary": "8000001",
        "Alias": "9000001",
        "Comment": "synthamycin_MAP (synthetic)",
        "Method": "Additive",
    }
    return {**row, **overrides}


def write_mapping(
    path: Path, rows: Sequence[Row], *, columns: Sequence[str] = MAPPING_COLUMNS, sheet: str = "Mapping File"
) -> Path:
    """Write a synthetic EHR-mapping-like workbook: a header row then ``rows`` (keys are columns)."""
    workbook = Workbook()
    table = workbook.active
    table.title = sheet
    if columns:
        table.append(list(columns))
    for row in rows:
        table.append([row.get(c) for c in columns])
    workbook.save(path)
    return path


def write_sheets(path: Path, sheets: Mapping[str, Sequence[Sequence[Cell]]]) -> Path:
    """Write a synthetic workbook with exactly these sheets and rows (an empty sheet when none)."""
    workbook = Workbook()
    del workbook[workbook.active.title]
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    workbook.save(path)
    return path
