"""API schemas of the bench (/bench): requests forbid unknown fields and bound every value."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SetName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
Notes = Annotated[str, StringConstraints(max_length=4000)]
Rate = Annotated[float, Field(gt=0, le=1000, description="set rate, mL/h")]


class TwinRun(BaseModel):
    """Run the test on the pump's model twin: rate, set or syringe, head height, back-pressure, seed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rate_ml_per_h: Rate
    set_name: SetName | None = None
    head_height_cm: float = Field(default=0.0, ge=-100, le=200)
    back_pressure_mmhg: float = Field(default=0.0, ge=-100, le=600)
    seed: int = Field(default=1, ge=0, le=2**31)
    notes: Notes = ""


class AnalyzerImport(BaseModel):
    """An analyzer or balance export (CSV text, see docs/bench.md) and the conditions of the recording."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    csv: Annotated[str, StringConstraints(min_length=1, max_length=900_000)]
    rate_ml_per_h: Rate
    set_name: SetName | None = None
    density_g_per_ml: float = Field(default=0.998, ge=0.5, le=2.0)
    notes: Notes = ""


class BenchSummaryOut(BaseModel):
    """One test of a pump's history (its trend)."""

    id: int
    record_id: int
    performed_at: datetime
    source: str
    set_name: str
    rate_ml_per_h: float
    tolerance_percent: float
    mean_error_percent: float
    short_window_spread_percent: float
    passed: bool


class BenchTestOut(BenchSummaryOut):
    """A whole test: start-up graph, trumpet curve, findings, occlusion results, conditions."""

    serial: str
    report: dict[str, Any]


class DueOut(BaseModel):
    """When the next performance check is due under the model's schedule."""

    due_at: datetime
    last_done: datetime | None
    is_overdue: bool


class PumpBenchOut(BaseModel):
    """A pump's bench page: model claims, history oldest first, next due date."""

    serial: str
    model: str
    claims: list[dict[str, float]]
    history: list[BenchSummaryOut]
    due: DueOut | None


class PerformerOut(BaseModel):
    """A pump's latest test in the fleet's worst-performers list."""

    serial: str
    model: str
    tolerance_used: float
    test: BenchSummaryOut
