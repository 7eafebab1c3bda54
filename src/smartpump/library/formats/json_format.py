"""The canonical JSON document of a DrugLibrary (format ``smartpump.library/1``) and its JSON Schema.

Every field of the model is held; a key is absent exactly when its value is the model default.
Decimals travel as JSON numbers written exactly (0.01 stays 0.01) and are read back as Decimals.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from decimal import Decimal
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from smartpump.errors import LibraryFormatError, SmartpumpError
from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    NO_BOUNDS,
    BasicInfusionPolicy,
    Bounds,
    CareArea,
    CustomConcentration,
    DeliveryMode,
    DeviceDefaults,
    DeviceType,
    DoseLimits,
    Drug,
    DrugLibrary,
    EhrMapping,
    Entry,
    EntryKind,
    LibraryStatus,
    PCALimits,
    PCASettings,
    Provenance,
    Route,
)
from smartpump.units import AmountUnit, Concentration, DoseUnit, to_decimal

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

FORMAT: Final = "smartpump.library/1"
SCHEMA_VERSION: Final = 1
SCHEMA: Final[dict[str, Any]] = json.loads(
    resources.files("smartpump.library.formats").joinpath("library.schema.json").read_text("utf-8")
)


@functools.cache
def _library_validator() -> Draft202012Validator:
    """The validator of library documents, built on first use: importing jsonschema costs seconds where its
    optional format checkers are installed (a development environment), which a CLI command or a process
    that never reads a document should not pay."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(SCHEMA)


Document = Mapping[str, Any]
_T = TypeVar("_T")


# --- writing ---------------------------------------------------------------------------------


def encode_value(value: object) -> Any:
    """A model value as a plain document value: dataclass -> dict without default-valued keys,
    DoseUnit -> canonical string, enum -> its value, tuple -> list; Decimals stay Decimals."""
    if isinstance(value, DoseUnit):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [encode_value(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            if f.name.startswith("_"):
                continue
            item = getattr(value, f.name)
            if f.default is item or (f.default is not None and f.default == item):
                continue
            if item is not None:
                out[f.name] = encode_value(item)
        return out
    return value


def to_document(library: DrugLibrary) -> dict[str, Any]:
    """The canonical document of a library (plain dicts, lists, str, bool, int, Decimal)."""
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": library.name,
        "version": library.version,
        "hospital_id": library.hospital_id,
        "status": library.status.value,
        "provenance": encode_value(library.provenance),
        "drugs": encode_value(library.drugs),
        "care_areas": encode_value(library.care_areas),
        "entries": encode_value(library.entries),
        "ehr_mappings": encode_value(library.ehr_mappings),
        "syringes": list(library.syringes),
    }


def decimal_text(value: Decimal) -> str:
    """A Decimal as an exact JSON number without exponent or trailing zeros (0.01, 400, 0)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def encode_json(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """JSON text of a document whose numbers may be Decimals (written exactly, never via float).

    With ``indent=None`` the text has no insignificant whitespace (separators ``,`` and ``:``).
    """
    parts: list[str] = []
    _write(value, parts, indent, 0, sort_keys)
    return "".join(parts)


def _write(value: Any, out: list[str], indent: int | None, level: int, sort_keys: bool) -> None:
    if isinstance(value, Mapping):
        items = sorted(value.items()) if sort_keys else list(value.items())
        _write_container("{", "}", items, out, indent, level, sort_keys)
    elif isinstance(value, list | tuple):
        _write_container("[", "]", [(None, v) for v in value], out, indent, level, sort_keys)
    elif isinstance(value, Decimal):
        out.append(decimal_text(to_decimal(value)))
    elif value is None or isinstance(value, bool | int | str):
        out.append(json.dumps(value, ensure_ascii=False))
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write_container(
    opening: str,
    closing: str,
    items: Sequence[tuple[str | None, Any]],
    out: list[str],
    indent: int | None,
    level: int,
    sort_keys: bool,
) -> None:
    out.append(opening)
    if not items:
        out.append(closing)
        return
    inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
    for index, (key, item) in enumerate(items):
        out.append(("," if index else "") + inner)
        if key is not None:
            out.append(json.dumps(key, ensure_ascii=False) + (":" if indent is None else ": "))
        _write(item, out, indent, level + 1, sort_keys)
    out.append(("" if indent is None else "\n" + " " * (indent * level)) + closing)


def dumps(library: DrugLibrary) -> str:
    """The library as a pretty JSON document (2-space indent, fields in model order, final newline)."""
    return encode_json(to_document(library), indent=2) + "\n"


def canonical_bytes(library: DrugLibrary) -> bytes:
    """The exact bytes that get signed: sorted keys, no insignificant whitespace, UTF-8, exact numbers."""
    return encode_json(to_document(library), sort_keys=True).encode("utf-8")


def write(library: DrugLibrary, path: Path | str) -> None:
    """Write the library's pretty JSON document to ``path`` (UTF-8)."""
    Path(path).write_text(dumps(library), encoding="utf-8")


# --- reading ---------------------------------------------------------------------------------


def parse_json(text: str, *, what: str = "document") -> Any:
    """Parse JSON text with numbers as Decimals (integers as int), refusing NaN/Infinity and
    duplicate keys.

    Raises:
        LibraryFormatError: the text is not JSON.
    """
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
    except json.JSONDecodeError as error:
        problem = f"line {error.lineno} column {error.colno}: {error.msg}"
        raise LibraryFormatError(f"{what} is not valid JSON: {problem}", problems=(problem,)) from None
    except ValueError as error:
        raise LibraryFormatError(f"{what} is not valid JSON: {error}", problems=(str(error),)) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a library may hold")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def json_path(parts: Sequence[str | int]) -> str:
    """A document location as text: ``entries[12].dose.limits`` (``$`` for the root)."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "$"


def schema_problems(doc: Any, schema: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Every JSON Schema error of a document, each as ``location: message``, in document order."""
    if schema is None:
        validator = _library_validator()
    else:
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return tuple(f"{json_path(list(e.absolute_path))}: {e.message}" for e in errors)


def loads(text: str) -> DrugLibrary:
    """Read a library from its JSON document, validated against ``SCHEMA`` before it is built.

    Raises:
        LibraryFormatError: not JSON, not schema-valid, or not a consistent library;
            ``problems`` lists every problem with its location.
    """
    return from_document(parse_json(text, what="library document"))


def read(path: Path | str) -> DrugLibrary:
    """Read a library JSON file.

    Raises:
        LibraryFormatError: the file cannot be read or is not a valid library document.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LibraryFormatError(f"cannot read {path}: {error}", code="library.unreadable") from None
    return loads(text)


def from_document(doc: Document) -> DrugLibrary:
    """Build a library from its document after validating it against ``SCHEMA``.

    Raises:
        LibraryFormatError: schema errors, or model errors (limit order, units, references),
            every one listed in ``problems`` with its location.
    """
    problems = schema_problems(doc)
    if problems:
        raise LibraryFormatError(
            f"library document does not follow {FORMAT}: {len(problems)} problem(s); first: {problems[0]}",
            problems=problems,
            code="library.schema",
        )
    collected: list[str] = []
    drugs = _build_all(doc["drugs"], "drugs", drug_from_document, collected)
    care_areas = _build_all(doc["care_areas"], "care_areas", care_area_from_document, collected)
    entries = _build_all(doc["entries"], "entries", entry_from_document, collected)
    mappings = _build_all(doc.get("ehr_mappings", []), "ehr_mappings", _ehr_mapping, collected)
    collected.extend(_reference_problems(drugs, care_areas, entries))
    if not collected:
        return DrugLibrary(
            name=doc["name"],
            version=doc["version"],
            hospital_id=doc["hospital_id"],
            status=LibraryStatus(doc.get("status", LibraryStatus.DRAFT.value)),
            provenance=provenance_from_document(doc.get("provenance", {})),
            drugs=drugs,
            care_areas=care_areas,
            entries=entries,
            ehr_mappings=mappings,
            syringes=tuple(doc.get("syringes", ())),
        )
    raise LibraryFormatError(
        f"library document is not a consistent library: {len(collected)} problem(s); first: {collected[0]}",
        problems=tuple(collected),
        code="library.model",
    )


def _build_all(
    docs: Sequence[Document],
    name: str,
    build: Callable[[Document, str], _T],
    problems: list[str],
) -> tuple[_T, ...]:
    built: list[_T] = []
    for index, item in enumerate(docs):
        try:
            built.append(build(item, f"{name}[{index}]"))
        except LibraryFormatError as error:
            problems.extend(error.problems)
    return tuple(built)


def _reference_problems(
    drugs: tuple[Drug, ...], care_areas: tuple[CareArea, ...], entries: tuple[Entry, ...]
) -> list[str]:
    problems: list[str] = []
    id_lists = (
        ("drugs", [d.id for d in drugs]),
        ("care_areas", [a.id for a in care_areas]),
        ("entries", [e.id for e in entries]),
    )
    for name, ids in id_lists:
        seen: set[str] = set()
        for index, item_id in enumerate(ids):
            if item_id in seen:
                problems.append(f"{name}[{index}].id: duplicate id {item_id!r}")
            seen.add(item_id)
    drug_ids = {d.id for d in drugs}
    area_ids = {a.id for a in care_areas}
    for index, entry in enumerate(entries):
        if entry.drug_id not in drug_ids:
            problems.append(f"entries[{index}].drug_id: unknown drug {entry.drug_id!r}")
        if entry.care_area_id not in area_ids:
            problems.append(f"entries[{index}].care_area_id: unknown care area {entry.care_area_id!r}")
    return problems


def _located(where: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except LibraryFormatError:
        raise
    except SmartpumpError as error:
        problem = f"{where}: {error.message}"
        raise LibraryFormatError(problem, problems=(problem,), code="library.model") from None


def _dec(value: Any, where: str) -> Decimal:
    return _located(where, lambda: to_decimal(value))


def _opt_dec(doc: Document, key: str, where: str) -> Decimal | None:
    return None if key not in doc else _dec(doc[key], f"{where}.{key}")


def limits_from_document(doc: Document, where: str) -> LimitSet:
    """A LimitSet from ``{"hard_min": .., "soft_min": .., "soft_max": .., "hard_max": ..}``."""
    values = {key: _dec(value, f"{where}.{key}") for key, value in doc.items()}
    return _located(where, lambda: LimitSet(**values))


def bounds_from_document(doc: Document | None, where: str) -> Bounds:
    """Bounds from ``{"limits": {...}, "default": ..}``; NO_BOUNDS when the key was absent."""
    if doc is None:
        return NO_BOUNDS
    return Bounds(
        limits=limits_from_document(doc.get("limits", {}), f"{where}.limits"),
        default=_opt_dec(doc, "default", where),
    )


def _dose_unit(text: str, where: str) -> DoseUnit:
    return _located(where, lambda: DoseUnit.parse(text))


def dose_limits_from_document(doc: Document, where: str) -> DoseLimits:
    """DoseLimits from ``{"unit": "mcg/kg/min", "limits": {...}, "default": ..}``."""
    return DoseLimits(
        unit=_dose_unit(doc["unit"], f"{where}.unit"),
        limits=limits_from_document(doc.get("limits", {}), f"{where}.limits"),
        default=_opt_dec(doc, "default", where),
    )


def _opt_dose(doc: Document, key: str, where: str) -> DoseLimits | None:
    return None if key not in doc else dose_limits_from_document(doc[key], f"{where}.{key}")


def concentration_from_document(doc: Document, where: str) -> Concentration:
    """A Concentration from ``{"amount": 400, "unit": "mg", "volume_ml": 250}``."""
    amount = _dec(doc["amount"], f"{where}.amount")
    volume = _dec(doc["volume_ml"], f"{where}.volume_ml")
    return _located(where, lambda: Concentration(amount, AmountUnit(doc["unit"]), volume))


def pca_from_document(doc: Document, where: str) -> PCALimits:
    """PCALimits from its document (demand dose required; the rest optional)."""
    window = doc.get("max_dose_window_h")
    return _located(
        where,
        lambda: PCALimits(
            demand_dose=dose_limits_from_document(doc["demand_dose"], f"{where}.demand_dose"),
            lockout_min=bounds_from_document(doc.get("lockout_min"), f"{where}.lockout_min"),
            basal=_opt_dose(doc, "basal", where),
            loading_dose=_opt_dose(doc, "loading_dose", where),
            clinician_bolus=_opt_dose(doc, "clinician_bolus", where),
            max_dose=_opt_dose(doc, "max_dose", where),
            max_dose_window_h=window,
        ),
    )


def drug_from_document(doc: Document, where: str) -> Drug:
    """A Drug from its document."""
    return Drug(
        id=doc["id"],
        generic_name=doc["generic_name"],
        display_name=doc.get("display_name", ""),
        aliases=tuple(doc.get("aliases", ())),
        ehr_codes=tuple(doc.get("ehr_codes", ())),
        drug_class=doc.get("drug_class"),
        is_high_alert=doc.get("is_high_alert", False),
    )


def entry_from_document(doc: Document, where: str) -> Entry:
    """An Entry from its document; model errors name their location (``entries[3].dose.limits``)."""
    custom = doc.get("custom_concentration")
    return Entry(
        id=doc["id"],
        care_area_id=doc["care_area_id"],
        drug_id=doc["drug_id"],
        dose=dose_limits_from_document(doc["dose"], f"{where}.dose"),
        kind=EntryKind(doc.get("kind", EntryKind.MEDICATION.value)),
        mode=DeliveryMode(doc.get("mode", DeliveryMode.CONTINUOUS.value)),
        therapy=doc.get("therapy"),
        route=Route(doc.get("route", Route.IV.value)),
        concentrations=tuple(
            concentration_from_document(c, f"{where}.concentrations[{i}]")
            for i, c in enumerate(doc.get("concentrations", ()))
        ),
        custom_concentration=None
        if custom is None
        else CustomConcentration(
            unit=AmountUnit(custom["unit"]),
            limits=limits_from_document(custom.get("limits", {}), f"{where}.custom_concentration.limits"),
            default_volume_ml=_opt_dec(custom, "default_volume_ml", f"{where}.custom_concentration"),
        ),
        rate_ml_per_h=bounds_from_document(doc.get("rate_ml_per_h"), f"{where}.rate_ml_per_h"),
        vtbi_ml=bounds_from_document(doc.get("vtbi_ml"), f"{where}.vtbi_ml"),
        duration_min=bounds_from_document(doc.get("duration_min"), f"{where}.duration_min"),
        dose_rate=_opt_dose(doc, "dose_rate", where),
        bolus=_opt_dose(doc, "bolus", where),
        bolus_rate=_opt_dose(doc, "bolus_rate", where),
        loading=_opt_dose(doc, "loading", where),
        loading_duration_min=bounds_from_document(
            doc.get("loading_duration_min"), f"{where}.loading_duration_min"
        ),
        pca=None if "pca" not in doc else pca_from_document(doc["pca"], f"{where}.pca"),
        devices=tuple(DeviceType(d) for d in doc.get("devices", ())),
        allows_secondary=doc.get("allows_secondary", False),
        advisory=doc.get("advisory"),
        ehr_codes=tuple(doc.get("ehr_codes", ())),
        last_reviewed=doc.get("last_reviewed"),
        provenance=doc.get("provenance"),
    )


def care_area_from_document(doc: Document, where: str) -> CareArea:
    """A CareArea with its patient limits, basic-infusion policy, device defaults and PCA settings."""
    basic = doc.get("basic_infusion", {})
    device = doc.get("device", {})
    pca = doc.get("pca", {})
    return CareArea(
        id=doc["id"],
        name=doc["name"],
        weight_kg=bounds_from_document(doc.get("weight_kg"), f"{where}.weight_kg"),
        bsa_m2=bounds_from_document(doc.get("bsa_m2"), f"{where}.bsa_m2"),
        max_rate_ml_per_h=_opt_dec(doc, "max_rate_ml_per_h", where),
        bsa_resolution_m2=_opt_dec(doc, "bsa_resolution_m2", where),
        basic_infusion=BasicInfusionPolicy(
            allowed=basic.get("allowed", True),
            rate_ml_per_h=bounds_from_document(
                basic.get("rate_ml_per_h"), f"{where}.basic_infusion.rate_ml_per_h"
            ),
            advisory=basic.get("advisory"),
        ),
        device=_device_defaults(device, f"{where}.device"),
        pca=PCASettings(
            bolus_delivery_rate_ml_per_h=_opt_dec(pca, "bolus_delivery_rate_ml_per_h", f"{where}.pca"),
            max_dose_window_h=pca.get("max_dose_window_h"),
            pause_enabled=pca.get("pause_enabled", False),
            pause_spo2_min_percent=_opt_dec(pca, "pause_spo2_min_percent", f"{where}.pca"),
            pause_etco2_max_mmhg=_opt_dec(pca, "pause_etco2_max_mmhg", f"{where}.pca"),
            pause_resp_rate_min_bpm=_opt_dec(pca, "pause_resp_rate_min_bpm", f"{where}.pca"),
            pause_message=pca.get("pause_message"),
        ),
        channel_labels=tuple(doc.get("channel_labels", ())),
        advisory=doc.get("advisory"),
    )


def _device_defaults(doc: Document, where: str) -> DeviceDefaults:
    return DeviceDefaults(
        occlusion_pressure_mmhg=_opt_dec(doc, "occlusion_pressure_mmhg", where),
        max_occlusion_pressure_mmhg=_opt_dec(doc, "max_occlusion_pressure_mmhg", where),
        air_in_line_ul=_opt_dec(doc, "air_in_line_ul", where),
        accumulated_air_in_line=doc.get("accumulated_air_in_line", True),
        kvo_rate_ml_per_h=_opt_dec(doc, "kvo_rate_ml_per_h", where),
        auto_restart_attempts=doc.get("auto_restart_attempts"),
        secondary_allowed=doc.get("secondary_allowed", True),
        max_rate_ml_per_h=_opt_dec(doc, "max_rate_ml_per_h", where),
        max_vtbi_ml=_opt_dec(doc, "max_vtbi_ml", where),
        tubing_change_h=doc.get("tubing_change_h"),
    )


def _ehr_mapping(doc: Document, where: str) -> EhrMapping:
    return EhrMapping(
        order_code=doc["order_code"],
        alias=doc["alias"],
        additive_code=doc.get("additive_code"),
        diluent_code=doc.get("diluent_code"),
        comment=doc.get("comment"),
        method=doc.get("method"),
    )


def provenance_from_document(doc: Document) -> Provenance:
    """Provenance from its document (every key optional)."""
    return Provenance(
        source=doc.get("source", ""),
        imported_from=doc.get("imported_from"),
        note=doc.get("note"),
        is_example=doc.get("is_example", False),
    )
