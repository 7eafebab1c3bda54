"""The hospital workload: seeded, spread over care areas, section 7.2 alert outcomes, real pump events."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary
from smartpump.pump import EventType, PumpEvent, PumpModel
from smartpump.pump.capabilities import capabilities
from smartpump.sim.environment import Environment
from smartpump.sim.fleet import Fleet
from smartpump.sim.workload import HospitalWorkload, WorkloadParams, orders_for, profile_for

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo-library.json"


@pytest.fixture(scope="module")
def demo() -> DrugLibrary:
    return json_format.read(DEMO)


def _simulate(
    library: DrugLibrary, *, pumps: int, hours: float, seed: int, params: WorkloadParams | None = None
) -> tuple[Fleet, HospitalWorkload]:
    env = Environment()
    fleet = Fleet(env, library, retain_events=True)
    workload = HospitalWorkload(fleet, pumps=pumps, seed=seed, params=params)
    workload.start()
    env.run(hours * 3600)
    return fleet, workload


def test_same_seed_same_events_and_another_seed_differs(demo: DrugLibrary) -> None:
    def key(fleet: Fleet) -> list[tuple[str, int, str]]:
        return [(e.pump, e.seq, e.type.value) for e in fleet.events]

    first, _ = _simulate(demo, pumps=7, hours=12, seed=1)
    again, _ = _simulate(demo, pumps=7, hours=12, seed=1)
    other, _ = _simulate(demo, pumps=7, hours=12, seed=2)
    assert key(first) == key(again)
    assert key(first) != key(other)


def test_pumps_are_spread_over_every_care_area_with_its_model(demo: DrugLibrary) -> None:
    fleet, _ = _simulate(demo, pumps=14, hours=0, seed=1)
    areas = Counter(p.care_area.id for p in fleet.pumps.values() if p.care_area is not None)
    assert set(areas) == {a.id for a in demo.care_areas} and set(areas.values()) == {2}
    for pump in fleet.pumps.values():
        assert pump.care_area is not None
        assert pump.caps.model is profile_for(pump.care_area).model


def test_profiles_follow_the_care_area_words(demo: DrugLibrary) -> None:
    kinds = {a.id: profile_for(a).kind for a in demo.care_areas}
    assert kinds["ADULT_ICU"] == "icu" and kinds["NICU"] == "nicu" and kinds["PCA"] == "pca"
    assert kinds["OR_ANESTHESIA"] == "or" and kinds["ADULT_MEDSURG"] == "medsurg"


def test_orders_are_ok_programs_the_model_can_run(demo: DrugLibrary) -> None:
    area = demo.care_area("ADULT_ICU")
    caps = capabilities(PumpModel.LVP)
    orders = orders_for(demo, area, caps)
    assert orders
    for order in orders:
        caps.check_rate(order.rate_ml_per_h)
        assert order.entry.care_area_id == "ADULT_ICU"


def _checked(fleet: Fleet) -> list[PumpEvent]:
    return [e for e in fleet.events if e.type is EventType.PROGRAM_CHECKED and not e.data["is_titration"]]


def test_soft_alerts_are_mostly_overridden_some_reprogrammed_or_cancelled(demo: DrugLibrary) -> None:
    params = WorkloadParams(soft_errors_per_100=100.0, hard_errors_per_100=0.0)
    fleet, workload = _simulate(demo, pumps=21, hours=48, seed=3, params=params)
    assert workload.stats.soft_errors > 100
    soft = [e for e in _checked(fleet) if e.data["verdict"] == "soft"]
    overridden = fleet.counts[EventType.ALERT_OVERRIDDEN.value]
    reprogrammed = fleet.counts[EventType.PROGRAM_REPROGRAMMED.value]
    assert soft and 0.6 <= overridden / len(soft) <= 0.95
    assert reprogrammed > 0


def test_hard_stops_never_start_and_the_nurse_reprograms_or_cancels(demo: DrugLibrary) -> None:
    params = WorkloadParams(soft_errors_per_100=0.0, hard_errors_per_100=100.0)
    fleet, workload = _simulate(demo, pumps=21, hours=48, seed=4, params=params)
    assert workload.stats.hard_errors > 50
    last_verdict: dict[tuple[str, str | None], str] = {}
    hard = 0
    for event in fleet.events:
        key = (event.pump, event.channel)
        if event.type is EventType.PROGRAM_CHECKED:
            last_verdict[key] = str(event.data["verdict"])
            hard += event.data["verdict"] == "hard"
        if event.type is EventType.INFUSION_STARTED:
            assert last_verdict.get(key) != "hard"
    assert hard > 0
    assert (
        fleet.counts[EventType.PROGRAM_REPROGRAMMED.value] + fleet.counts[EventType.PROGRAM_CANCELLED.value]
        >= hard
    )


def test_operational_alarms_are_answered_and_infusions_complete(demo: DrugLibrary) -> None:
    fleet, workload = _simulate(demo, pumps=14, hours=24, seed=5)
    injected = workload.stats.injected_alarms
    assert injected["occlusion_downstream"] > 0 and injected["occlusion_upstream"] > 0
    assert fleet.counts[EventType.OCCLUSION_RELEASED.value] > 0
    assert fleet.counts[EventType.INFUSION_COMPLETED.value] > 0
    assert fleet.counts[EventType.PCA_DEMAND_GRANTED.value] > 0
    assert workload.stats.basic_programs > 0 and workload.stats.library_programs > 0
