"""SEC-RBAC-07: every route declares its roles (or is deliberately public); anonymous calls are refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from smartpump.server.api.deps import RoleGuard, public_route
from tests.server.access_table import ACCESS, FRAMEWORK_ROUTES, PUBLIC
from tests.server.conftest import TestClient, error_code


def _declarations(dependant: Dependant) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, RoleGuard) or sub.call is public_route:
            found.append(sub.call)
        found.extend(_declarations(sub))
    return found


def api_routes(app: Any) -> dict[tuple[str, str], RouteContext]:
    """(method, path) -> route context for every API route of the app."""
    routes: dict[tuple[str, str], RouteContext] = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            assert context.path is not None and context.methods is not None, context
            for method in context.methods:
                routes[(method, context.path)] = context
    return routes


def test_every_api_route_declares_exactly_one_access_rule(shared_app: Any) -> None:
    undeclared = [
        key for key, ctx in api_routes(shared_app).items() if len(_declarations(ctx.dependant)) != 1
    ]
    assert undeclared == []


def test_declared_roles_match_the_access_table(shared_app: Any) -> None:
    declared = {}
    for key, context in api_routes(shared_app).items():
        (rule,) = _declarations(context.dependant)
        declared[key] = PUBLIC if rule is public_route else rule.roles
    assert declared == ACCESS


def test_only_framework_routes_are_outside_the_api(shared_app: Any) -> None:
    others = {
        ctx.path
        for ctx in iter_route_contexts(shared_app.routes)
        if not isinstance(ctx.original_route, APIRoute)
    }
    assert others <= FRAMEWORK_ROUTES


@pytest.mark.parametrize(("method", "path"), sorted(k for k, roles in ACCESS.items() if roles))
def test_guarded_route_refuses_anonymous_callers(shared_client: TestClient, method: str, path: str) -> None:
    url = path.replace("{serial}", "P1").replace("{entry_id}", "e1")
    for name in (
        "user_id",
        "grant_id",
        "fault_id",
        "recall_id",
        "library_id",
        "request_id",
        "configuration_id",
        "facility_id",
    ):
        url = url.replace("{" + name + "}", "1")
    response = shared_client.request(method, url, json={})
    assert response.status_code == 401
    assert error_code(response.json()) == "auth.required"
