"""Pump events (dicts, ``PumpEvent``s, Parquet) -> one Polars frame of a declared schema, a row per event.

Numbers stay exact: each quantity is kept as its Decimal text and as an *encoded* Int64 (``<name>_x``):
``2 * floor(value * 10**9) + (1 if digits remain beyond the 9th decimal)``, so comparisons with a limit
of at most 9 decimals (also encoded) are exact: ``v > L`` iff ``v_x > L_x`` and ``v == L`` iff equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import polars as pl

from smartpump.errors import SmartpumpError
from smartpump.pump.events import EventType, PumpEvent

SCALE_DIGITS: Final = 9
_SCALE: Final = Decimal(10) ** SCALE_DIGITS
_MAX_ABS: Final = Decimal(4) * 10**9
SYNTHETIC_KEY: Final = "smartpump.synthetic"

#: Quantities carried both as exact text and as an encoded Int64 column named ``<name>_x``.
QUANTITIES: Final = (
    "dose",
    "dose_programmed",
    "rate_ml_per_h",
    "vtbi_ml",
    "weight_kg",
    "bsa_m2",
    "duration_min",
)

_TEXT_FIELDS: Final = (
    "entry_id",
    "drug",
    "care_area",
    "kind",
    "dose_unit",
    "verdict",
    "concentration",
    "reason",
    "alarm",
    "priority",
    "cleared_by",
)
_BOOL_FIELDS: Final = ("is_basic", "auto_programmed", "is_titration", "synthetic")

EVENT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "pump": pl.String(),
    "seq": pl.Int64(),
    "ts": pl.Datetime("us", "UTC"),
    "channel": pl.String(),
    "type": pl.String(),
    **{name: pl.String() for name in _TEXT_FIELDS},
    **{name: pl.String() for name in QUANTITIES},
    **{f"{name}_x": pl.Int64() for name in QUANTITIES},
    "library_version": pl.Int64(),
    **{name: pl.Boolean() for name in _BOOL_FIELDS},
    "alarm_duration_s": pl.Float64(),
    "alert_rules": pl.List(pl.String()),
    "alert_levels": pl.List(pl.String()),
    "alert_limits": pl.List(pl.String()),
    "alert_values": pl.List(pl.String()),
    "alert_factors": pl.List(pl.Float64()),
    "max_factor": pl.Float64(),
}


def encode(value: Decimal) -> int:
    """The encoded Int64 of an exact Decimal (see module docstring); refuses |value| >= 4e9."""
    if not value.is_finite() or abs(value) >= _MAX_ABS:
        raise SmartpumpError(f"value {value} is out of the analytics range", code="analytics.out_of_range")
    scaled = value * _SCALE
    floor = scaled.to_integral_value(rounding=ROUND_FLOOR)
    return 2 * int(floor) + (1 if scaled != floor else 0)


def encode_limit(value: Decimal) -> int:
    """The encoded Int64 of a limit; refuses limits with more than 9 decimals (not exactly comparable)."""
    encoded = encode(value)
    if encoded % 2:
        raise SmartpumpError(
            f"limit {value} has more than {SCALE_DIGITS} decimals", code="analytics.limit_precision"
        )
    return encoded


def _decimal(raw: Any, what: str) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool | float):
        raise SmartpumpError(f"{what} must be an exact decimal, got {raw!r}", code="analytics.bad_event")
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except InvalidOperation:
        raise SmartpumpError(f"{what} is not a number: {raw!r}", code="analytics.bad_event") from None
    if not value.is_finite():
        raise SmartpumpError(f"{what} is not finite: {raw!r}", code="analytics.bad_event")
    return value


def _factor(raw: Any) -> float:
    value = _decimal(raw, "alert factor")
    return float("inf") if value is None else float(value)


def _text(raw: Any) -> str | None:
    return None if raw is None else str(raw)


def _timestamp(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        ts = raw
    else:
        try:
            ts = datetime.fromisoformat(str(raw))
        except ValueError:
            raise SmartpumpError(f"bad event time {raw!r}", code="analytics.bad_event") from None
    if ts.tzinfo is None:
        raise SmartpumpError(
            f"event time {raw!r} has no time zone (UTC expected)", code="analytics.bad_event"
        )
    return ts.astimezone(UTC)


def flatten(event: Mapping[str, Any]) -> dict[str, Any]:
    """One event dict (as ``PumpEvent.to_dict`` writes it) -> one row of ``EVENT_SCHEMA``.

    Raises:
        SmartpumpError: code ``analytics.bad_event`` for a missing pump/seq/type/ts or a bad number.
    """
    try:
        pump, seq, type_ = str(event["pump"]), int(event["seq"]), str(event["type"])
        ts = _timestamp(event["ts"])
    except (KeyError, TypeError, ValueError) as error:
        raise SmartpumpError(f"not a pump event: {error}", code="analytics.bad_event") from None
    data: Mapping[str, Any] = event.get("data") or {}
    row: dict[str, Any] = {"pump": pump, "seq": seq, "ts": ts, "channel": _text(event.get("channel"))}
    row["type"] = type_
    for name in _TEXT_FIELDS:
        row[name] = _text(data.get(name))
    if row["verdict"] is None:
        row["verdict"] = _text(data.get("previous_verdict"))
    if type_ == EventType.ALARM_CLEARED:
        row["cleared_by"] = _text(data.get("by"))
    for name in QUANTITIES:
        value = _decimal(data.get(name), f"{type_} {name}")
        row[name] = None if value is None else str(value)
        row[f"{name}_x"] = None if value is None else encode(value)
    version = data.get("library_version")
    row["library_version"] = None if version is None else int(version)
    for name in _BOOL_FIELDS:
        flag = data.get(name)
        row[name] = None if flag is None else bool(flag)
    duration = data.get("duration_s") if type_ == EventType.ALARM_CLEARED else None
    row["alarm_duration_s"] = None if duration is None else float(duration)
    alerts = data.get("alerts") or data.get("previous_alerts") or []
    row["alert_rules"] = [str(a["rule"]) for a in alerts]
    row["alert_levels"] = [str(a["level"]) for a in alerts]
    row["alert_limits"] = [str(a["limit"]) for a in alerts]
    row["alert_values"] = [str(a["value"]) for a in alerts]
    row["alert_factors"] = [_factor(a.get("factor")) for a in alerts]
    row["max_factor"] = max(row["alert_factors"], default=None)
    return row


def from_dicts(events: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """A frame of ``EVENT_SCHEMA`` from event dicts, sorted by pump then seq."""
    rows = [flatten(e) for e in events]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row").sort("pump", "seq") if rows else empty()


def from_events(events: Iterable[PumpEvent]) -> pl.DataFrame:
    """A frame of ``EVENT_SCHEMA`` from ``PumpEvent`` objects (through ``to_dict``)."""
    return from_dicts(e.to_dict() for e in events)


def empty() -> pl.DataFrame:
    """An empty frame with the declared schema."""
    return pl.DataFrame(schema=EVENT_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with exactly the declared columns and types; refuses a frame missing a column."""
    missing = [name for name in EVENT_SCHEMA if name not in frame.columns]
    if missing:
        raise SmartpumpError(f"event frame lacks columns: {', '.join(missing)}", code="analytics.schema")
    return frame.select(pl.col(name).cast(dtype) for name, dtype in EVENT_SCHEMA.items())


def write_parquet(frame: pl.DataFrame, path: Path, *, synthetic: bool) -> None:
    """Write the frame to Parquet; the file's metadata says whether the data is synthetic."""
    conform(frame).write_parquet(path, metadata={SYNTHETIC_KEY: "true" if synthetic else "false"})


def read_parquet(path: Path) -> pl.DataFrame:
    """Read an event Parquet file written by ``write_parquet`` (schema checked)."""
    if not path.is_file():
        raise SmartpumpError(f"no such history file: {path}", code="analytics.no_file")
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise SmartpumpError(
            f"{path} is not a readable Parquet file: {error}", code="analytics.bad_file"
        ) from None
    return conform(frame)


def is_synthetic_file(path: Path) -> bool:
    """True when the Parquet file's metadata labels its data synthetic."""
    return pl.read_parquet_metadata(path).get(SYNTHETIC_KEY) == "true"
