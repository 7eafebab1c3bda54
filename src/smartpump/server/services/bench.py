"""The biomed's bench: run the flow-accuracy test on a pump's twin or import an analyzer file, file the
result as a performance-check maintenance record (audited; a failed check opens a flow-accuracy fault,
which flags the pump for inspection), and read a pump's trend and the fleet's worst performers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.analytics.analyzer_csv import read_analyzer_csv
from smartpump.analytics.flow_accuracy import AccuracyReport, FlowRecord, analyse
from smartpump.clock import Clock
from smartpump.errors import SmartpumpError
from smartpump.server import audit
from smartpump.server.auth import Access
from smartpump.server.db.models import MaintenanceRecord, Pump
from smartpump.server.db.models_bench import BenchTest
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.services.fleet import get_pump
from smartpump.server.services.maintenance import DueItem, due_list, report_fault
from smartpump.server.settings import Settings
from smartpump.server.vocabulary import FaultCategory, MaintenanceKind, MaintenanceResult
from smartpump.sim.flow_models import FlowModel, flow_model
from smartpump.sim.flow_physics import (
    BenchConditions,
    OcclusionResult,
    balance_record,
    occlusion_suite,
)

logger = logging.getLogger(__name__)
TWIN: Final = "twin"
ANALYZER: Final = "analyzer"
DUE_HORIZON_DAYS: Final = 3650


@dataclass(frozen=True, slots=True, kw_only=True)
class TwinRequest:
    """What a biomed sets up for a run on the pump's digital twin."""

    rate_ml_per_h: float
    set_name: str | None = None
    head_height_cm: float = 0.0
    back_pressure_mmhg: float = 0.0
    seed: int = 1
    notes: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportRequest:
    """An analyzer or balance export and the conditions it was recorded under."""

    csv_text: str
    rate_ml_per_h: float
    set_name: str | None = None
    density_g_per_ml: float = 0.998
    notes: str = ""


def _refused(error: SmartpumpError) -> InvalidInputError:
    logger.info("bench input refused", extra={"code": error.code, "reason": error.message[:200]})
    return InvalidInputError(error.message, code=error.code)


def _model_of(pump: Pump) -> FlowModel:
    try:
        return flow_model(pump.model)
    except SmartpumpError as error:
        raise _refused(error) from None


def _occlusion_findings(results: Sequence[OcclusionResult]) -> list[dict[str, Any]]:
    findings = []
    for r in results:
        findings.append(
            {
                "rule": "bench.occlusion_time",
                "limit": round(r.limit_s, 1),
                "value": round(r.alarm_time_s, 1),
                "verdict": "pass" if r.alarm_time_s <= r.limit_s else "fail",
                "message": f"occlusion alarm after {r.alarm_time_s / 60:.1f} min at {r.rate_ml_per_h:g} mL/h",
            }
        )
        findings.append(
            {
                "rule": "bench.occlusion_bolus",
                "limit": r.bolus_limit_ml,
                "value": round(r.bolus_ml, 4),
                "verdict": "pass" if r.bolus_ml <= r.bolus_limit_ml else "fail",
                "message": f"post-occlusion bolus {r.bolus_ml:.3f} mL at {r.rate_ml_per_h:g} mL/h",
            }
        )
    return findings


def _file(
    session: Session,
    clock: Clock,
    access: Access,
    pump: Pump,
    *,
    source: str,
    set_name: str,
    report: AccuracyReport,
    occlusion: Sequence[OcclusionResult],
    conditions: dict[str, Any],
    notes: str,
) -> BenchTest:
    findings = [asdict(f) for f in report.findings] + _occlusion_findings(occlusion)
    passed = all(f["verdict"] == "pass" for f in findings)
    now = clock.now()
    failed = ", ".join(f["rule"] for f in findings if f["verdict"] == "fail")
    summary = (
        f"{source} test at {report.rate_ml_per_h:g} mL/h ({set_name}): A {report.mean_error_percent:+.2f} % "
        f"against ±{report.tolerance_percent:g} %" + (f"; failed {failed}" if failed else "")
    )
    record = MaintenanceRecord(
        pump_id=pump.id,
        kind=MaintenanceKind.PERFORMANCE_CHECK.value,
        performed_at=now,
        performed_by=access.principal.user_id,
        result=(MaintenanceResult.PASS if passed else MaintenanceResult.FAIL).value,
        notes=f"{summary}. {notes}".strip() if notes else summary,
    )
    session.add(record)
    session.flush()
    payload = asdict(report) | {
        "findings": findings,
        "occlusion": [asdict(r) for r in occlusion],
        "conditions": conditions,
        "set_name": set_name,
        "source": source,
    }
    spread = report.trumpet[0].ep_max_percent - report.trumpet[0].ep_min_percent
    test = BenchTest(
        record_id=record.id,
        pump_id=pump.id,
        performed_at=now,
        source=source,
        set_name=set_name,
        rate_ml_per_h=report.rate_ml_per_h,
        tolerance_percent=report.tolerance_percent,
        mean_error_percent=report.mean_error_percent,
        short_window_spread_percent=round(spread, 2),
        passed=passed,
        report=json.dumps(payload, separators=(",", ":")),
    )
    session.add(test)
    session.flush()
    audit.append(
        session,
        clock,
        actor=access.principal.username,
        action="maintenance.recorded",
        object_type="pump",
        object_id=pump.serial,
        facility_id=pump.facility_id,
        details={
            "kind": MaintenanceKind.PERFORMANCE_CHECK.value,
            "result": record.result,
            "record": record.id,
            "bench_test": test.id,
            "source": source,
            "mean_error_percent": report.mean_error_percent,
        },
    )
    if passed:
        session.flush()
    else:
        report_fault(
            session, clock, access, pump.serial, category=FaultCategory.FLOW_ACCURACY, description=summary
        )
    return test


def run_twin(session: Session, clock: Clock, access: Access, serial: str, request: TwinRequest) -> BenchTest:
    """Run the 120-min test and the occlusion pair on the pump's model twin; file the result."""
    pump = get_pump(session, access, serial)
    model = _model_of(pump)
    conditions = BenchConditions(
        head_height_cm=request.head_height_cm,
        back_pressure_mmhg=request.back_pressure_mmhg,
        seed=request.seed,
    )
    try:
        run = balance_record(
            model.model, request.rate_ml_per_h, set_name=request.set_name, conditions=conditions
        )
        record = FlowRecord.from_mass(run.times_s, run.mass_g, density_g_per_ml=conditions.density_g_per_ml)
        tolerance = model.claim_at(request.rate_ml_per_h).tolerance_percent
        report = analyse(record, request.rate_ml_per_h, tolerance_percent=tolerance)
        occlusion = occlusion_suite(model.model, set_name=run.set_name, seed=request.seed)
    except SmartpumpError as error:
        raise _refused(error) from None
    return _file(
        session,
        clock,
        access,
        pump,
        source=TWIN,
        set_name=run.set_name,
        report=report,
        occlusion=occlusion,
        conditions=asdict(conditions),
        notes=request.notes,
    )


def import_analyzer(
    session: Session, clock: Clock, access: Access, serial: str, request: ImportRequest
) -> BenchTest:
    """Analyse an analyzer or balance export recorded on this pump; file the result."""
    pump = get_pump(session, access, serial)
    model = _model_of(pump)
    try:
        set_name = model.disposable(request.set_name).name
        record = read_analyzer_csv(request.csv_text, density_g_per_ml=request.density_g_per_ml)
        tolerance = model.claim_at(request.rate_ml_per_h).tolerance_percent
        report = analyse(record, request.rate_ml_per_h, tolerance_percent=tolerance)
    except SmartpumpError as error:
        raise _refused(error) from None
    return _file(
        session,
        clock,
        access,
        pump,
        source=ANALYZER,
        set_name=set_name,
        report=report,
        occlusion=(),
        conditions={"density_g_per_ml": request.density_g_per_ml, "samples": len(record.times_s)},
        notes=request.notes,
    )


def history(session: Session, access: Access, serial: str) -> tuple[Pump, Sequence[BenchTest]]:
    """A pump and its bench tests, oldest first (its trend)."""
    pump = get_pump(session, access, serial)
    tests = session.scalars(
        select(BenchTest).where(BenchTest.pump_id == pump.id).order_by(BenchTest.performed_at, BenchTest.id)
    ).all()
    return pump, tests


def bench_test(session: Session, access: Access, test_id: int) -> tuple[BenchTest, Pump]:
    """One bench test of a pump the caller may see (404 otherwise)."""
    test = session.get(BenchTest, test_id)
    pump = None if test is None else session.get(Pump, test.pump_id)
    if test is None or pump is None or not access.allows(pump.facility_id):
        raise NotFoundError("no such bench test", code="bench.not_found")
    return test, pump


def report_of(test: BenchTest) -> dict[str, Any]:
    """The stored report of a test (start-up graph, trumpet, findings, occlusion, conditions)."""
    payload: dict[str, Any] = json.loads(test.report)
    return payload


@dataclass(frozen=True, slots=True, kw_only=True)
class Performer:
    """A pump's latest bench test, ranked by how much of its stated tolerance the mean error uses."""

    serial: str
    model: str
    test: BenchTest

    @property
    def tolerance_used(self) -> float:
        """|A| as a share of the stated tolerance (above 1 fails)."""
        return abs(self.test.mean_error_percent) / self.test.tolerance_percent


def worst_performers(session: Session, access: Access, *, limit: int) -> list[Performer]:
    """Pumps whose latest test used most of their tolerance (failures first), worst first."""
    query = select(BenchTest, Pump).join(Pump, Pump.id == BenchTest.pump_id)
    if access.scope is not None:
        query = query.where(Pump.facility_id.in_(access.scope))
    latest: dict[int, Performer] = {}
    for test, pump in session.execute(query.order_by(BenchTest.performed_at, BenchTest.id)):
        latest[pump.id] = Performer(serial=pump.serial, model=pump.model, test=test)
    ranked = sorted(latest.values(), key=lambda p: (p.test.passed, -p.tolerance_used, p.serial))
    return ranked[:limit]


def next_due(
    session: Session, clock: Clock, settings: Settings, access: Access, serial: str
) -> DueItem | None:
    """When this pump's next performance check is due under its model's schedule (None: no schedule)."""
    items = due_list(session, clock, settings, access, within_days=DUE_HORIZON_DAYS)
    return next(
        (i for i in items if i.serial == serial and i.kind == MaintenanceKind.PERFORMANCE_CHECK.value), None
    )
