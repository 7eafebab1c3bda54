"""Synthetic pump-event history (labelled synthetic everywhere) for the demo, benchmarks and tests.

Rates follow drug-library-data.md §7.2 (estimates): ~0.66 new infusions per pump-day on wards and
more in critical care, DERS use per care area, ~5 alerts per 100 programs, override 75 % / reprogram
20 % / cancel 5 %, log-normal soft-alert magnitudes, hard stops at 10x / 100x / 1.3-30x, and the BJN
2013 alarm mix. Every verdict comes from the real ``smartpump.ders.check`` against the library.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import polars as pl

from smartpump.analytics.frames import from_dicts
from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram, PatientParameters, ProgramKind, Verdict, VerdictLevel
from smartpump.errors import ProgramError, SmartpumpError
from smartpump.library.model import CareArea, DeliveryMode, DrugLibrary, Entry
from smartpump.pump.alarms import ALARMS, AlarmId, EndedBy
from smartpump.pump.events import EventType, EventValue, PumpEvent

DEFAULT_START: Final = datetime(2025, 1, 6, tzinfo=UTC)
_CRITICAL: Final = ("icu", "nicu", "or", "anesth", "pacu", "critical")
_LIBRARY_USE: Final = (("nicu", 0.80), ("icu", 0.92), ("ped", 0.85), ("or", 0.75), ("anesth", 0.75))
_ALARM_MIX: Final = (
    (AlarmId.OCCLUSION_DOWNSTREAM, 42),
    (AlarmId.CHANNEL_PAUSED, 28),
    (AlarmId.OCCLUSION_UPSTREAM, 18),
    (AlarmId.AIR_IN_LINE, 9),
    (AlarmId.DOOR_OPEN, 2),
    (AlarmId.BATTERY_LOW, 1),
)
"""The alarms a synthetic history raises (the pump's own alarm ids) and their relative weights."""
_OVERRIDE_REASONS: Final = ("clinically_appropriate", "physician_order", "titration", "other")


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryParameters:
    """Generator rates (defaults from drug-library-data.md §7.2; all estimates)."""

    ward_infusions_per_pump_day: float = 0.66
    critical_infusions_per_pump_day: float = 2.0
    alert_share: float = 0.05
    hard_share: float = 0.001
    soft_high_share: float = 0.7
    override_share: float = 0.75
    reprogram_share: float = 0.20
    auto_programmed_share: float = 0.3
    critical_alarms_per_hour: float = 0.5
    ward_alarms_per_hour: float = 0.15


def _is_critical(area: CareArea) -> bool:
    name = f"{area.id} {area.name}".casefold()
    return any(word in name for word in _CRITICAL)


def _library_use(area: CareArea) -> float:
    name = f"{area.id} {area.name}".casefold()
    return next((share for word, share in _LIBRARY_USE if word in name), 0.88)


def _poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _number(value: float, places: int = 3) -> Decimal:
    rounded = Decimal(str(round(value, places)))
    return rounded if rounded > 0 else Decimal(1).scaleb(-places)


def _usable(entry: Entry) -> bool:
    limits = entry.dose.limits
    has_concentration = entry.dose.unit.is_volume or len(entry.concentrations) >= 1
    return (
        entry.mode is DeliveryMode.CONTINUOUS
        and has_concentration
        and entry.dose.unit.is_rate
        and (limits.soft_max is not None or limits.hard_max is not None)
    )


class _PumpWriter:
    """Collects one pump's events, then numbers them by time (seq strictly increasing)."""

    def __init__(self, pump_id: str) -> None:
        self.pump_id = pump_id
        self.pending: list[tuple[datetime, int, str | None, EventType, dict[str, EventValue]]] = []

    def add(self, ts: datetime, channel: str | None, type_: EventType, **data: EventValue) -> None:
        self.pending.append((ts, len(self.pending), channel, type_, {**data, "synthetic": True}))

    def events(self) -> list[PumpEvent]:
        ordered = sorted(self.pending, key=lambda item: (item[0], item[1]))
        return [
            PumpEvent(pump=self.pump_id, seq=i, ts=ts, channel=channel, type=type_, data=data)
            for i, (ts, _, channel, type_, data) in enumerate(ordered, start=1)
        ]


class _Generator:
    def __init__(self, library: DrugLibrary, rng: random.Random, params: HistoryParameters) -> None:
        self.library, self.rng, self.params = library, rng, params
        self.entries = {a.id: [e for e in library.entries_in(a.id) if _usable(e)] for a in library.care_areas}
        self.areas = [a for a in library.care_areas if self.entries[a.id]]
        if not self.areas:
            raise SmartpumpError(
                "the library has no continuous entry with dose limits", code="analytics.library"
            )

    def weight(self, area: CareArea) -> Decimal:
        limits = area.weight_kg.limits
        low = float(limits.soft_min or limits.hard_min or Decimal(40))
        high = float(limits.soft_max or limits.hard_max or Decimal(120))
        return _number(self.rng.uniform(low, high), 1)

    def normal_dose(self, entry: Entry) -> float:
        limits = entry.dose.limits
        high = float(limits.soft_max or limits.hard_max or Decimal(1))
        low = float(limits.soft_min or limits.hard_min or Decimal(0)) or high / 20
        default = entry.dose.default
        if default is not None and self.rng.random() < 0.4 and low <= float(default) <= high:
            return float(default)
        return self.rng.uniform(low, high)

    def alert_dose(self, entry: Entry, intended: float) -> float:
        limits, rng = entry.dose.limits, self.rng
        if rng.random() < self.params.hard_share / self.params.alert_share:
            draw = rng.random()
            factor = (
                10.0
                if draw < 0.6
                else 100.0
                if draw < 0.75
                else math.exp(rng.uniform(0, math.log(30)) + 0.26)
            )
            return intended * factor
        high = rng.random() < self.params.soft_high_share
        if high and limits.soft_max is not None:
            ratio = math.exp(math.log(1.15) + rng.gauss(0, 0.2577))
            return float(limits.soft_max) * max(ratio, 1.01)
        if limits.soft_min is not None:
            ratio = math.exp(math.log(0.8) + rng.gauss(0, 0.2))
            return float(limits.soft_min) * min(ratio, 0.99)
        return intended

    def program(self, area: CareArea, entry: Entry, dose: float, weight: Decimal) -> InfusionProgram:
        return InfusionProgram(
            entry_id=entry.id,
            dose=_number(dose, 4),
            concentration=entry.concentrations[0] if entry.concentrations else None,
            patient=PatientParameters(weight_kg=weight if entry.needs_weight else None),
            vtbi_ml=None,
        )

    def checked(
        self,
        writer: _PumpWriter,
        ts: datetime,
        channel: str,
        area: CareArea,
        program: InfusionProgram,
        auto: bool,
    ) -> Verdict:
        verdict = check(self.library, area, program)  # raises ProgramError before anything is written
        entry = self.library.entry(verdict.entry_id) if verdict.entry_id else None
        writer.add(
            ts,
            channel,
            EventType.PROGRAM_CHECKED,
            entry_id=verdict.entry_id,
            drug=self.library.drug(entry.drug_id).shown_name if entry else None,
            care_area=area.id,
            kind=program.kind.value,
            dose=verdict.dose,
            dose_unit=verdict.dose_unit,
            dose_programmed=verdict.dose_programmed,
            rate_ml_per_h=verdict.rate_ml_per_h,
            vtbi_ml=verdict.vtbi_ml,
            verdict=verdict.level.value,
            alerts=_alert_data(verdict),
            library_version=self.library.version,
            is_basic=verdict.entry_id is None,
            auto_programmed=auto,
            is_titration=False,
            weight_kg=program.patient.weight_kg,
            concentration=str(program.concentration) if program.concentration else None,
        )
        return verdict

    def infusion(self, writer: _PumpWriter, area: CareArea, start: datetime, channel: str) -> None:
        rng, params = self.rng, self.params
        ts = start
        if area.basic_infusion.allowed and rng.random() > _library_use(area):
            rate = _number(rng.uniform(20, 150), 1)
            program = InfusionProgram(entry_id=None, kind=ProgramKind.BASIC, rate_ml_per_h=rate)
            verdict = self.checked(writer, ts, channel, area, program, False)
            if verdict.level is VerdictLevel.OK:
                self.run(writer, area, ts + timedelta(seconds=rng.uniform(3, 20)), channel, verdict)
            return
        entry = rng.choice(self.entries[area.id])
        weight = self.weight(area)
        intended = self.normal_dose(entry)
        alerting = rng.random() < params.alert_share
        dose = self.alert_dose(entry, intended) if alerting else intended
        auto = rng.random() < params.auto_programmed_share
        try:
            verdict = self.checked(writer, ts, channel, area, self.program(area, entry, dose, weight), auto)
        except ProgramError:
            return
        while verdict.level is not VerdictLevel.OK:
            ts += timedelta(seconds=rng.lognormvariate(math.log(8), 0.9))
            draw = rng.random()
            if verdict.level is VerdictLevel.SOFT and draw < params.override_share:
                writer.add(
                    ts,
                    channel,
                    EventType.ALERT_OVERRIDDEN,
                    reason=rng.choice(_OVERRIDE_REASONS),
                    entry_id=verdict.entry_id,
                    drug=self.library.drug(entry.drug_id).shown_name,
                    alerts=_alert_data(verdict),
                    library_version=self.library.version,
                )
                break
            if draw < params.override_share + params.reprogram_share or verdict.level is VerdictLevel.HARD:
                writer.add(
                    ts,
                    channel,
                    EventType.PROGRAM_REPROGRAMMED,
                    previous_verdict=verdict.level.value,
                    previous_alerts=_alert_data(verdict),
                    entry_id=verdict.entry_id,
                )
                ts += timedelta(seconds=rng.uniform(5, 40))
                program = self.program(area, entry, self.normal_dose(entry), weight)
                try:
                    verdict = self.checked(writer, ts, channel, area, program, auto)
                except ProgramError:
                    return
                continue
            writer.add(
                ts,
                channel,
                EventType.PROGRAM_CANCELLED,
                verdict=verdict.level.value,
                entry_id=verdict.entry_id,
                alerts=_alert_data(verdict),
            )
            return
        self.run(writer, area, ts + timedelta(seconds=rng.uniform(3, 20)), channel, verdict)

    def run(
        self, writer: _PumpWriter, area: CareArea, start: datetime, channel: str, verdict: Verdict
    ) -> None:
        rng, critical = self.rng, _is_critical(area)
        hours = rng.expovariate(1 / (8.0 if critical else 3.3))
        writer.add(
            start,
            channel,
            EventType.INFUSION_STARTED,
            entry_id=verdict.entry_id,
            drug=None,
            rate_ml_per_h=verdict.rate_ml_per_h,
            vtbi_ml=None,
            dose=verdict.dose,
            dose_unit=verdict.dose_unit,
        )
        per_hour = self.params.critical_alarms_per_hour if critical else self.params.ward_alarms_per_hour
        names, weights = zip(*_ALARM_MIX, strict=True)
        for _ in range(_poisson(rng, per_hour * hours)):
            raised = start + timedelta(hours=rng.uniform(0, hours))
            alarm = rng.choices(names, weights)[0]
            priority = ALARMS[alarm].priority.value
            writer.add(raised, channel, EventType.ALARM_RAISED, alarm=alarm.value, priority=priority)
            ack_s = round(rng.lognormvariate(math.log(60), 0.8), 1)
            cleared_data: dict[str, Any] = {
                "alarm": alarm.value,
                "by": EndedBy.OPERATOR.value,
                "duration_s": ack_s,
            }
            writer.add(raised + timedelta(seconds=ack_s), channel, EventType.ALARM_CLEARED, **cleared_data)
        reason = "user"
        writer.add(
            start + timedelta(hours=hours),
            channel,
            EventType.INFUSION_STOPPED,
            infused_ml=None,
            reason=reason,
        )


def _alert_data(verdict: Verdict) -> list[Any]:
    return [
        {
            "rule": a.rule,
            "parameter": a.parameter,
            "limit_kind": a.limit_kind.value,
            "limit": str(a.limit),
            "value": str(a.value),
            "unit": a.unit,
            "factor": None if a.factor is None else str(a.factor),
            "level": a.level.value,
        }
        for a in verdict.alerts
    ]


def generate_events(
    library: DrugLibrary,
    *,
    pumps: int,
    days: int,
    seed: int,
    start: datetime = DEFAULT_START,
    params: HistoryParameters | None = None,
) -> list[PumpEvent]:
    """A reproducible synthetic history: same library, counts and seed give the same events.

    Raises:
        SmartpumpError: ``analytics.bad_parameter`` for pumps or days < 1.
    """
    if pumps < 1 or days < 1:
        raise SmartpumpError("pumps and days must be at least 1", code="analytics.bad_parameter")
    rng = random.Random(seed)
    gen = _Generator(library, rng, params or HistoryParameters())
    events: list[PumpEvent] = []
    for number in range(1, pumps + 1):
        area = gen.areas[(number - 1) % len(gen.areas)]
        writer = _PumpWriter(f"SIM-{number:05d}")
        writer.add(
            start, None, EventType.CARE_AREA_SELECTED, care_area=area.id, library_version=library.version
        )
        mean = (
            gen.params.critical_infusions_per_pump_day
            if _is_critical(area)
            else gen.params.ward_infusions_per_pump_day
        )
        for day in range(days):
            for _ in range(_poisson(rng, mean)):
                begin = start + timedelta(days=day, seconds=rng.uniform(60, 86_000))
                gen.infusion(writer, area, begin, rng.choice(("A", "B")))
        events.extend(writer.events())
    return events


def generate(
    library: DrugLibrary,
    *,
    pumps: int,
    days: int,
    seed: int,
    start: datetime = DEFAULT_START,
    params: HistoryParameters | None = None,
) -> pl.DataFrame:
    """The synthetic history as an event frame (``frames.EVENT_SCHEMA``), every row ``synthetic``."""
    events = generate_events(library, pumps=pumps, days=days, seed=seed, start=start, params=params)
    return from_dicts(e.to_dict() for e in events)
