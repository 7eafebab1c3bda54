"""Drug-library CSV for pharmacists: one row per entry; import reports every rejected row.

A blank limit cell is "not configured". Rows whose dosing unit is per dose (``mg/dose``) are PCA
entries. A settings file (JSON) adds what a CSV cannot hold: care-area settings, drug display
names and PCA parameter limits. Cells that a spreadsheet would run as a formula are escaped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from smartpump.errors import LibraryFormatError, SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    CareArea,
    DeliveryMode,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    EntryKind,
    LibraryStatus,
    PCALimits,
    Provenance,
    Route,
)
from smartpump.units import Concentration, DoseUnit, to_decimal

SHARED_COLUMNS: Final = (
    "care_area",
    "drug",
    "concentration_amount",
    "concentration_unit",
    "volume_ml",
    "dosing_unit",
    "soft_min",
    "soft_max",
    "hard_min",
    "hard_max",
    "bolus_allowed",
    "high_alert",
    "source",
    "limits_are_estimate",
)
EXTRA_COLUMNS: Final = (
    "entry_id",
    "drug_id",
    "display_name",
    "care_area_name",
    "therapy",
    "route",
    "kind",
    "mode",
    "default_dose",
    "more_concentrations",
    "advisory",
)
COLUMNS: Final = SHARED_COLUMNS + EXTRA_COLUMNS
ESTIMATE_MARKER: Final = "[EST]"
SETTINGS_FORMAT: Final = "smartpump.library-settings/1"
_FORMULA_STARTS: Final = frozenset("=+-@\t\r")
_YES: Final = frozenset({"y", "yes", "true", "1"})
_NO: Final = frozenset({"n", "no", "false", "0"})
_PER_DOSE: Final = "/dose"
_E = TypeVar("_E", bound=StrEnum)


# --- formula-injection escaping (SEC-WEB-07) ---------------------------------------------------


def escape_cell(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula (= + - @ TAB CR), reversibly."""
    if text[:1] in _FORMULA_STARTS or (text[:1] == "'" and text[1:2] in _FORMULA_STARTS | {"'"}):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """Undo ``escape_cell``: drop the ``'`` put in front of a formula-like value."""
    if text[:1] == "'" and text[1:2] in _FORMULA_STARTS | {"'"}:
        return text[1:]
    return text


# --- settings file ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DrugSettings:
    """What a settings file adds to a drug the CSV names (Tall Man display name, class, codes)."""

    drug_id: str
    display_name: str | None = None
    drug_class: str | None = None
    aliases: tuple[str, ...] = ()
    ehr_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LibrarySettings:
    """A settings file: library metadata, full care areas, drug additions, PCA limits by entry id."""

    name: str | None = None
    hospital_id: str | None = None
    version: int | None = None
    status: LibraryStatus | None = None
    provenance: Provenance | None = None
    care_areas: tuple[CareArea, ...] = ()
    drugs: tuple[DrugSettings, ...] = ()
    pca: tuple[tuple[str, Mapping[str, Any]], ...] = ()


def _settings_schema() -> dict[str, Any]:
    defs = json_format.SCHEMA["$defs"]
    pca_props = {k: v for k, v in defs["pca_limits"]["properties"].items() if k != "demand_dose"}
    strings = {"$ref": "#/$defs/strings"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "type": "object",
        "additionalProperties": False,
        "required": ["format"],
        "properties": {
            "format": {"const": SETTINGS_FORMAT},
            "note": {"type": "string"},
            "library": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "hospital_id": {"type": "string", "minLength": 1},
                    "version": {"type": "integer", "minimum": 1},
                    "status": json_format.SCHEMA["properties"]["status"],
                    "provenance": {"$ref": "#/$defs/provenance"},
                },
            },
            "care_areas": {"type": "array", "items": {"$ref": "#/$defs/care_area"}},
            "drugs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id"],
                    "properties": {
                        "id": {"$ref": "#/$defs/id"},
                        "display_name": {"type": "string"},
                        "drug_class": {"type": "string"},
                        "aliases": strings,
                        "ehr_codes": strings,
                    },
                },
            },
            "pca": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["entry_id"],
                    "properties": {"entry_id": {"$ref": "#/$defs/id"}, **pca_props},
                },
            },
        },
    }


SETTINGS_SCHEMA: Final = _settings_schema()


def load_settings(text: str) -> LibrarySettings:
    """Read a settings file (format ``smartpump.library-settings/1``), schema-checked.

    Raises:
        LibraryFormatError: not JSON, or not valid settings; ``problems`` lists every one.
    """
    doc = json_format.parse_json(text, what="settings file")
    problems = list(json_format.schema_problems(doc, SETTINGS_SCHEMA))
    if problems:
        raise LibraryFormatError(
            f"settings file does not follow {SETTINGS_FORMAT}: {problems[0]}",
            problems=tuple(problems),
            code="library.settings",
        )
    areas: list[CareArea] = []
    for index, area in enumerate(doc.get("care_areas", [])):
        try:
            areas.append(json_format.care_area_from_document(area, f"care_areas[{index}]"))
        except LibraryFormatError as error:
            problems.extend(error.problems)
    library = doc.get("library", {})
    provenance = library.get("provenance")
    if problems:
        raise LibraryFormatError(
            f"settings file has invalid care areas: {problems[0]}", problems=tuple(problems)
        )
    return LibrarySettings(
        name=library.get("name"),
        hospital_id=library.get("hospital_id"),
        version=library.get("version"),
        status=None if "status" not in library else LibraryStatus(library["status"]),
        provenance=None if provenance is None else json_format.provenance_from_document(provenance),
        care_areas=tuple(areas),
        drugs=tuple(
            DrugSettings(
                drug_id=d["id"],
                display_name=d.get("display_name"),
                drug_class=d.get("drug_class"),
                aliases=tuple(d.get("aliases", ())),
                ehr_codes=tuple(d.get("ehr_codes", ())),
            )
            for d in doc.get("drugs", [])
        ),
        pca=tuple((p["entry_id"], p) for p in doc.get("pca", [])),
    )


def read_settings(path: Path | str) -> LibrarySettings:
    """Read a settings file from disk.

    Raises:
        LibraryFormatError: the file cannot be read or is not valid settings.
    """
    return load_settings(_read_text(path))


# --- import ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    number: int
    care_area_id: str
    care_area_name: str
    drug: Drug
    has_display_name: bool
    entry_id: str
    entry: Entry


def slug(text: str) -> str:
    """A stable id from a name: lower case, runs of other characters as one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


def loads(
    text: str,
    *,
    settings: LibrarySettings | None = None,
    name: str | None = None,
    hospital_id: str | None = None,
    version: int | None = None,
    imported_from: str | None = None,
) -> DrugLibrary:
    """Build a library from CSV text (plus an optional settings file); arguments override settings.

    Row numbers in problems are spreadsheet rows (the header is row 1).

    Raises:
        LibraryFormatError: missing/unknown columns, or rejected rows; ``problems`` lists every
            rejected row with its number and reason. Nothing is dropped silently.
    """
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in SHARED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        problems = [f"header: missing column {c!r}" for c in missing]
        problems += [f"header: unknown column {c!r} (known: {', '.join(COLUMNS)})" for c in unknown]
        raise LibraryFormatError(f"CSV columns: {problems[0]}", problems=tuple(problems), code="library.csv")
    reader.fieldnames = header
    problems = []
    rows: list[_Row] = []
    for index, raw in enumerate(reader):
        number = index + 2
        if None in raw:
            problems.append(f"row {number}: more cells than columns")
            continue
        cells = {k: unescape_cell((v or "").strip()) for k, v in raw.items()}
        try:
            rows.append(_parse_row(cells, number))
        except LibraryFormatError as error:
            problems.extend(f"row {number}: {reason}" for reason in error.problems)
    library = _assemble(
        rows, problems, settings or LibrarySettings(), name, hospital_id, version, imported_from
    )
    if problems or library is None:
        raise LibraryFormatError(
            f"CSV import rejected: {len(problems)} problem(s); first: {problems[0]}",
            problems=tuple(problems),
            code="library.csv",
        )
    return library


def read(
    path: Path | str,
    *,
    settings: LibrarySettings | None = None,
    name: str | None = None,
    hospital_id: str | None = None,
    version: int | None = None,
) -> DrugLibrary:
    """Import a CSV file; the library's provenance records the file name it came from.

    Raises:
        LibraryFormatError: the file cannot be read, or rows were rejected (see ``loads``).
    """
    return loads(
        _read_text(path),
        settings=settings,
        name=name,
        hospital_id=hospital_id,
        version=version,
        imported_from=Path(path).name,
    )


def _read_text(path: Path | str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LibraryFormatError(f"cannot read {path}: {error}", code="library.unreadable") from None


def _parse_row(cells: Mapping[str, str], number: int) -> _Row:
    reasons: list[str] = []

    def attempt(what: str, build: Any) -> Any:
        try:
            return build()
        except SmartpumpError as error:
            reasons.append(f"{what}: {error.message}")
        except ValueError as error:
            reasons.append(f"{what}: {error}")
        return None

    def cell(column: str) -> str:
        return cells.get(column, "")

    for column in ("care_area", "drug", "dosing_unit"):
        if not cell(column):
            reasons.append(f"{column} is blank")
    drug_id = cell("drug_id") or slug(cell("drug"))
    if cell("drug") and not drug_id:
        reasons.append(f"drug {cell('drug')!r} gives no usable id")
    unit_text = cell("dosing_unit")
    is_pca = unit_text.casefold().endswith(_PER_DOSE)
    unit: DoseUnit | None = attempt(
        "dosing_unit", lambda: DoseUnit.parse(unit_text[: -len(_PER_DOSE)] if is_pca else unit_text)
    )
    if is_pca and unit is not None and unit.is_rate:
        reasons.append(f"dosing_unit {unit_text!r}: a per-dose unit cannot have a time base")
        unit = None
    bounds = {
        k: attempt(k, lambda k=k: _decimal(cell(k))) for k in ("hard_min", "soft_min", "soft_max", "hard_max")
    }
    limits: LimitSet | None = None
    if all(v is not None or not cell(k) for k, v in bounds.items()):
        limits = attempt("limits", lambda: LimitSet(**bounds))
    default = attempt("default_dose", lambda: _decimal(cell("default_dose")))
    bolus = attempt("bolus_allowed", lambda: _flag(cell("bolus_allowed"), "Y or N"))
    high_alert = attempt("high_alert", lambda: _flag(cell("high_alert"), "Y or N"))
    estimate = attempt("limits_are_estimate", lambda: _flag(cell("limits_are_estimate"), "true or false"))
    concentrations = attempt("concentration", lambda: _concentrations(cells))
    route = attempt("route", lambda: _enum(Route, cell("route"), Route.IV))
    kind = attempt("kind", lambda: _enum(EntryKind, cell("kind"), EntryKind.MEDICATION))
    mode = attempt("mode", lambda: _enum(DeliveryMode, cell("mode"), None))
    source = cell("source")
    if source == ESTIMATE_MARKER or source.startswith(ESTIMATE_MARKER + " "):
        reasons.append(f"source must not start with {ESTIMATE_MARKER!r} (it marks estimated limits)")
    if unit is not None:
        default_mode = _default_mode(unit, is_pca)
        if mode is None:
            mode = default_mode
        elif (mode is DeliveryMode.PCA) != is_pca:
            reasons.append(
                f"mode {mode.value!r} does not fit dosing_unit {unit_text!r} "
                "(PCA rows, and only they, use a per-dose unit such as mg/dose)"
            )
    if reasons:
        raise LibraryFormatError("; ".join(reasons), problems=tuple(reasons), code="library.csv")
    assert unit is not None and limits is not None and mode is not None  # no reasons: all were built
    dose = DoseLimits(unit=unit, limits=limits, default=default)
    provenance = _provenance_text(source, bool(estimate))
    entry = Entry(
        id=cell("entry_id"),
        care_area_id=cell("care_area"),
        drug_id=drug_id,
        dose=dose,
        kind=kind,
        mode=mode,
        therapy=cell("therapy") or None,
        route=route,
        concentrations=concentrations,
        bolus=DoseLimits(unit=DoseUnit(unit.amount, unit.basis)) if bolus and not is_pca else None,
        pca=PCALimits(demand_dose=dose, loading_dose=DoseLimits(unit=unit) if bolus else None)
        if is_pca
        else None,
        advisory=cell("advisory") or None,
        provenance=provenance,
    )
    drug = Drug(
        id=drug_id,
        generic_name=cell("drug"),
        display_name=cell("display_name"),
        is_high_alert=bool(high_alert),
    )
    return _Row(
        number=number,
        care_area_id=cell("care_area"),
        care_area_name=cell("care_area_name"),
        drug=drug,
        has_display_name=bool(cell("display_name")),
        entry_id=cell("entry_id"),
        entry=entry,
    )


def _decimal(text: str) -> Decimal | None:
    return None if not text else to_decimal(text, what=f"{text!r}")


def _flag(text: str, expected: str) -> bool:
    folded = text.casefold()
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise ValueError(f"must be {expected}, got {text!r}")


def _enum(enum: type[_E], text: str, default: _E | None) -> _E | None:
    if not text:
        return default
    for member in enum:
        if member.value.casefold() == text.casefold():
            return member
    raise ValueError(f"{text!r} is not one of {', '.join(m.value for m in enum)}")


def _concentrations(cells: Mapping[str, str]) -> tuple[Concentration, ...]:
    parts = [cells.get(c, "") for c in ("concentration_amount", "concentration_unit", "volume_ml")]
    found: list[Concentration] = []
    if any(parts):
        if not all(parts):
            raise ValueError("concentration_amount, concentration_unit and volume_ml go together")
        found.append(Concentration.parse(f"{parts[0]} {parts[1]}/{parts[2]} mL"))
    more = cells.get("more_concentrations", "")
    if more and not found:
        raise ValueError("more_concentrations needs the first concentration in the concentration columns")
    found.extend(Concentration.parse(text) for text in more.split(";") if text.strip())
    return tuple(found)


def _default_mode(unit: DoseUnit, is_pca: bool) -> DeliveryMode:
    if is_pca:
        return DeliveryMode.PCA
    if not unit.is_rate:
        return DeliveryMode.INTERMITTENT
    return DeliveryMode.RATE if unit.is_volume else DeliveryMode.CONTINUOUS


def _provenance_text(source: str, estimate: bool) -> str | None:
    if estimate:
        return f"{ESTIMATE_MARKER} {source}" if source else ESTIMATE_MARKER
    return source or None


def _split_provenance(provenance: str | None) -> tuple[str, bool]:
    text = provenance or ""
    if text == ESTIMATE_MARKER:
        return "", True
    if text.startswith(ESTIMATE_MARKER + " "):
        return text[len(ESTIMATE_MARKER) + 1 :], True
    return text, False


def _assemble(
    rows: list[_Row],
    problems: list[str],
    settings: LibrarySettings,
    name: str | None,
    hospital_id: str | None,
    version: int | None,
    imported_from: str | None,
) -> DrugLibrary | None:
    drugs: dict[str, Drug] = {}
    named: dict[str, int] = {}
    areas: dict[str, tuple[str, int]] = {}
    explicit_ids = {r.entry_id for r in rows if r.entry_id}
    used: set[str] = set()
    entries: list[Entry] = []
    for row in rows:
        known = drugs.get(row.drug.id)
        if known is None:
            drugs[row.drug.id] = row.drug
        elif (known.generic_name, known.is_high_alert) != (row.drug.generic_name, row.drug.is_high_alert):
            problems.append(
                f"row {row.number}: drug {row.drug.id!r} differs from its first row (name or high_alert)"
            )
        if row.has_display_name:
            if row.drug.id in named and drugs[row.drug.id].display_name != row.drug.display_name:
                problems.append(f"row {row.number}: display_name differs from row {named[row.drug.id]}")
            elif row.drug.id not in named:
                named[row.drug.id] = row.number
                drugs[row.drug.id] = replace(drugs[row.drug.id], display_name=row.drug.display_name)
        area_name, first = areas.setdefault(row.care_area_id, (row.care_area_name, row.number))
        if row.care_area_name and area_name and row.care_area_name != area_name:
            problems.append(f"row {row.number}: care_area_name differs from row {first}")
        elif row.care_area_name and not area_name:
            areas[row.care_area_id] = (row.care_area_name, row.number)
        entry_id = row.entry_id or _free_id(_base_id(row.entry), used | explicit_ids)
        if entry_id in used:
            problems.append(f"row {row.number}: duplicate entry_id {entry_id!r}")
        used.add(entry_id)
        entries.append(replace(row.entry, id=entry_id))
    care_areas = _care_areas(areas, settings, problems)
    final_drugs = _apply_drug_settings(drugs, named, settings, problems)
    final_entries = _apply_pca_settings(entries, settings, problems)
    hospital = hospital_id or settings.hospital_id
    if not hospital:
        problems.append("library: a hospital id is needed (give one, or set library.hospital_id in settings)")
    if problems:
        return None
    provenance = settings.provenance or Provenance(source="CSV import")
    return DrugLibrary(
        name=name or settings.name or "Imported drug library",
        version=version or settings.version or 1,
        hospital_id=str(hospital),
        status=settings.status or LibraryStatus.DRAFT,
        provenance=replace(provenance, imported_from=imported_from),
        drugs=tuple(final_drugs),
        care_areas=care_areas,
        entries=tuple(final_entries),
    )


def _base_id(entry: Entry) -> str:
    base = f"{entry.care_area_id}.{entry.drug_id}"
    return f"{base}.{slug(entry.therapy)}" if entry.therapy and slug(entry.therapy) else base


def _free_id(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _care_areas(
    areas: Mapping[str, tuple[str, int]], settings: LibrarySettings, problems: list[str]
) -> tuple[CareArea, ...]:
    configured = {a.id: a for a in settings.care_areas}
    result: list[CareArea] = []
    for area_id, (area_name, first) in areas.items():
        area = configured.get(area_id)
        if area is None:
            result.append(CareArea(id=area_id, name=area_name or area_id))
            continue
        if area_name and area_name != area.name:
            problems.append(f"row {first}: care_area_name {area_name!r} differs from settings {area.name!r}")
        result.append(area)
    result.extend(a for a in settings.care_areas if a.id not in areas)
    return tuple(result)


def _apply_drug_settings(
    drugs: dict[str, Drug], named: Mapping[str, int], settings: LibrarySettings, problems: list[str]
) -> list[Drug]:
    for extra in settings.drugs:
        drug = drugs.get(extra.drug_id)
        if drug is None:
            problems.append(f"settings drugs: {extra.drug_id!r} is not a drug of the CSV")
            continue
        if (
            extra.display_name is not None
            and extra.drug_id in named
            and extra.display_name != drug.display_name
        ):
            problems.append(
                f"row {named[extra.drug_id]}: display_name {drug.display_name!r} differs from settings "
                f"{extra.display_name!r}"
            )
        drugs[extra.drug_id] = replace(
            drug,
            display_name=drug.display_name if extra.display_name is None else extra.display_name,
            drug_class=extra.drug_class,
            aliases=extra.aliases,
            ehr_codes=extra.ehr_codes,
        )
    return list(drugs.values())


def _apply_pca_settings(entries: list[Entry], settings: LibrarySettings, problems: list[str]) -> list[Entry]:
    index = {e.id: i for i, e in enumerate(entries)}
    for number, (entry_id, doc) in enumerate(settings.pca):
        where = f"settings pca[{number}]"
        position = index.get(entry_id)
        if position is None or entries[position].pca is None:
            problems.append(f"{where}: {entry_id!r} is not a PCA entry of the CSV")
            continue
        entry = entries[position]
        assert entry.pca is not None
        if "loading_dose" in doc and entry.pca.loading_dose is None:
            problems.append(f"{where}: a loading dose is set but the CSV row does not allow a bolus")
            continue
        try:
            merged = json_format.pca_from_document(
                {**doc, "demand_dose": json_format.encode_value(entry.pca.demand_dose)}, where
            )
        except LibraryFormatError as error:
            problems.extend(error.problems)
            continue
        if "loading_dose" not in doc:
            merged = replace(merged, loading_dose=entry.pca.loading_dose)
        entries[position] = replace(entry, pca=merged)
    return entries


# --- export ----------------------------------------------------------------------------------


def rows(library: DrugLibrary) -> list[dict[str, str]]:
    """One CSV row (column -> text, unescaped) per entry of the library, in library order."""
    out: list[dict[str, str]] = []
    for entry in library.entries:
        drug = library.drug(entry.drug_id)
        area = library.care_area(entry.care_area_id)
        dose = entry.pca.demand_dose if entry.pca is not None else entry.dose
        first, *more = entry.concentrations or (None,)
        source, estimate = _split_provenance(entry.provenance)
        bolus = (
            entry.pca.loading_dose is not None or entry.pca.clinician_bolus is not None
            if entry.pca is not None
            else entry.bolus is not None
        )
        out.append(
            {
                "care_area": entry.care_area_id,
                "drug": drug.generic_name,
                "concentration_amount": "" if first is None else _number(first.amount),
                "concentration_unit": "" if first is None else first.unit.value,
                "volume_ml": "" if first is None else _number(first.volume_ml),
                "dosing_unit": str(dose.unit) + (_PER_DOSE if entry.pca is not None else ""),
                "soft_min": _number(dose.limits.soft_min),
                "soft_max": _number(dose.limits.soft_max),
                "hard_min": _number(dose.limits.hard_min),
                "hard_max": _number(dose.limits.hard_max),
                "bolus_allowed": "Y" if bolus else "N",
                "high_alert": "Y" if drug.is_high_alert else "N",
                "source": source,
                "limits_are_estimate": "true" if estimate else "false",
                "entry_id": entry.id,
                "drug_id": drug.id,
                "display_name": drug.display_name,
                "care_area_name": area.name,
                "therapy": entry.therapy or "",
                "route": entry.route.value,
                "kind": entry.kind.value,
                "mode": entry.mode.value,
                "default_dose": _number(dose.default),
                "more_concentrations": "; ".join(str(c) for c in more if c is not None),
                "advisory": entry.advisory or "",
            }
        )
    return out


def _number(value: Decimal | None) -> str:
    return "" if value is None else json_format.decimal_text(value)


def dumps(library: DrugLibrary) -> str:
    """The library's entries as CSV text (all columns, formula-like cells escaped, CRLF rows)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows(library):
        writer.writerow({k: escape_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def write(library: DrugLibrary, path: Path | str) -> None:
    """Write the library's CSV export to ``path`` (UTF-8)."""
    Path(path).write_text(dumps(library), encoding="utf-8", newline="")


def not_held(library: DrugLibrary) -> tuple[str, ...]:
    """What a CSV export of this library would not hold, one line per entry or library part."""
    lost: list[str] = []
    for entry, row in zip(library.entries, rows(library), strict=True):
        held = _parse_row(row, 0).entry
        differing = [f for f in _ENTRY_FIELDS if getattr(held, f) != getattr(entry, f)]
        if differing:
            lost.append(f"entry {entry.id}: {', '.join(differing)}")
    lost.extend(_library_losses(library))
    return tuple(lost)


_ENTRY_FIELDS: Final = tuple(
    name for name, spec in Entry.__dataclass_fields__.items() if name != "id" and spec.init
)


def _library_losses(library: DrugLibrary) -> Iterable[str]:
    if any(d.drug_class or d.aliases or d.ehr_codes for d in library.drugs):
        yield "drugs: drug_class, aliases, ehr_codes"
    if any(a != CareArea(id=a.id, name=a.name) for a in library.care_areas):
        yield "care areas: patient limits and device/PCA settings"
    if library.ehr_mappings or library.syringes:
        yield "library: ehr_mappings, syringes"
