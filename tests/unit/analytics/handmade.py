"""A small handmade event history (synthetic) whose CQI figures are computed by hand in the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from smartpump.analytics.frames import from_dicts

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def event(
    pump: str, seq: int, seconds: float, type_: str, channel: str | None = "A", **data: Any
) -> dict[str, Any]:
    """One event dict as PumpEvent.to_dict writes it."""
    ts = (T0 + timedelta(seconds=seconds)).isoformat()
    return {"v": 1, "pump": pump, "seq": seq, "ts": ts, "channel": channel, "type": type_, "data": data}


def alert(rule: str, level: str, factor: str, limit: str = "10", value: str = "12") -> dict[str, Any]:
    """One alert as the pump writes it in event data."""
    kind = rule.rsplit(".", 1)[1]
    return {
        "rule": rule,
        "parameter": "dose",
        "limit_kind": kind,
        "limit": limit,
        "value": value,
        "unit": "mg/h",
        "factor": factor,
        "level": level,
    }


def checked(
    pump: str,
    seq: int,
    seconds: float,
    area: str,
    entry: str | None,
    verdict: str,
    alerts: list[dict[str, Any]] | None = None,
    version: int = 2,
    auto: bool = False,
    dose: str | None = "5",
    unit: str = "mg/h",
) -> dict[str, Any]:
    """A program.checked event."""
    return event(
        pump,
        seq,
        seconds,
        "program.checked",
        entry_id=entry,
        drug=None if entry is None else f"drug {entry}",
        care_area=area,
        kind="continuous" if entry else "basic",
        dose=dose if entry else None,
        dose_unit=unit if entry else "mL/h",
        rate_ml_per_h="5",
        verdict=verdict,
        alerts=alerts or [],
        library_version=version,
        is_basic=entry is None,
        auto_programmed=auto,
        is_titration=False,
    )


def started(pump: str, seq: int, seconds: float, entry: str | None) -> dict[str, Any]:
    """An infusion.started event."""
    return event(pump, seq, seconds, "infusion.started", entry_id=entry, rate_ml_per_h="5")


SOFT_12 = [alert("ders.dose.soft_max", "soft", "1.2")]
HARD_10 = [alert("ders.dose.hard_max", "hard", "10", value="100")]
SOFT_15 = [alert("ders.dose.soft_max", "soft", "1.5")]
SOFT_20 = [alert("ders.dose.soft_max", "soft", "2")]

EVENTS = [
    # P1, ICU: ok start (auto); soft overridden after 1.5 s, started; hard (v1) reprogrammed; ok (v1) started.
    checked("P1", 1, 0, "ICU", "E1", "ok", auto=True),
    started("P1", 2, 10, "E1"),
    checked("P1", 3, 100, "ICU", "E1", "soft", SOFT_12, dose="12"),
    event("P1", 4, 101.5, "alert.overridden", reason="clinically_appropriate", entry_id="E1", alerts=SOFT_12),
    started("P1", 5, 105, "E1"),
    checked("P1", 6, 200, "ICU", "E2", "hard", HARD_10, version=1, dose="100"),
    event(
        "P1", 7, 220, "program.reprogrammed", previous_verdict="hard", previous_alerts=HARD_10, entry_id="E2"
    ),
    checked("P1", 8, 230, "ICU", "E2", "ok", version=1),
    started("P1", 9, 240, "E2"),
    # P2, WARD: basic start, soft overridden after 10 s then started, soft cancelled, one alarm acked in 60 s.
    checked("P2", 1, 0, "WARD", None, "ok"),
    started("P2", 2, 5, None),
    checked("P2", 3, 50, "WARD", "E3", "soft", SOFT_15, dose="15"),
    event("P2", 4, 60, "alert.overridden", reason="physician_order", entry_id="E3", alerts=SOFT_15),
    started("P2", 5, 65, "E3"),
    checked("P2", 6, 100, "WARD", "E3", "soft", SOFT_20, dose="20"),
    event("P2", 7, 110, "program.cancelled", verdict="soft", entry_id="E3", alerts=SOFT_20),
    event("P2", 8, 3600, "alarm.raised", alarm="occlusion.downstream", priority="high"),
    event("P2", 9, 3660, "alarm.cleared", alarm="occlusion.downstream", by="operator", duration_s=60),
]


def frame() -> pl.DataFrame:
    """The handmade history as an event frame."""
    return from_dicts(EVENTS)
