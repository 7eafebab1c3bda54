"""The fleet: pumps woken at their own next-due time, events dispatched once in order, and the
fixed-step reference giving the same event stream."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from smartpump.library.formats import json_format
from smartpump.pump import EventType, PumpEvent
from smartpump.pump.device import Pump
from smartpump.sim.environment import Environment
from smartpump.sim.fleet import Fleet, Stepping
from smartpump.sim.workload import HospitalWorkload
from tests.unit.pump.library import basic, pump_library

D = Decimal
DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"


def test_a_pump_wakes_at_its_computed_vtbi_time_without_polling() -> None:
    env = Environment()
    fleet = Fleet(env, pump_library(), retain_events=True)
    fleet.add_pump("p1", "lvp-4", care_area="icu", channels=1)
    fleet.act("p1", lambda p: p.program("A", basic("120", vtbi="100")))
    fleet.act("p1", lambda p: p.confirm("A"))
    fleet.act("p1", lambda p: p.start("A"))
    env.run(4 * 3600.0)
    completed = [e for e in fleet.events if e.type is EventType.INFUSION_COMPLETED]
    started = [e for e in fleet.events if e.type is EventType.INFUSION_STARTED]
    assert len(completed) == 1
    assert (completed[0].ts - started[0].ts).total_seconds() == 3000
    assert fleet.wakes <= 5


def test_hooks_see_every_event_once_in_seq_order() -> None:
    env = Environment()
    fleet = Fleet(env, pump_library())
    seen: list[PumpEvent] = []
    fleet.subscribe(lambda pump, event: seen.append(event))
    fleet.add_pump("p1", "lvp-4", care_area="icu", channels=1)
    fleet.act("p1", lambda p: p.program("A", basic("60", vtbi="10")))
    fleet.act("p1", lambda p: p.confirm("A"))
    fleet.act("p1", lambda p: p.start("A"))
    env.run(3600.0)
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert sum(fleet.counts.values()) == len(seen)


def test_dispatched_events_are_acknowledged_and_seq_keeps_counting() -> None:
    env = Environment()
    fleet = Fleet(env, pump_library(), retain_events=False)
    pump: Pump = fleet.add_pump("p1", "lvp-4", care_area="icu", channels=1)
    assert len(pump.events) == 0
    fleet.act("p1", lambda p: p.program("A", basic("60", vtbi="10")))
    assert len(pump.events) == 0 and pump.next_seq == 4


def _run(stepping: Stepping) -> list[PumpEvent]:
    env = Environment()
    fleet = Fleet(env, json_format.read(DEMO), stepping=stepping, retain_events=True)
    HospitalWorkload(fleet, pumps=7, seed=7).start()
    env.run(8 * 3600.0)
    return sorted(fleet.events, key=lambda e: (e.pump, e.seq))


def test_fixed_step_reference_gives_the_same_events_as_event_driven() -> None:
    event_driven = _run(Stepping.EVENT_DRIVEN)
    fixed_step = _run(Stepping.FIXED_STEP)
    assert len(event_driven) > 100
    assert [(e.pump, e.seq, e.type) for e in fixed_step] == [(e.pump, e.seq, e.type) for e in event_driven]
    drift = max(abs((a.ts - b.ts).total_seconds()) for a, b in zip(fixed_step, event_driven, strict=True))
    assert drift <= 1e-5, "computed times may differ only by the microsecond rounding of a settlement"
