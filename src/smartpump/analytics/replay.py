"""What-if replay: re-evaluate historical programs against a current and a candidate library, vectorised.

Each library becomes two small limit tables (entries, care areas) of encoded limits (``frames.encode``);
the programs are joined to them and every rule of ``smartpump.ders.rules`` that a limit change can move
is classified with Polars expressions, with ``ders.check``'s semantics: a value on a limit is inside,
hard bounds before soft, rate limits hold the delivered (rounded) rate that the pump recorded, and dose
limits hold both the delivered and the programmed dose (the worse breach counts). An intermittent's
dose rate depends on the library's unit and concentration, so it is measured by the DERS rule itself,
once per distinct program of an entry that has dose-rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import polars as pl

from smartpump.analytics.frames import encode_limit
from smartpump.ders.check import resolve_concentration
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind
from smartpump.ders.rules import RULES, CheckContext
from smartpump.ders.rules import evaluate as evaluate_rules
from smartpump.errors import SmartpumpError
from smartpump.library.limits import LIMIT_ORDER, LimitKind, LimitSet
from smartpump.library.model import CareArea, DeliveryMode, DrugLibrary, Entry
from smartpump.pump.events import EventType
from smartpump.units import Concentration

#: Rules replayed, in ``ders.rules.RULES`` order: (rule parameter, value column).
REPLAYED_RULES: Final = (
    ("patient_weight", "weight_kg_x"),
    ("patient_bsa", "bsa_m2_x"),
    ("dose", "dose_x"),
    ("rate", "rate_ml_per_h_x"),
    ("dose_rate", "rate_ml_per_h"),
    ("duration", "duration_min_x"),
    ("vtbi", "vtbi_ml_x"),
    ("basic.rate", "rate_ml_per_h_x"),
    ("care_area.max_rate", "rate_ml_per_h_x"),
    ("care_area.max_vtbi", "vtbi_ml_x"),
)
REPLAYED_KINDS: Final = ("continuous", "intermittent", "basic")
#: Rules of the replayed kinds that the replay cannot yet evaluate, and why (a parity test holds
#: this list and ``REPLAYED_RULES`` to ``ders.rules.RULES``).
NOT_REPLAYED: Final = {
    "concentration": "program rows carry no custom concentration",
}
#: The DERS rule the replay runs as such (its value needs the library's unit and concentration).
DOSE_RATE_RULE: Final = next(r for r in RULES if r.parameter == "dose_rate")
#: Program columns the dose-rate rule reads (exact text, not encoded).
DOSE_RATE_INPUTS: Final = ("entry_id", "care_area", "rate_ml_per_h", "concentration", "weight_kg", "bsa_m2")
PROGRAM_COLUMNS: Final = (
    "pump",
    "seq",
    "care_area",
    "entry_id",
    "kind",
    "dose_unit",
    "dose_x",
    "dose_programmed_x",
    "rate_ml_per_h_x",
    "vtbi_ml_x",
    "weight_kg_x",
    "bsa_m2_x",
    "duration_min_x",
    "alert_rules",
    "rate_ml_per_h",
    "concentration",
    "weight_kg",
    "bsa_m2",
)
#: Device limits (``ders.device.*``) do not depend on the library: a program the pump's device refused
#: stays refused before and after.
DEVICE_RULE_PREFIX: Final = "ders.device."
#: Breach codes of one rule: 0 within, 1 soft_min, 2 soft_max, 3 hard_min, 4 hard_max.
BREACH_KINDS: Final = (None, LimitKind.SOFT_MIN, LimitKind.SOFT_MAX, LimitKind.HARD_MIN, LimitKind.HARD_MAX)
VERDICTS: Final = ("ok", "hard")


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Per-program outcomes (None unless asked for), the per-entry summary and the changed programs."""

    programs: pl.DataFrame | None
    summary: pl.DataFrame
    changes: pl.DataFrame


_LOW: Final = -(2**63)
_HIGH: Final = 2**63 - 1
_KEYS: Final = ("entry_id", "care_area", "dose_unit", "kind")


def _bound(limits: LimitSet, kind: LimitKind) -> int | None:
    value = limits.get(kind)
    return None if value is None else encode_limit(value)


def _lookup(values: list[int | None], low: bool) -> pl.Series:
    """Limits aligned to category codes; an absent bound becomes a sentinel no value can cross."""
    sentinel = _LOW if low else _HIGH
    return pl.Series([sentinel if v is None else v for v in values], dtype=pl.Int64)


def _categories(dtype: pl.DataType) -> list[str]:
    assert isinstance(dtype, pl.Enum)
    return list(dtype.categories)


def _limit_lookups(
    keys: list[str], limit_sets: dict[str, LimitSet | None]
) -> dict[LimitKind, pl.Series] | None:
    """Per bound kind, the encoded limits aligned to ``keys``; None when no key has any bound."""
    found = {k: s for k, s in limit_sets.items() if s is not None and not s.is_empty}
    if not any(key in found for key in keys):
        return None
    lookups: dict[LimitKind, pl.Series] = {}
    for kind in LIMIT_ORDER:
        values = [_bound(found[key], kind) if key in found else None for key in keys]
        if any(v is not None for v in values):
            lookups[kind] = _lookup(values, low=kind in (LimitKind.HARD_MIN, LimitKind.SOFT_MIN))
    return lookups


def _breach(value: pl.Expr, index: pl.Expr, lookups: dict[LimitKind, pl.Series]) -> pl.Expr:
    """The LimitSet.classify decision as a code 0-4 (hard before soft, a value on a limit is inside)."""
    codes = {LimitKind.HARD_MAX: 4, LimitKind.HARD_MIN: 3, LimitKind.SOFT_MAX: 2, LimitKind.SOFT_MIN: 1}
    expr: pl.Expr = pl.lit(0, pl.Int8)
    for kind in (LimitKind.SOFT_MIN, LimitKind.SOFT_MAX, LimitKind.HARD_MIN, LimitKind.HARD_MAX):
        if kind not in lookups:
            continue
        bound = pl.lit(lookups[kind]).gather(index)
        crossed = value < bound if kind in (LimitKind.HARD_MIN, LimitKind.SOFT_MIN) else value > bound
        expr = pl.when(crossed).then(pl.lit(codes[kind], pl.Int8)).otherwise(expr)
    return expr


def _applies(parameter: str, is_basic: pl.Expr, kind: pl.Expr) -> pl.Expr | None:
    match parameter:
        case "dose" | "rate" | "vtbi":
            return ~is_basic
        case "duration":
            return ~is_basic & (kind == "intermittent")
        case "basic.rate":
            return is_basic
        case _:
            return None


_STATUS_CODES: Final = (
    "evaluated",
    "kind_not_replayed",
    "care_area_missing",
    "basic_not_allowed",
    "entry_missing",
    "care_area_mismatch",
    "unit_changed",
    "mode_mismatch",
)


def _status_table(library: DrugLibrary, cats: dict[str, list[str]]) -> pl.Series:
    """The status code of every (entry, care area, dose unit, kind) combination, flattened."""
    codes: list[int] = []
    for entry_key in [None, *cats["entry_id"]]:
        for area_key in cats["care_area"]:
            for unit_key in [None, *cats["dose_unit"]]:
                for kind_key in cats["kind"]:
                    status = _status(library, entry_key, area_key, unit_key, kind_key)
                    codes.append(_STATUS_CODES.index(status))
    return pl.Series(codes, dtype=pl.Int8)


def _status(library: DrugLibrary, entry_id: str | None, area_id: str, unit: str | None, kind: str) -> str:
    """Whether ``ders.check`` can evaluate the program under this library (mirrors its ProgramErrors)."""
    if kind not in REPLAYED_KINDS:
        return "kind_not_replayed"
    area = next((a for a in library.care_areas if a.id == area_id), None)
    if area is None:
        return "care_area_missing"
    if kind == "basic" or entry_id is None:
        return "evaluated" if area.basic_infusion.allowed else "basic_not_allowed"
    entry = next((e for e in library.entries if e.id == entry_id), None)
    if entry is None:
        return "entry_missing"
    if entry.care_area_id != area_id:
        return "care_area_mismatch"
    if str(entry.dose.unit) != unit:
        return "unit_changed"
    if (kind == "intermittent" and entry.mode is not DeliveryMode.INTERMITTENT) or (
        kind == "continuous" and entry.mode in (DeliveryMode.INTERMITTENT, DeliveryMode.PCA)
    ):
        return "mode_mismatch"
    return "evaluated"


def _rule_lookups(
    library: DrugLibrary, cats: dict[str, list[str]]
) -> dict[str, dict[LimitKind, pl.Series] | None]:
    entries = {e.id: e for e in library.entries}
    areas = {a.id: a for a in library.care_areas}
    entry_keys, area_keys = cats["entry_id"], cats["care_area"]

    def of_entries(get: str) -> dict[LimitKind, pl.Series] | None:
        sets: dict[str, LimitSet | None] = {}
        for key in entry_keys:
            entry = entries.get(key)
            if entry is not None:
                holder = getattr(entry, get)
                sets[key] = holder.limits
        return _limit_lookups(entry_keys, sets)

    def of_areas(sets: dict[str, LimitSet | None]) -> dict[LimitKind, pl.Series] | None:
        return _limit_lookups(area_keys, sets)

    area_of = {k: areas.get(k) for k in area_keys}
    return {
        "patient_weight": of_areas({k: a.weight_kg.limits for k, a in area_of.items() if a}),
        "patient_bsa": of_areas({k: a.bsa_m2.limits for k, a in area_of.items() if a}),
        "dose": of_entries("dose"),
        "rate": of_entries("rate_ml_per_h"),
        "duration": of_entries("duration_min"),
        "vtbi": of_entries("vtbi_ml"),
        "basic.rate": of_areas({k: a.basic_infusion.rate_ml_per_h.limits for k, a in area_of.items() if a}),
        "care_area.max_rate": of_areas({k: a.rate_cap for k, a in area_of.items() if a}),
        "care_area.max_vtbi": of_areas({k: a.vtbi_cap for k, a in area_of.items() if a}),
    }


def _decimal(text: object) -> Decimal | None:
    return None if text is None else Decimal(str(text))


def dose_rate_breach(
    entry: Entry,
    care_area: CareArea,
    rate_ml_per_h: Decimal,
    concentration: str | None,
    weight_kg: Decimal | None,
    bsa_m2: Decimal | None,
) -> int:
    """The breach code (index in ``BREACH_KINDS``) of the DERS dose-rate rule for an intermittent run at
    ``rate_ml_per_h`` under ``entry``, resolved as ``ders.check`` resolves it; 0 when the rule cannot
    measure it (a concentration the entry no longer lists, or no weight for a per-kg unit)."""
    program = InfusionProgram(
        entry_id=entry.id,
        kind=ProgramKind.INTERMITTENT,
        route=entry.route,
        rate_ml_per_h=rate_ml_per_h,
        concentration=None if concentration is None else Concentration.parse(concentration),
        patient=PatientParameters(weight_kg=weight_kg, bsa_m2=bsa_m2),
    )
    try:
        resolved, is_custom = resolve_concentration(entry, program, entry.dose.unit)
        ctx = CheckContext(
            program=program,
            care_area=care_area,
            entry=entry,
            dose=None,
            dose_limits=None,
            rate_ml_per_h=rate_ml_per_h,
            rate_ml_per_h_exact=rate_ml_per_h,
            concentration=resolved,
            is_custom_concentration=is_custom,
            weight_kg=weight_kg,
            bsa_m2=bsa_m2,
            duration_min=None,
        )
        alerts = evaluate_rules(ctx, (DOSE_RATE_RULE,))
    except SmartpumpError:
        return 0
    return BREACH_KINDS.index(alerts[0].limit_kind) if alerts else 0


def _dose_rate_codes(library: DrugLibrary, cats: dict[str, list[str]]) -> pl.Expr | None:
    """Per program, the dose-rate breach code under ``library`` (computed once per distinct intermittent
    program of an entry with dose-rate limits, 0 elsewhere); None when no such entry is programmed."""
    entries = {e.id: e for e in library.entries if e.dose_rate is not None and e.id in cats["entry_id"]}
    if not entries:
        return None
    areas = {a.id: a for a in library.care_areas}

    def codes(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest().with_row_index("row")
        wanted = frame.filter(
            (pl.col("kind").cast(pl.String) == "intermittent")
            & pl.col("entry_id").cast(pl.String).is_in(list(entries))
            & pl.col("rate_ml_per_h").is_not_null()
        )
        cache: dict[tuple[object, ...], int] = {}
        rows: list[int] = []
        values: list[int] = []
        for row, entry_id, area_id, rate, concentration, weight, bsa in wanted.select(
            "row", *DOSE_RATE_INPUTS
        ).iter_rows():
            key = (entry_id, area_id, rate, concentration, weight, bsa)
            if key not in cache:
                area = areas.get(str(area_id))
                cache[key] = (
                    0
                    if area is None
                    else dose_rate_breach(
                        entries[str(entry_id)],
                        area,
                        Decimal(str(rate)),
                        concentration,
                        _decimal(weight),
                        _decimal(bsa),
                    )
                )
            rows.append(row)
            values.append(cache[key])
        result = pl.zeros(batch.len(), pl.Int8, eager=True)
        return result.scatter(rows, values) if rows else result

    return pl.struct("kind", *DOSE_RATE_INPUTS).map_batches(codes, return_dtype=pl.Int8)


def evaluate(programs: pl.LazyFrame, library: DrugLibrary, prefix: str) -> pl.LazyFrame:
    """Add ``<prefix>_status``, ``<prefix>_verdict`` (0 ok, 1 soft, 2 hard; null when not evaluated),
    ``<prefix>_soft``/``<prefix>_hard`` (alert counts) and one breach code per replayed rule.

    ``programs`` must have Enum key columns (see ``prepare``).
    """
    schema = programs.collect_schema()
    cats = {key: _categories(schema[key]) for key in _KEYS}
    sizes = [len(cats["entry_id"]) + 1, len(cats["care_area"]), len(cats["dose_unit"]) + 1, len(cats["kind"])]
    entry_code = pl.col("entry_id").to_physical().cast(pl.Int64).fill_null(-1) + 1
    unit_code = pl.col("dose_unit").to_physical().cast(pl.Int64).fill_null(-1) + 1
    area_code = pl.col("care_area").to_physical().cast(pl.Int64)
    kind_code = pl.col("kind").to_physical().cast(pl.Int64)
    combo = ((entry_code * sizes[1] + area_code) * sizes[2] + unit_code) * sizes[3] + kind_code
    status = pl.lit(_status_table(library, cats)).gather(combo)
    status_name = f"{prefix}_status"
    frame = programs.with_columns(status.alias(status_name))
    evaluated = pl.col(status_name) == 0
    kind = pl.col("kind")
    is_basic = (kind == "basic") | pl.col("entry_id").is_null()
    entry_index = pl.col("entry_id").to_physical()
    area_index = pl.col("care_area").to_physical()
    lookups = _rule_lookups(library, cats)
    names: list[str] = []
    codes: list[pl.Expr] = []
    dose_rate = _dose_rate_codes(library, cats)
    for parameter, value in REPLAYED_RULES:
        name = f"{prefix}:{parameter}"
        names.append(name)
        if parameter == "dose_rate":
            measured = pl.lit(0, pl.Int8) if dose_rate is None else dose_rate
            codes.append(pl.when(evaluated).then(measured).otherwise(pl.lit(0, pl.Int8)).alias(name))
            continue
        rule_lookups = lookups[parameter]
        if rule_lookups is None:
            codes.append(pl.lit(0, pl.Int8).alias(name))
            continue
        index = entry_index if parameter in ("dose", "rate", "duration", "vtbi") else area_index
        condition = evaluated
        applies = _applies(parameter, is_basic, kind)
        if applies is not None:
            condition = condition & applies
        breach = _breach(pl.col(value), index, rule_lookups)
        if parameter == "dose":
            programmed = pl.col("dose_programmed_x").fill_null(pl.col(value))
            breach = pl.max_horizontal(breach, _breach(programmed, index, rule_lookups))
        codes.append(pl.when(condition).then(breach).otherwise(pl.lit(0, pl.Int8)).alias(name))
    frame = frame.with_columns(codes)
    soft = pl.sum_horizontal([pl.col(n).is_between(1, 2).cast(pl.Int8) for n in names])
    device = (
        pl.col("alert_rules")
        .list.eval(pl.element().str.starts_with(DEVICE_RULE_PREFIX))
        .list.sum()
        .fill_null(0)
        .cast(pl.Int8)
    )
    hard = pl.sum_horizontal([*[(pl.col(n) >= 3).cast(pl.Int8) for n in names], device])
    frame = frame.with_columns(soft.alias(f"{prefix}_soft"), hard.alias(f"{prefix}_hard"))
    verdict = (
        pl.when(~evaluated)
        .then(pl.lit(None, pl.Int8))
        .when(pl.col(f"{prefix}_hard") > 0)
        .then(pl.lit(2, pl.Int8))
        .when(pl.col(f"{prefix}_soft") > 0)
        .then(pl.lit(1, pl.Int8))
        .otherwise(pl.lit(0, pl.Int8))
    )
    status_names = pl.Enum(list(_STATUS_CODES))
    return frame.with_columns(
        verdict.alias(f"{prefix}_verdict"),
        pl.lit(pl.Series(list(_STATUS_CODES), dtype=status_names))
        .gather(pl.col(status_name))
        .alias(status_name),
    )


def prepare(programs: pl.DataFrame) -> pl.DataFrame:
    """The program columns the replay reads, with entry, care area, dose unit and kind as Enums."""
    frame = programs.select(PROGRAM_COLUMNS)
    casts: list[pl.Expr] = []
    for key in _KEYS:
        if isinstance(frame.schema[key], pl.Enum):
            continue
        values = sorted(str(v) for v in frame[key].cast(pl.String).unique().drop_nulls().to_list())
        casts.append(pl.col(key).cast(pl.String).cast(pl.Enum(values)))
    if frame["care_area"].null_count():
        raise SmartpumpError("a program row has no care area", code="analytics.bad_event")
    return frame.with_columns(casts) if casts else frame


def program_rows(events: pl.DataFrame) -> pl.DataFrame:
    """The ``program.checked`` rows of an event frame, with the columns the replay reads."""
    return events.filter(pl.col("type") == EventType.PROGRAM_CHECKED).select(PROGRAM_COLUMNS)


def replay(
    programs: pl.DataFrame, current: DrugLibrary, candidate: DrugLibrary, *, with_programs: bool = True
) -> ReplayResult:
    """Re-evaluate every program under ``current`` (before) and ``candidate`` (after).

    ``with_programs=False`` skips materialising the per-program frame (``programs`` is then None).

    Returns:
        ``programs``: one row per program with ``before_*``/``after_*`` status, verdict, alert counts and
        breach codes; ``summary``: per entry, programs, alerts before/after by level, verdict changes;
        ``changes``: the programs whose verdict changes (pump, seq, entry, verdict before and after).
    """
    lazy = evaluate(evaluate(prepare(programs).lazy(), current, "before"), candidate, "after")
    before, after = pl.col("before_verdict"), pl.col("after_verdict")
    changed = (before != after) | (before.is_null() != after.is_null())
    summary_query = (
        lazy.group_by("entry_id")
        .agg(
            pl.len().alias("programs"),
            pl.col("before_soft").sum().alias("soft_alerts_before"),
            pl.col("after_soft").sum().alias("soft_alerts_after"),
            pl.col("before_hard").sum().alias("hard_alerts_before"),
            pl.col("after_hard").sum().alias("hard_alerts_after"),
            (before == 1).sum().alias("soft_programs_before"),
            (after == 1).sum().alias("soft_programs_after"),
            (before == 2).sum().alias("hard_programs_before"),
            (after == 2).sum().alias("hard_programs_after"),
            changed.sum().alias("verdict_changes"),
            (pl.col("after_status").cast(pl.String) != "evaluated").sum().alias("not_evaluated_after"),
        )
        .with_columns(pl.col("entry_id").cast(pl.String))
        .sort("entry_id", nulls_last=True)
    )
    changes_query = (
        lazy.filter(changed)
        .select(
            pl.col("pump").cast(pl.String),
            "seq",
            pl.col("entry_id").cast(pl.String),
            verdict_name(before).alias("verdict_before"),
            verdict_name(after).alias("verdict_after"),
            pl.col("after_status"),
        )
        .sort("pump", "seq")
    )
    queries = [summary_query, changes_query, *([lazy] if with_programs else [])]
    summary, changes, *rest = pl.collect_all(queries)
    return ReplayResult(programs=rest[0] if rest else None, summary=summary, changes=changes)


def verdict_name(code: pl.Expr) -> pl.Expr:
    """A verdict code (0/1/2, null) as its name (ok/soft/hard, null)."""
    return code.replace_strict({0: "ok", 1: "soft", 2: "hard"}, default=None, return_dtype=pl.String)


def alert_rules(row: dict[str, object], prefix: str) -> list[str]:
    """The ``ders.<parameter>.<limit kind>`` rule ids a replayed program row fires under ``prefix``."""
    rules: list[str] = []
    for parameter, _ in REPLAYED_RULES:
        code = row[f"{prefix}:{parameter}"]
        assert isinstance(code, int)
        kind = BREACH_KINDS[code]
        if kind is not None:
            rules.append(f"ders.{parameter}.{kind.value}")
    carried = row.get("alert_rules") or []
    assert isinstance(carried, list)
    rules.extend(str(r) for r in carried if str(r).startswith(DEVICE_RULE_PREFIX))
    return rules
