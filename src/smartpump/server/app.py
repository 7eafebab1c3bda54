"""Composition root: ``create_app(settings)`` wires settings, database, keys, routers, logs and metrics."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Final

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import Engine

from smartpump.clock import Clock, WallClock
from smartpump.server import ehr_worker, keys
from smartpump.server.api.errors import install_error_handlers
from smartpump.server.api.fhir_errors import install_fhir_errors
from smartpump.server.api.routes import ROUTERS, health
from smartpump.server.audit_anchors import AuditAnchorWorker
from smartpump.server.auth import password_hasher
from smartpump.server.body_limits import BodyLimits, json_limits
from smartpump.server.capacity import Capacity
from smartpump.server.db.engine import make_engine, make_ingest_engine, make_session_factory
from smartpump.server.live_bus import LiveBus, libpq_dsn
from smartpump.server.login_throttle import LoginThrottle
from smartpump.server.metrics import Metrics
from smartpump.server.settings import Settings
from smartpump.server.simulated import SimulatedFleet
from smartpump.server.state import ServerState
from smartpump.server.web import mount_web
from smartpump.server.workers import IngestWorker, InProcessLink, server_transport

API_PREFIX = "/api/v1"
METRIC_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted under their own name in the request metrics; any other is counted as ``other``."""
logger = logging.getLogger("smartpump.server.http")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    sim_fleet: SimulatedFleet | None = None,
) -> FastAPI:
    """Build the API application (the database must be migrated: ``smartpump db upgrade``); ingest gets its
    own engine on the same database, disposed when the app stops; a simulated fleet (the demo's) runs
    beside it and is what the front panel drives."""
    app = application(settings)
    app.state.smartpump = server_state(settings, clock=clock, engine=engine, sim_fleet=sim_fleet)
    return app


def server_state(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    sim_fleet: SimulatedFleet | None = None,
) -> ServerState:
    """Everything an application serves from: engines, keys, clock, throttles, metrics and the background
    services its lifespan starts (the ingest worker, the audit anchors, the EHR worker, a simulated fleet)."""
    engine = (
        engine
        if engine is not None
        else make_engine(settings.database_url, request_slots=settings.max_concurrent_requests)
    )
    clock = clock if clock is not None else WallClock()
    ingest_engine = make_ingest_engine(engine.url.render_as_string(hide_password=False))
    state = ServerState(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        ingest_engine=ingest_engine,
        ingest_sessions=make_session_factory(ingest_engine),
        clock=clock,
        hasher=password_hasher(settings),
        keys=keys.load(settings.signing_keys_dir, create_missing=not settings.is_production, now=clock.now()),
        metrics=Metrics(),
        login_throttle=LoginThrottle(
            pair_max_failures=settings.login_max_failures,
            client_max_failures=settings.login_client_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            trusted_networks=settings.login_trusted_networks,
        ),
        sim_fleet=sim_fleet,
    )
    if settings.live_bus:
        state.background.append(LiveBus(libpq_dsn(engine.url), state.live))
    link = sim_fleet.link if sim_fleet is not None and sim_fleet.link is not None else InProcessLink()
    state.background.append(
        IngestWorker(server_transport(settings, link), link=link, stall_after_s=settings.ingest_stall_after_s)
    )
    state.background.append(AuditAnchorWorker(settings.audit_checkpoint_interval_s))
    if sim_fleet is not None:
        state.background.append(sim_fleet.runner())
    ehr_worker.install(state)
    return state


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.smartpump
    started = []
    try:
        for service in list(state.background):
            await service.start(state)
            started.append(service)
        yield
    finally:
        for service in reversed(started):
            await service.stop()
        state.ingest_engine.dispose()


def application(settings: Settings) -> FastAPI:
    """The routes, pages, error handlers and middleware, serving whatever ``app.state.smartpump`` holds when
    it starts (``server_state``): every handler, the lifespan and the request metrics read the state from
    the app, so one application can serve a fresh state (the tests build one per module; routes are the
    costly part)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="smartpump server",
        version="1",
        description="Drug libraries, fleet, events, maintenance and audit of a smart infusion system.",
        docs_url="/docs" if settings.docs_open else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_open else None,
    )
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in ROUTERS:
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.metrics_router)
    mount_web(app)
    install_fhir_errors(app)
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        max_document_bytes=settings.max_document_bytes,
        json_limits=json_limits(settings),
    )
    app.add_middleware(
        Capacity,
        max_concurrent_requests=settings.max_concurrent_requests,
        queue_wait_s=settings.queue_wait_s,
    )
    _install_request_middleware(app)
    return app


def _install_request_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        metrics: Metrics = request.app.state.smartpump.metrics
        request_id = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        method = request.method if request.method in METRIC_METHODS else "other"
        metrics.requests.labels(method=method, route=template, status=str(response.status_code)).inc()
        metrics.latency.labels(method=method, route=template).observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "no-store")
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method[:32],
                "route": template,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response
