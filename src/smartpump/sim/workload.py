"""A hospital's infusion workload on a Fleet, with the rates of drug-library-data.md section 7.2.

Pumps are spread round-robin over the library's care areas; on each channel a nurse starts
infusions, titrates, answers alerts and alarms, all through the real ``Pump`` API, so every event
is the pump's own. Randomness comes from one ``random.Random`` per pump, seeded from the run seed.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final

from smartpump.ders.check import check
from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind, Verdict
from smartpump.errors import SmartpumpError
from smartpump.library.limits import LimitSet
from smartpump.library.model import CareArea, DeliveryMode, DrugLibrary, Entry
from smartpump.pump.alarms import AlarmId
from smartpump.pump.capabilities import Capabilities, PumpModel, capabilities
from smartpump.pump.channel import ChannelState
from smartpump.pump.device import OverrideReason, Pump
from smartpump.pump.events import EventType, PumpEvent
from smartpump.sim.fleet import Fleet
from smartpump.sim.patients import synthetic_patient
from smartpump.units import round_half_up

HOUR_S: Final = 3600.0
DAY_S: Final = 86400.0
SOFT_HIGH_MEDIAN: Final = 1.15
SOFT_HIGH_P90: Final = 1.6
SOFT_LOW_MEDIAN: Final = 0.8
Z90: Final = 1.2815515655446004


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaProfile:
    """How one kind of care area uses its pumps (section 7.2 defaults; estimates, not measurements)."""

    kind: str
    model: PumpModel
    channels: int
    library_use: float
    starts_per_channel_day: float
    titrations_per_channel_day: float
    infusion_h_mean: float
    alarms_per_infusion_h: float


WARD_ALARMS_PER_H: Final = -math.log(0.56) / 3.3
PROFILES: Final[dict[str, AreaProfile]] = {
    p.kind: p
    for p in (
        AreaProfile(
            kind="icu",
            model=PumpModel.LVP,
            channels=3,
            library_use=0.92,
            starts_per_channel_day=2.0,
            titrations_per_channel_day=4.0,
            infusion_h_mean=8.0,
            alarms_per_infusion_h=0.5,
        ),
        AreaProfile(
            kind="nicu",
            model=PumpModel.SYRINGE,
            channels=1,
            library_use=0.80,
            starts_per_channel_day=1.5,
            titrations_per_channel_day=1.5,
            infusion_h_mean=8.0,
            alarms_per_infusion_h=0.3,
        ),
        AreaProfile(
            kind="pediatrics",
            model=PumpModel.LVP,
            channels=2,
            library_use=0.85,
            starts_per_channel_day=1.5,
            titrations_per_channel_day=0.0,
            infusion_h_mean=3.3,
            alarms_per_infusion_h=WARD_ALARMS_PER_H,
        ),
        AreaProfile(
            kind="or",
            model=PumpModel.LVP,
            channels=2,
            library_use=0.75,
            starts_per_channel_day=3.0,
            titrations_per_channel_day=2.0,
            infusion_h_mean=2.0,
            alarms_per_infusion_h=0.3,
        ),
        AreaProfile(
            kind="pca",
            model=PumpModel.PCA,
            channels=1,
            library_use=1.0,
            starts_per_channel_day=1.0,
            titrations_per_channel_day=0.0,
            infusion_h_mean=16.0,
            alarms_per_infusion_h=0.1,
        ),
        AreaProfile(
            kind="medsurg",
            model=PumpModel.LVP,
            channels=1,
            library_use=0.88,
            starts_per_channel_day=1.5,
            titrations_per_channel_day=0.0,
            infusion_h_mean=3.3,
            alarms_per_infusion_h=WARD_ALARMS_PER_H,
        ),
    )
}

ALARM_MIX: Final = (
    ("occlusion_downstream", 0.42),
    ("user_pause", 0.28),
    ("occlusion_upstream", 0.18),
    ("air", 0.09),
    ("door", 0.02),
    ("ac_lost", 0.01),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadParams:
    """Rates of the generator (section 7.2): alerts, outcomes, magnitudes, response times."""

    soft_errors_per_100: float = 4.9
    hard_errors_per_100: float = 0.1
    override_share: float = 0.75
    reprogram_share: float = 0.20
    soft_low_share: float = 0.30
    hard_10x_share: float = 0.60
    hard_100x_share: float = 0.15
    hard_reprogram_share: float = 0.80
    response_median_s: float = 90.0
    pca_demand_mean_min: float = 30.0


def profile_for(area: CareArea) -> AreaProfile:
    """The usage profile of a care area, chosen from words in its id and name (medsurg otherwise)."""
    words = set(re.split(r"[^a-z0-9]+", f"{area.id} {area.name}".lower()))
    if "nicu" in words or "neonatal" in words:
        return PROFILES["nicu"]
    if "pca" in words:
        return PROFILES["pca"]
    if words & {"icu", "picu", "ccu", "critical"}:
        return PROFILES["icu"]
    if words & {"pediatrics", "pediatric", "peds", "paediatrics"}:
        return PROFILES["pediatrics"]
    if words & {"or", "anesthesia", "anaesthesia", "pacu", "theatre"}:
        return PROFILES["or"]
    return PROFILES["medsurg"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A usable library order on one pump model: the intended program and the rate it runs at."""

    entry: Entry
    program: InfusionProgram
    rate_ml_per_h: Decimal


def _significant(value: float, digits: int = 3) -> Decimal:
    return Decimal(f"{value:.{digits}g}")


def typical(limits: LimitSet, default: Decimal | None) -> Decimal:
    """The usual value inside a limit set: its default, else the middle of the soft (or hard) range."""
    if default is not None:
        return default
    low = limits.soft_min if limits.soft_min is not None else limits.hard_min
    high = limits.soft_max if limits.soft_max is not None else limits.hard_max
    if low is not None and high is not None:
        return _significant(float(low + high) / 2)
    if high is not None:
        return _significant(float(high) / 2)
    if low is not None:
        return _significant(float(low) * 2)
    return Decimal(1)


def _patient(area: CareArea, entry: Entry) -> PatientParameters:
    weight = typical(area.weight_kg.limits, None) if area.weight_kg.limits != LimitSet() else Decimal(70)
    return PatientParameters(weight_kg=weight, height_cm=Decimal(170) if entry.needs_bsa else None)


def _pca_program(entry: Entry, area: CareArea) -> InfusionProgram | None:
    limits = entry.pca
    if limits is None or not entry.concentrations:
        return None
    max_dose = None if limits.max_dose is None else typical(limits.max_dose.limits, limits.max_dose.default)
    return InfusionProgram(
        entry_id=entry.id,
        kind=ProgramKind.PCA,
        concentration=entry.concentrations[0],
        patient=_patient(area, entry),
        vtbi_ml=entry.concentrations[0].volume_ml,
        pca=PCAProgram(
            demand_dose=typical(limits.demand_dose.limits, limits.demand_dose.default),
            lockout_min=typical(limits.lockout_min.limits, limits.lockout_min.default),
            max_dose=max_dose,
            max_dose_window_h=limits.max_dose_window_h or area.pca.max_dose_window_h or 1,
        ),
    )


def orders_for(library: DrugLibrary, area: CareArea, caps: Capabilities) -> tuple[Order, ...]:
    """The entries of a care area a nurse can run on this model, each with an intended program
    whose verdict is ok and whose rate the model accepts (others are left out)."""
    found: list[Order] = []
    for entry in library.entries_in(area.id):
        if entry.devices and caps.device_type not in entry.devices:
            continue
        if (entry.mode is DeliveryMode.PCA) != (caps.model is PumpModel.PCA) or not entry.concentrations:
            continue
        if entry.mode is DeliveryMode.PCA:
            program = _pca_program(entry, area)
        else:
            program = InfusionProgram(
                entry_id=entry.id,
                dose=typical(entry.dose.limits, entry.dose.default),
                concentration=entry.concentrations[0],
                patient=_patient(area, entry),
            )
        if program is None:
            continue
        try:
            verdict = check(library, area, program)
            if verdict.level != "ok":
                continue
            if entry.mode is not DeliveryMode.PCA:
                caps.check_rate(verdict.rate_ml_per_h)
        except SmartpumpError:
            continue
        found.append(Order(entry=entry, program=program, rate_ml_per_h=verdict.rate_ml_per_h))
    return tuple(found)


@dataclass(slots=True, kw_only=True)
class WorkloadStats:
    """What the generator asked for (the pump's events say what happened)."""

    infusions: int = 0
    library_programs: int = 0
    basic_programs: int = 0
    soft_errors: int = 0
    hard_errors: int = 0
    titrations: int = 0
    injected_alarms: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True, kw_only=True)
class _Slot:
    pump_id: str
    channel: str
    area: CareArea
    profile: AreaProfile
    caps: Capabilities
    rng: random.Random
    orders: tuple[Order, ...]
    token: int = 0
    program: InfusionProgram | None = None


class HospitalWorkload:
    """Nurses driving ``pumps`` pumps of a Fleet; call ``start()`` once, then run the Environment."""

    def __init__(self, fleet: Fleet, *, pumps: int, seed: int, params: WorkloadParams | None = None) -> None:
        self.fleet = fleet
        self.env = fleet.env
        self.params = params or WorkloadParams()
        self.stats = WorkloadStats()
        self.seed = seed
        library = fleet.library
        self._slots: dict[tuple[str, str], _Slot] = {}
        areas = [a for a in library.care_areas if self._usable(library, a)]
        if not areas:
            raise ValueError("no care area of the library has a usable order or allows basic infusions")
        self._sigma_high = math.log(SOFT_HIGH_P90 / SOFT_HIGH_MEDIAN) / Z90
        for index in range(pumps):
            area = areas[index % len(areas)]
            profile = profile_for(area)
            caps = capabilities(profile.model)
            pump_id = f"pump-{index + 1:05d}"
            fleet.add_pump(
                pump_id,
                profile.model,
                care_area=area.id,
                channels=profile.channels,
                patient=synthetic_patient(index),
            )
            rng = random.Random(f"{seed}:{pump_id}")
            orders = orders_for(library, area, caps)
            for cid in fleet.pumps[pump_id].channels:
                self._slots[(pump_id, cid)] = _Slot(
                    pump_id=pump_id,
                    channel=cid,
                    area=area,
                    profile=profile,
                    caps=caps,
                    rng=rng,
                    orders=orders,
                )
        fleet.subscribe(self._on_event)

    @staticmethod
    def _usable(library: DrugLibrary, area: CareArea) -> bool:
        caps = capabilities(profile_for(area).model)
        return bool(orders_for(library, area, caps)) or (
            area.basic_infusion.allowed and caps.model is not PumpModel.PCA
        )

    def start(self) -> None:
        """Schedule every channel's first infusion inside its first idle gap."""
        for slot in self._slots.values():
            self.env.schedule_in(slot.rng.uniform(0, self._gap_mean_s(slot)), self._starter(slot))

    # ----------------------------------------------------------------- helpers

    def _gap_mean_s(self, slot: _Slot) -> float:
        cycle_h = 24 / slot.profile.starts_per_channel_day
        return max(0.25, cycle_h - slot.profile.infusion_h_mean) * HOUR_S

    def _response_s(self, slot: _Slot) -> float:
        return slot.rng.lognormvariate(math.log(self.params.response_median_s), 0.6)

    def _try(self, slot: _Slot, action: Callable[[Pump], object]) -> bool:
        try:
            self.fleet.act(slot.pump_id, action)
        except SmartpumpError as error:
            self.stats.refused[error.code] += 1
            return False
        return True

    def _later(self, slot: _Slot, delay_s: float, action: Callable[[], None]) -> None:
        token = slot.token

        def run() -> None:
            if slot.token == token:
                action()

        self.env.schedule_in(delay_s, run)

    def _state(self, slot: _Slot) -> ChannelState:
        return self.fleet.pumps[slot.pump_id].channels[slot.channel].state

    # ----------------------------------------------------------------- starting an infusion

    def _starter(self, slot: _Slot) -> Callable[[], None]:
        return lambda: self._start_infusion(slot)

    def _start_infusion(self, slot: _Slot) -> None:
        slot.token += 1
        rng, profile = slot.rng, slot.profile
        duration_h = min(48.0, max(0.25, rng.expovariate(1 / profile.infusion_h_mean)))
        use_library = bool(slot.orders) and (
            rng.random() < profile.library_use or not slot.area.basic_infusion.allowed
        )
        self.stats.infusions += 1
        if use_library:
            started = self._start_library(slot, rng.choice(slot.orders), duration_h)
        elif slot.area.basic_infusion.allowed and slot.caps.model is not PumpModel.PCA:
            started = self._start_basic(slot, duration_h)
        else:
            started = False
        if not started:
            if self.fleet.pumps[slot.pump_id].channels[slot.channel].pending is not None:
                self._try(slot, lambda p: p.cancel(slot.channel))
            self._next_infusion(slot)
            return
        self._later(slot, duration_h * 3 * HOUR_S + HOUR_S, lambda: self._end(slot, "shift_end"))
        self._schedule_alarm(slot)
        if profile.titrations_per_channel_day > 0 and use_library and slot.caps.model is not PumpModel.PCA:
            self._schedule_titration(slot)
        if slot.caps.model is PumpModel.PCA:
            self._schedule_demand(slot)

    def _vtbi(self, slot: _Slot, rate: Decimal, duration_h: float) -> Decimal:
        caps = slot.caps
        volume = round_half_up(rate * _significant(duration_h, 4), caps.vtbi_resolution_ml)
        return min(caps.max_vtbi_ml, max(caps.min_vtbi_ml, volume))

    def _start_basic(self, slot: _Slot, duration_h: float) -> bool:
        self.stats.basic_programs += 1
        rate = Decimal(slot.rng.choice((25, 50, 75, 100, 125, 150)))
        rate = min(rate, slot.caps.max_rate_ml_per_h)
        program = InfusionProgram(
            entry_id=None,
            kind=ProgramKind.BASIC,
            rate_ml_per_h=rate,
            vtbi_ml=self._vtbi(slot, rate, duration_h),
        )
        return self._program_and_start(slot, program, program)

    def _start_library(self, slot: _Slot, order: Order, duration_h: float) -> bool:
        self.stats.library_programs += 1
        if order.program.kind is ProgramKind.PCA:
            return self._program_and_start(slot, order.program, order.program)
        intended = replace(order.program, vtbi_ml=self._vtbi(slot, order.rate_ml_per_h, duration_h))
        return self._program_and_start(slot, self._with_error(slot, order, intended), intended)

    def _with_error(self, slot: _Slot, order: Order, intended: InfusionProgram) -> InfusionProgram:
        rng, params = slot.rng, self.params
        assert intended.dose is not None
        roll = rng.random() * 100
        if roll < params.hard_errors_per_100:
            self.stats.hard_errors += 1
            pick = rng.random()
            if pick < params.hard_10x_share:
                factor = 10.0
            elif pick < params.hard_10x_share + params.hard_100x_share:
                factor = 100.0
            else:
                factor = math.exp(rng.uniform(math.log(1.3), math.log(30)))
            return replace(intended, dose=_significant(float(intended.dose) * factor, 4))
        if roll < params.hard_errors_per_100 + params.soft_errors_per_100:
            self.stats.soft_errors += 1
            limits = order.entry.dose.limits
            if rng.random() < params.soft_low_share and limits.soft_min is not None:
                dose = float(limits.soft_min) * rng.lognormvariate(
                    math.log(SOFT_LOW_MEDIAN), self._sigma_high
                )
            else:
                base = float(limits.soft_max if limits.soft_max is not None else intended.dose)
                dose = base * rng.lognormvariate(math.log(SOFT_HIGH_MEDIAN), self._sigma_high)
            return replace(intended, dose=_significant(dose, 4))
        return intended

    def _program_and_start(self, slot: _Slot, program: InfusionProgram, intended: InfusionProgram) -> bool:
        cid = slot.channel
        verdict: list[Verdict] = []
        first = self._try(slot, lambda p: verdict.append(p.program(cid, program)))
        if not first and (
            program is intended or not self._try(slot, lambda p: verdict.append(p.program(cid, intended)))
        ):
            return False
        if not self._answer(slot, verdict[0], intended, reprogrammed=False):
            return False
        slot.program = intended
        return self._try(slot, lambda p: p.start(cid))

    def _answer(
        self, slot: _Slot, verdict: Verdict, intended: InfusionProgram, *, reprogrammed: bool
    ) -> bool:
        """The nurse's answer to a verdict: confirm, override, reprogram to the intended dose or cancel."""
        cid, rng, params = slot.channel, slot.rng, self.params
        if verdict.level == "ok":
            return self._try(slot, lambda p: p.confirm(cid))
        roll = rng.random()
        if verdict.level == "soft":
            if roll < params.override_share or reprogrammed:
                reason = rng.choice(list(OverrideReason))
                return self._try(slot, lambda p: p.override(cid, reason)) and self._try(
                    slot, lambda p: p.confirm(cid)
                )
            reprogram = roll < params.override_share + params.reprogram_share
        else:
            reprogram = roll < params.hard_reprogram_share and not reprogrammed
        if not reprogram:
            self._try(slot, lambda p: p.cancel(cid))
            return False
        again: list[Verdict] = []
        if not self._try(slot, lambda p: again.append(p.reprogram(cid, intended))):
            return False
        return self._answer(slot, again[0], intended, reprogrammed=True)

    # ----------------------------------------------------------------- running infusion

    def _end(self, slot: _Slot, reason: str) -> None:
        if self._state(slot) is not ChannelState.IDLE:
            self._try(slot, lambda p: p.stop(slot.channel, reason=reason))
        self._next_infusion(slot)

    def _next_infusion(self, slot: _Slot) -> None:
        slot.token += 1
        slot.program = None
        self.env.schedule_in(slot.rng.expovariate(1 / self._gap_mean_s(slot)), self._starter(slot))

    def _schedule_titration(self, slot: _Slot) -> None:
        per_s = slot.profile.titrations_per_channel_day / DAY_S
        self._later(slot, slot.rng.expovariate(per_s), lambda: self._titrate(slot))

    def _titrate(self, slot: _Slot) -> None:
        program = slot.program
        if self._state(slot) is ChannelState.RUNNING and program is not None and program.dose is not None:
            self.stats.titrations += 1
            new = replace(program, dose=_significant(float(program.dose) * slot.rng.uniform(0.7, 1.4)))
            verdict: list[Verdict] = []
            if self._try(slot, lambda p: verdict.append(p.program(slot.channel, new))) and self._answer(
                slot, verdict[0], new, reprogrammed=True
            ):
                slot.program = new
            elif self.fleet.pumps[slot.pump_id].channels[slot.channel].pending is not None:
                self._try(slot, lambda p: p.cancel(slot.channel))
        self._schedule_titration(slot)

    def _schedule_demand(self, slot: _Slot) -> None:
        delay = slot.rng.expovariate(1 / (self.params.pca_demand_mean_min * 60))
        self._later(slot, delay, lambda: self._demand(slot))

    def _demand(self, slot: _Slot) -> None:
        if self._state(slot) is ChannelState.RUNNING:
            self._try(slot, lambda p: p.pca_demand(slot.channel))
        self._schedule_demand(slot)

    def _schedule_alarm(self, slot: _Slot) -> None:
        delay = slot.rng.expovariate(slot.profile.alarms_per_infusion_h / HOUR_S)
        self._later(slot, delay, lambda: self._inject(slot))

    def _inject(self, slot: _Slot) -> None:
        pump = self.fleet.pumps[slot.pump_id]
        cid = slot.channel
        if self._state(slot) is ChannelState.RUNNING:
            kind = slot.rng.choices([k for k, _ in ALARM_MIX], weights=[w for _, w in ALARM_MIX])[0]
            self.stats.injected_alarms[kind] += 1
            if kind == "occlusion_downstream":
                self._try(slot, lambda p: p.occlude_downstream(cid))
            elif kind == "user_pause":
                self._try(slot, lambda p: p.pause(cid))
                self._later(slot, slot.rng.uniform(60, 900), lambda: self._resume_paused(slot))
            elif kind == "occlusion_upstream":
                self._try(slot, lambda p: p.occlude_upstream(cid))
            elif kind == "air":
                self._try(slot, lambda p: p.air_bubble(cid, slot.caps.air_single_bubble_ul + 50))
            elif kind == "door":
                self._try(slot, lambda p: p.open_door(cid))
            elif pump.battery.on_ac:
                self._try(slot, lambda p: p.ac_power(False))
                self.env.schedule_in(slot.rng.uniform(600, 3600), lambda: self._plug_in(slot))
        self._schedule_alarm(slot)

    def _plug_in(self, slot: _Slot) -> None:
        if not self.fleet.pumps[slot.pump_id].battery.on_ac:
            self._try(slot, lambda p: p.ac_power(True))

    def _resume_paused(self, slot: _Slot) -> None:
        if self._state(slot) is ChannelState.PAUSED:
            self._try(slot, lambda p: p.resume(slot.channel))

    # ----------------------------------------------------------------- answering the pump

    def _on_event(self, pump: Pump, event: PumpEvent) -> None:
        """Answer an alarm after a response time counted from when it was raised (not when seen)."""
        if event.type is not EventType.ALARM_RAISED or event.channel is None:
            return
        slot = self._slots[(pump.id, event.channel)]
        alarm = AlarmId(str(event.data["alarm"]))
        if alarm not in _FIXES and alarm is not AlarmId.INFUSION_COMPLETE:
            return
        clock = self.env.clock
        raised_s = clock.monotonic_s() - (clock.now() - event.ts).total_seconds()
        delay = max(0.0, raised_s + self._response_s(slot) - self.env.now_s)
        if alarm is AlarmId.INFUSION_COMPLETE:
            self._later(slot, delay, lambda: self._end(slot, "completed"))
        else:
            fix = _FIXES[alarm]
            self.env.schedule_in(delay, lambda: self._fix(slot, alarm, fix))

    def _fix(self, slot: _Slot, alarm: AlarmId, fix: Callable[[Pump, str], object]) -> None:
        cid = slot.channel
        pump = self.fleet.pumps[slot.pump_id]
        if not pump.alarms.is_active(alarm, cid):
            return
        self._try(slot, lambda p: fix(p, cid))
        if pump.alarms.is_active(alarm, cid):
            self._try(slot, lambda p: p.clear_alarm(alarm, cid))
        if self._state(slot) is ChannelState.ALARM and not pump.alarms.stops_delivery(cid):
            self._try(slot, lambda p: p.resume(cid))


_FIXES: Final[dict[AlarmId, Callable[[Pump, str], object]]] = {
    AlarmId.OCCLUSION_DOWNSTREAM: lambda p, cid: p.release_downstream(cid),
    AlarmId.OCCLUSION_UPSTREAM: lambda p, cid: p.release_upstream(cid),
    AlarmId.AIR_IN_LINE: lambda p, cid: p.air_cleared(cid),
    AlarmId.AIR_CUMULATIVE: lambda p, cid: p.air_cleared(cid),
    AlarmId.DOOR_OPEN: lambda p, cid: p.close_door(cid),
}
