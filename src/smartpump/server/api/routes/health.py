"""Liveness, database reachability and Prometheus metrics (public)."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter
from fastapi.responses import Response as HttpResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from smartpump.server.api.deps import PUBLIC, StateDep
from smartpump.server.api.schemas import Health
from smartpump.server.workers import ReportsHealth

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[PUBLIC])
def health(state: StateDep) -> Health:
    """Whether the server runs, reaches its database and its background services work (``degraded``
    names the part: ``database``, or a service in ``services`` with what is wrong)."""
    reports = [s.health() for s in state.background if isinstance(s, ReportsHealth)]
    services = {report.name: report.detail for report in reports}
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return Health(
            status="degraded", database="unreachable", version=version("smartpump"), services=services
        )
    ok = all(report.ok for report in reports)
    return Health(
        status="ok" if ok else "degraded", database="ok", version=version("smartpump"), services=services
    )


@metrics_router.get("/metrics", dependencies=[PUBLIC], include_in_schema=False)
def metrics(state: StateDep) -> HttpResponse:
    """Prometheus text exposition."""
    return HttpResponse(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
