"""Liveness, database reachability and Prometheus metrics (public)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response as HttpResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from smartpump import __version__
from smartpump.server.api.deps import PUBLIC, StateDep
from smartpump.server.api.schemas import Health

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[PUBLIC])
def health(state: StateDep) -> Health:
    """Whether the server runs and reaches its database."""
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return Health(status="degraded", database="unreachable", version=__version__)
    return Health(status="ok", database="ok", version=__version__)


@metrics_router.get("/metrics", dependencies=[PUBLIC], include_in_schema=False)
def metrics(state: StateDep) -> HttpResponse:
    """Prometheus text exposition."""
    return HttpResponse(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
