"""Many pumps in one Environment: every pump action goes through ``Fleet.act``, which hands the
pump's new events to the subscribed hooks (CQI counters, the connected-fleet publisher...) and
wakes the pump again at its own next-due time (event-driven) or on every fixed step (reference).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from smartpump.library.keys import TrustStore
from smartpump.library.model import DrugLibrary
from smartpump.pump.capabilities import PumpModel
from smartpump.pump.device import Pump
from smartpump.pump.events import PumpEvent
from smartpump.pump.patient import AssociationSource, PatientIdentity
from smartpump.sim.environment import Environment

T = TypeVar("T")
EventHook = Callable[[Pump, PumpEvent], None]


class Stepping(StrEnum):
    """How pumps are woken: at their computed next-due time, or by polling every fixed step."""

    EVENT_DRIVEN = "event_driven"
    FIXED_STEP = "fixed_step"


class Fleet:
    """Pumps sharing one virtual clock; each event is dispatched once, in seq order, to every hook; each pump
    is provisioned with ``trust`` (its own copy from then on: a trust list it installs is its own)."""

    def __init__(
        self,
        env: Environment,
        library: DrugLibrary,
        *,
        stepping: Stepping = Stepping.EVENT_DRIVEN,
        step_s: float = 1.0,
        retain_events: bool = False,
        trust: TrustStore | None = None,
    ) -> None:
        if not step_s > 0:
            raise ValueError(f"the fixed step must be positive, got {step_s}")
        self.env = env
        self.library = library
        self.trust = trust
        self.stepping = stepping
        self.step_s = step_s
        self.retain_events = retain_events
        self.pumps: dict[str, Pump] = {}
        self.events: list[PumpEvent] = []
        self.counts: Counter[str] = Counter()
        self.wakes = 0
        self._hooks: list[EventHook] = []
        self._seen: dict[str, int] = {}
        self._wake_at: dict[str, float | None] = {}
        self._generation: dict[str, int] = {}
        self._ticking = False

    def subscribe(self, hook: EventHook) -> None:
        """Call ``hook(pump, event)`` for every event of every pump, in each pump's seq order."""
        self._hooks.append(hook)

    def add_pump(
        self,
        pump_id: str,
        model: PumpModel | str,
        *,
        care_area: str,
        channels: int | None = None,
        patient_id: str | None = None,
        patient: PatientIdentity | None = None,
    ) -> Pump:
        """Power on a pump with the fleet's library on the shared clock and select its care area."""
        if pump_id in self.pumps:
            raise ValueError(f"pump {pump_id!r} is already in the fleet")
        pump = Pump(pump_id, model, self.env.clock, channels=channels, library=self.library, trust=self.trust)
        self.pumps[pump_id] = pump
        self._seen[pump_id] = pump.next_seq - 1 - len(pump.events)
        self._wake_at[pump_id] = None
        self._generation[pump_id] = 0
        self.act(pump_id, lambda p: p.select_care_area(care_area))
        if patient is not None:
            self.act(pump_id, lambda p: p.associate_patient(patient, AssociationSource.SERVER))
        elif patient_id is not None:
            pump.set_patient(patient_id)
        if self.stepping is Stepping.FIXED_STEP and not self._ticking:
            self._ticking = True
            self.env.schedule_in(self.step_s, self._tick)
        return pump

    def act(self, pump_id: str, action: Callable[[Pump], T]) -> T:
        """Run one action on a pump, then dispatch its new events and reschedule its wake-up."""
        pump = self.pumps[pump_id]
        try:
            return action(pump)
        finally:
            self._settle(pump)

    def _settle(self, pump: Pump) -> None:
        self._dispatch(pump)
        if self.stepping is Stepping.EVENT_DRIVEN:
            self._reschedule(pump)

    def _dispatch(self, pump: Pump) -> None:
        seen = self._seen[pump.id]
        fresh = pump.events.since(seen)
        if not fresh:
            return
        self._seen[pump.id] = fresh[-1].seq
        if self.retain_events:
            self.events.extend(fresh)
        else:
            pump.events.acknowledge(fresh[-1].seq)
        for event in fresh:
            self.counts[event.type.value] += 1
            for hook in self._hooks:
                hook(pump, event)

    def _reschedule(self, pump: Pump) -> None:
        due = pump.next_due_s()
        at = None if due is None else float(due)
        if at == self._wake_at[pump.id]:
            return
        self._wake_at[pump.id] = at
        self._generation[pump.id] += 1
        if at is not None:
            generation = self._generation[pump.id]
            self.env.schedule(max(at, self.env.now_s), lambda: self._wake(pump, generation))

    def _wake(self, pump: Pump, generation: int) -> None:
        if generation != self._generation[pump.id]:
            return
        self.wakes += 1
        self._wake_at[pump.id] = None
        pump.sync()
        self._settle(pump)

    def _tick(self) -> None:
        for pump in self.pumps.values():
            self.wakes += 1
            pump.sync()
            self._dispatch(pump)
        self.env.schedule_in(self.step_s, self._tick)
