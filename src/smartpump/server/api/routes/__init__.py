"""One router per resource; ``ROUTERS`` is the list app.py mounts under /api/v1 (one module a line)."""

from __future__ import annotations

from types import ModuleType
from typing import Final

from smartpump.server.api.routes import (
    audit,
    auth,
    bench,
    change_requests,
    configurations,
    cqi,
    deployments,
    device_identity,
    events,
    facilities,
    fhir,
    fleet,
    health,
    libraries,
    maintenance,
    patients,
    pumps,
    users,
)
from smartpump.server.api.routes import keys as keys_routes

ROUTERS: Final[tuple[ModuleType, ...]] = (
    health,
    auth,
    users,
    facilities,
    pumps,
    patients,
    fleet,
    deployments,
    device_identity,
    configurations,
    events,
    fhir,
    maintenance,
    bench,
    libraries,
    change_requests,
    audit,
    cqi,
    keys_routes,
)
