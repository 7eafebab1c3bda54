"""Liveness, database reachability and service health (public), and Prometheus metrics (development, a
scrape token, or opened by a setting)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response as HttpResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from smartpump import __version__
from smartpump.server.api.deps import PUBLIC, StateDep
from smartpump.server.api.schemas import Health
from smartpump.server.errors import AuthenticationError, NotFoundError
from smartpump.server.settings import Settings
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
        return Health(status="degraded", database="unreachable", version=__version__, services=services)
    ok = all(report.ok for report in reports)
    return Health(status="ok" if ok else "degraded", database="ok", version=__version__, services=services)


@metrics_router.get("/metrics", dependencies=[PUBLIC], include_in_schema=False)
def metrics(state: StateDep, authorization: Annotated[str | None, Header()] = None) -> HttpResponse:
    """Prometheus text exposition: with ``SMARTPUMP_METRICS_TOKEN`` set, only for that bearer token;
    otherwise open in development and, in production, only with ``SMARTPUMP_METRICS_PUBLIC`` (else 404)."""
    check_metrics_access(state.settings, authorization)
    return HttpResponse(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def check_metrics_access(settings: Settings, authorization: str | None) -> None:
    """Refuse a scrape the settings do not allow (401 without the token, 404 where metrics are closed)."""
    token = settings.metrics_token
    if token is not None:
        scheme, _, given = (authorization or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise AuthenticationError("metrics need the scrape token", code="metrics.token_required")
        return
    if settings.is_production and not settings.metrics_public:
        raise NotFoundError("not found", code="not_found")
