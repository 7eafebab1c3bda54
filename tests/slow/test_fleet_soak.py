"""Soak tests (``make slow``): the fast suite's fleet and replay claims, checked at benchmark scale.

The fast suite compares event-driven and fixed-step simulation over 7 pumps for 8 hours, and the
vectorised replay with ``ders.check`` on generated programs; here the same claims hold over a simulated
hospital day (the slice ``benchmarks/fleet_sim.py`` times) and a simulated month of a 100-pump fleet.
No timing is asserted: the benchmarks measure speed, these tests check results. Data are synthetic.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from smartpump.analytics.frames import from_events
from smartpump.analytics.replay import program_rows, replay, verdict_name
from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary
from smartpump.pump import PumpEvent
from smartpump.sim.environment import Environment
from smartpump.sim.fleet import Fleet, Stepping
from smartpump.sim.workload import DAY_S, HospitalWorkload

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-library.json"
SEED = 20260101


@pytest.fixture(scope="module")
def demo() -> DrugLibrary:
    return json_format.read(DEMO)


def _simulate(library: DrugLibrary, *, pumps: int, days: float, stepping: Stepping) -> list[PumpEvent]:
    env = Environment()
    fleet = Fleet(env, library, stepping=stepping, retain_events=True)
    HospitalWorkload(fleet, pumps=pumps, seed=SEED).start()
    env.run(days * DAY_S)
    return sorted(fleet.events, key=lambda e: (e.pump, e.seq))


def test_a_hospital_day_gives_the_same_events_event_driven_and_fixed_step(demo: DrugLibrary) -> None:
    event_driven = _simulate(demo, pumps=14, days=1, stepping=Stepping.EVENT_DRIVEN)
    fixed_step = _simulate(demo, pumps=14, days=1, stepping=Stepping.FIXED_STEP)
    assert len(event_driven) > 500
    assert [(e.pump, e.seq, e.type) for e in fixed_step] == [(e.pump, e.seq, e.type) for e in event_driven]
    drift = max(abs((a.ts - b.ts).total_seconds()) for a, b in zip(fixed_step, event_driven, strict=True))
    assert drift <= 1e-5, "computed times may differ only by the microsecond rounding of a settlement"


def test_replaying_a_simulated_month_reproduces_every_verdict_the_pumps_reached(demo: DrugLibrary) -> None:
    events = from_events(_simulate(demo, pumps=100, days=30, stepping=Stepping.EVENT_DRIVEN))
    recorded = events.filter(pl.col("type") == "program.checked").select(
        pl.col("pump").cast(pl.String), "seq", "verdict"
    )
    replayed = replay(program_rows(events), demo, demo).programs
    assert replayed is not None
    compared = recorded.join(
        replayed.filter(pl.col("before_status") == "evaluated").select(
            pl.col("pump").cast(pl.String), "seq", verdict_name(pl.col("before_verdict")).alias("replayed")
        ),
        on=["pump", "seq"],
    )
    disagreements = compared.filter(pl.col("verdict") != pl.col("replayed"))
    assert disagreements.height == 0, disagreements.head(10)
    assert compared.height >= 0.9 * recorded.height
    assert set(compared["verdict"]) == {"ok", "soft", "hard"}
