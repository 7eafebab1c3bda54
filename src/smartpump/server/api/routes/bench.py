"""The bench: IEC 60601-2-24 flow-accuracy tests on a pump's twin or from an analyzer file, filed as
performance-check maintenance records; a pump's trend and the fleet's worst performers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from smartpump.errors import SmartpumpError
from smartpump.server.api.bench_schemas import (
    AnalyzerImport,
    BenchSummaryOut,
    BenchTestOut,
    DueOut,
    PerformerOut,
    PumpBenchOut,
    TwinRun,
)
from smartpump.server.api.deps import ClockDep, IdPath, SessionDep, SettingsDep, require_roles
from smartpump.server.auth import Access, Role
from smartpump.server.db.models_bench import BenchTest
from smartpump.server.services import bench as service
from smartpump.sim.flow_models import flow_model

router = APIRouter(prefix="/bench", tags=["bench"])
Filer = Annotated[Access, require_roles(Role.BIOMED)]
Reader = Annotated[Access, require_roles(Role.BIOMED, Role.AUDITOR, Role.VIEWER)]
Serial = Annotated[str, Path(max_length=64)]


def summary(test: BenchTest) -> BenchSummaryOut:
    """The history row of a test."""
    return BenchSummaryOut(
        id=test.id,
        record_id=test.record_id,
        performed_at=test.performed_at,
        source=test.source,
        set_name=test.set_name,
        rate_ml_per_h=test.rate_ml_per_h,
        tolerance_percent=test.tolerance_percent,
        mean_error_percent=test.mean_error_percent,
        short_window_spread_percent=test.short_window_spread_percent,
        passed=test.passed,
    )


def _whole(test: BenchTest, serial: str) -> BenchTestOut:
    return BenchTestOut(**summary(test).model_dump(), serial=serial, report=service.report_of(test))


@router.get("/pumps/{serial}")
def pump_bench(
    serial: Serial, access: Reader, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> PumpBenchOut:
    """A pump's stated accuracy, its bench history (oldest first) and its next performance check."""
    pump, tests = service.history(session, access, serial)
    due = service.next_due(session, clock, settings, access, serial)
    try:
        claims = [asdict(c) for c in flow_model(pump.model).claims]
    except SmartpumpError:
        claims = []
    return PumpBenchOut(
        serial=pump.serial,
        model=pump.model,
        claims=claims,
        history=[summary(t) for t in tests],
        due=None
        if due is None
        else DueOut(due_at=due.due_at, last_done=due.last_done, is_overdue=due.is_overdue),
    )


@router.post("/pumps/{serial}/twin", status_code=status.HTTP_201_CREATED)
def run_twin(
    serial: Serial, body: TwinRun, access: Filer, session: SessionDep, clock: ClockDep
) -> BenchTestOut:
    """Run the 120-min accuracy test and the occlusion pair on the pump's model twin, and file it."""
    request = service.TwinRequest(**body.model_dump())
    return _whole(service.run_twin(session, clock, access, serial, request), serial)


@router.post("/pumps/{serial}/import", status_code=status.HTTP_201_CREATED)
def import_analyzer(
    serial: Serial, body: AnalyzerImport, access: Filer, session: SessionDep, clock: ClockDep
) -> BenchTestOut:
    """Analyse an analyzer or balance export recorded on this pump, and file it."""
    request = service.ImportRequest(
        csv_text=body.csv,
        rate_ml_per_h=body.rate_ml_per_h,
        set_name=body.set_name,
        density_g_per_ml=body.density_g_per_ml,
        notes=body.notes,
    )
    return _whole(service.import_analyzer(session, clock, access, serial, request), serial)


@router.get("/tests/{test_id}")
def bench_test(test_id: IdPath, access: Reader, session: SessionDep) -> BenchTestOut:
    """One filed test with its start-up graph, trumpet curve, findings and occlusion results."""
    test, pump = service.bench_test(session, access, test_id)
    return _whole(test, pump.serial)


@router.get("/worst")
def worst(
    access: Reader, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 10
) -> list[PerformerOut]:
    """The fleet's worst performers: each pump's latest test, failures first, then by tolerance used."""
    return [
        PerformerOut(
            serial=p.serial, model=p.model, tolerance_used=round(p.tolerance_used, 3), test=summary(p.test)
        )
        for p in service.worst_performers(session, access, limit=limit)
    ]
