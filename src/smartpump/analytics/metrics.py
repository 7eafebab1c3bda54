"""CQI metrics as pure transforms of an event frame (``frames.EVENT_SCHEMA``), each grouped by one dimension.

Definitions (docs/cqi.md): an infusion is an ``infusion.started`` event, attributed (care area, entry,
library version, auto-programming) to the last ``program.checked`` before it on the same pump and
channel; an alert is a ``program.checked`` with a soft or hard verdict.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import polars as pl

from smartpump.pump.alarms import EndedBy
from smartpump.pump.events import EventType

COMPLIANCE_TARGET: Final = 0.95
OVERRIDE_WINDOW_S: Final = 2.0
_FLOW: Final = (
    EventType.PROGRAM_CHECKED,
    EventType.ALERT_OVERRIDDEN,
    EventType.PROGRAM_REPROGRAMMED,
    EventType.PROGRAM_CANCELLED,
    EventType.PROGRAM_CONFIRMED,
    EventType.INFUSION_STARTED,
)
_ATTRIBUTES: Final = ("care_area", "entry_id", "library_version", "auto_programmed", "is_basic")


class Dimension(StrEnum):
    """What a metric is grouped by."""

    CARE_AREA = "care_area"
    ENTRY = "entry"
    PUMP = "pump"
    LIBRARY_VERSION = "library_version"
    WEEK = "week"


def _key(by: Dimension) -> pl.Expr:
    match by:
        case Dimension.CARE_AREA:
            return pl.col("care_area").alias(by.value)
        case Dimension.ENTRY:
            return pl.col("entry_id").alias(by.value)
        case Dimension.PUMP:
            return pl.col("pump").alias(by.value)
        case Dimension.LIBRARY_VERSION:
            return pl.col("library_version").alias(by.value)
        case Dimension.WEEK:
            return pl.col("ts").dt.truncate("1w").dt.date().alias(by.value)


def _of(events: pl.DataFrame, type_: str) -> pl.DataFrame:
    return events.filter(pl.col("type") == type_)


def _checks(events: pl.DataFrame) -> pl.DataFrame:
    return _of(events, EventType.PROGRAM_CHECKED).sort("seq")


def _attributed(rows: pl.DataFrame, events: pl.DataFrame, by: tuple[str, ...]) -> pl.DataFrame:
    """Rows with the attributes of the last ``program.checked`` before them (same ``by`` columns)."""
    source = (
        _checks(events)
        .select(
            "pump",
            "channel",
            pl.col("seq").alias("check_seq"),
            pl.col("ts").alias("check_ts"),
            pl.col("verdict").alias("check_verdict"),
            pl.col("max_factor").alias("check_factor"),
            *[pl.col(a).alias(f"check_{a}") for a in _ATTRIBUTES],
        )
        .sort("check_seq")
    )
    joined = rows.sort("seq").join_asof(
        source, left_on="seq", right_on="check_seq", by=list(by), strategy="backward", check_sortedness=False
    )
    return joined.with_columns(pl.coalesce(pl.col(a), pl.col(f"check_{a}")).alias(a) for a in _ATTRIBUTES)


def _starts(events: pl.DataFrame) -> pl.DataFrame:
    starts = _attributed(_of(events, EventType.INFUSION_STARTED), events, ("pump", "channel"))
    return starts.with_columns(is_basic=pl.col("entry_id").is_null())


def _count_by(frame: pl.DataFrame, by: Dimension, **aggs: pl.Expr) -> pl.DataFrame:
    if frame.is_empty():
        return pl.DataFrame(schema={by.value: pl.String, **dict.fromkeys(aggs, pl.UInt32)})
    return frame.group_by(_key(by)).agg(**aggs)


def _merge(by: Dimension, *frames: pl.DataFrame) -> pl.DataFrame:
    merged = frames[0]
    for other in frames[1:]:
        if merged.schema[by.value] != other.schema[by.value]:
            other = other.with_columns(pl.col(by.value).cast(merged.schema[by.value]))
        merged = merged.join(other, on=by.value, how="full", coalesce=True)
    counts = [c for c, t in merged.schema.items() if c != by.value and t.is_integer()]
    return merged.with_columns(pl.col(counts).fill_null(0)).sort(by.value, nulls_last=True)


def _rate(numerator: str, denominator: str, scale: float = 1.0) -> pl.Expr:
    """numerator / denominator x scale; null (not 0, not inf) when the denominator is 0."""
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) * scale / pl.col(denominator))


def compliance(events: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """DERS compliance = library starts / all starts (a basic start has no entry); target >= 95 %."""
    starts = _starts(events)
    frame = _count_by(starts, by, infusions=pl.len(), library_starts=(~pl.col("is_basic")).sum())
    return (
        frame.with_columns(
            basic_starts=pl.col("infusions") - pl.col("library_starts"),
            compliance=_rate("library_starts", "infusions"),
        )
        .with_columns(meets_target=pl.col("compliance") >= COMPLIANCE_TARGET)
        .sort(by.value, nulls_last=True)
    )


def alerts(events: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """Soft and hard alerts (alerting ``program.checked``) per 100 infusions started."""
    checks = _checks(events)
    alerting = _count_by(
        checks,
        by,
        programs=pl.len(),
        soft_alerts=(pl.col("verdict") == "soft").sum(),
        hard_alerts=(pl.col("verdict") == "hard").sum(),
    )
    starts = _count_by(_starts(events), by, infusions=pl.len())
    return _merge(by, starts, alerting).with_columns(
        soft_per_100=_rate("soft_alerts", "infusions", 100.0),
        hard_per_100=_rate("hard_alerts", "infusions", 100.0),
    )


def overrides(events: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """Override rate = overrides / soft alerts; within 2 s = override ts - check ts <= 2 s (same channel)."""
    soft = _count_by(_checks(events).filter(pl.col("verdict") == "soft"), by, soft_alerts=pl.len())
    rows = _attributed(_of(events, EventType.ALERT_OVERRIDDEN), events, ("pump", "channel"))
    rows = rows.with_columns(
        fast=(pl.col("ts") - pl.col("check_ts")).dt.total_microseconds() <= int(OVERRIDE_WINDOW_S * 1e6)
    )
    done = _count_by(rows, by, overrides=pl.len(), overrides_within_2s=pl.col("fast").sum())
    return _merge(by, soft, done).with_columns(
        override_rate=_rate("overrides", "soft_alerts"),
        within_2s_rate=_rate("overrides_within_2s", "overrides"),
    )


def program_flow(events: pl.DataFrame) -> pl.DataFrame:
    """Program-flow events per pump and channel, each with the event just before it."""
    flow = events.filter(pl.col("type").is_in(_FLOW)).sort("pump", "channel", "seq")
    previous = [
        "type",
        "seq",
        "verdict",
        "max_factor",
        "ts",
        "dose",
        "dose_programmed",
        "alert_rules",
        *_ATTRIBUTES,
    ]
    return flow.with_columns(pl.col(previous).shift(1).over("pump", "channel").name.prefix("prev_"))


def catch_events(events: pl.DataFrame) -> pl.DataFrame:
    """Good catches: a reprogram or cancel right after a soft/hard ``program.checked`` on the same
    channel; ``averted_factor`` is that check's largest alert factor. Attributes are the check's."""
    flow = program_flow(events)
    catches = flow.filter(
        pl.col("type").is_in([EventType.PROGRAM_REPROGRAMMED, EventType.PROGRAM_CANCELLED])
        & (pl.col("prev_type") == EventType.PROGRAM_CHECKED)
        & pl.col("prev_verdict").is_in(["soft", "hard"])
    )
    return catches.select(
        "pump",
        "seq",
        "channel",
        pl.col("prev_seq").alias("check_seq"),
        pl.col("prev_ts").alias("ts"),
        "type",
        pl.col("prev_verdict").alias("verdict"),
        pl.col("prev_max_factor").alias("averted_factor"),
        pl.col("prev_dose").alias("dose"),
        pl.col("prev_dose_programmed").alias("dose_programmed"),
        pl.col("prev_alert_rules").alias("alert_rules"),
        *[pl.col(f"prev_{a}").alias(a) for a in _ATTRIBUTES],
    )


def good_catches(events: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """Good catches (soft and hard), reprograms vs cancels, and the averted dose factor."""
    return _count_by(
        catch_events(events),
        by,
        good_catches=pl.len(),
        soft_catches=(pl.col("verdict") == "soft").sum(),
        hard_catches=(pl.col("verdict") == "hard").sum(),
        reprograms=(pl.col("type") == EventType.PROGRAM_REPROGRAMMED).sum(),
        cancels=(pl.col("type") == EventType.PROGRAM_CANCELLED).sum(),
        median_averted_factor=pl.col("averted_factor").median(),
        max_averted_factor=pl.col("averted_factor").max(),
    ).sort(by.value, nulls_last=True)


def hard_stops(events: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """Hard-stop hits (hard ``program.checked``), per 100 infusions, and the largest factor."""
    hard = _count_by(
        _checks(events).filter(pl.col("verdict") == "hard"),
        by,
        hard_stops=pl.len(),
        max_factor=pl.col("max_factor").max(),
    )
    starts = _count_by(_starts(events), by, infusions=pl.len())
    return _merge(by, starts, hard).with_columns(hard_stops_per_100=_rate("hard_stops", "infusions", 100.0))


def top_alerting_entries(events: pl.DataFrame, limit: int = 10) -> pl.DataFrame:
    """Entries ranked by alerts (soft + hard), with overrides, good catches and share of all alerts."""
    checks = _checks(events).filter(
        pl.col("verdict").is_in(["soft", "hard"]) & pl.col("entry_id").is_not_null()
    )
    by = Dimension.ENTRY
    counted = _count_by(
        checks,
        by,
        drug=pl.col("drug").first(),
        alerts=pl.len(),
        soft_alerts=(pl.col("verdict") == "soft").sum(),
        hard_alerts=(pl.col("verdict") == "hard").sum(),
    )
    if counted.is_empty():
        return counted
    overridden = _count_by(_of(events, EventType.ALERT_OVERRIDDEN), by, overrides=pl.len())
    caught = _count_by(catch_events(events), by, good_catches=pl.len())
    merged = counted.join(overridden, on=by.value, how="left").join(caught, on=by.value, how="left")
    total = merged["alerts"].sum()
    return (
        merged.with_columns(pl.col("overrides", "good_catches").fill_null(0))
        .with_columns(share_of_alerts=pl.col("alerts") / total)
        .sort(["alerts", by.value], descending=[True, False])
        .head(limit)
    )


def outdated_library(events: pl.DataFrame, by: Dimension, latest_version: int) -> pl.DataFrame:
    """Starts programmed under a library older than ``latest_version`` (the latest released one)."""
    return (
        _count_by(
            _starts(events),
            by,
            infusions=pl.len(),
            outdated_starts=(pl.col("library_version") < latest_version).sum(),
        )
        .with_columns(outdated_share=_rate("outdated_starts", "infusions"))
        .sort(by.value, nulls_last=True)
    )


def auto_programmed(events: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """Share of starts whose program came from the EHR (auto-programmed)."""
    return (
        _count_by(
            _starts(events),
            by,
            infusions=pl.len(),
            auto_programmed_starts=pl.col("auto_programmed").fill_null(False).sum(),
        )
        .with_columns(auto_programmed_share=_rate("auto_programmed_starts", "infusions"))
        .sort(by.value, nulls_last=True)
    )


def _pump_state(rows: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Rows with the care area, entry and library version of the pump's last state event before them."""
    state = (
        events.filter(pl.col("care_area").is_not_null())
        .select(
            "pump",
            pl.col("seq").alias("state_seq"),
            pl.col("care_area").alias("state_care_area"),
            pl.col("entry_id").alias("state_entry_id"),
            pl.col("library_version").alias("state_library_version"),
        )
        .sort("state_seq")
    )
    joined = rows.drop("care_area", "entry_id", "library_version").sort("seq")
    joined = joined.join_asof(
        state, left_on="seq", right_on="state_seq", by="pump", strategy="backward", check_sortedness=False
    )
    return joined.rename(
        {
            "state_care_area": "care_area",
            "state_entry_id": "entry_id",
            "state_library_version": "library_version",
        }
    )


def alarms(events: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """Alarms per pump-hour by alarm type, and time to acknowledge (operator clears).

    Pump-hours are the time between a pump's consecutive events, each gap counted in the state
    (care area, entry, library version, week) of the event that opens it.
    """
    ordered = events.sort("pump", "seq").with_columns(
        gap_h=(pl.col("ts").shift(-1).over("pump") - pl.col("ts")).dt.total_seconds(fractional=True) / 3600.0
    )
    hours = _count_by(_pump_state(ordered, events), by, pump_hours=pl.col("gap_h").fill_null(0.0).sum())
    raised = _pump_state(_of(events, EventType.ALARM_RAISED), events)
    cleared = _pump_state(
        _of(events, EventType.ALARM_CLEARED).filter(pl.col("cleared_by") == EndedBy.OPERATOR), events
    )
    if raised.is_empty():
        return pl.DataFrame(
            schema={
                by.value: hours.schema[by.value],
                "alarm": pl.String,
                "alarms": pl.UInt32,
                "pump_hours": pl.Float64,
            }
        )
    counted = raised.group_by(_key(by), "alarm").agg(alarms=pl.len())
    acks = cleared.group_by(_key(by), "alarm").agg(
        acknowledged=pl.len(),
        median_ack_s=pl.col("alarm_duration_s").median(),
        mean_ack_s=pl.col("alarm_duration_s").mean(),
    )
    return (
        counted.join(acks, on=[by.value, "alarm"], how="left")
        .join(hours, on=by.value, how="left")
        .with_columns(pl.col("acknowledged").fill_null(0))
        .with_columns(alarms_per_pump_hour=_rate("alarms", "pump_hours"))
        .sort(by.value, "alarm", nulls_last=True)
    )
