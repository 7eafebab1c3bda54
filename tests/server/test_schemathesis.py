"""Property-based API fuzzing (schemathesis, in process): no input makes the server answer 5xx.

Every operation of the app's OpenAPI document gets a bounded number of generated requests, sent by a
user holding every role; the run stays well under a minute per database.
"""

from __future__ import annotations

import warnings
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Ok
from schemathesis.schemas import APIOperation
from starlette.exceptions import StarletteDeprecationWarning

from smartpump.server.auth import Role
from tests.server.conftest import World

EXAMPLES_PER_OPERATION = 12
EXCLUDED = frozenset({"POST /api/v1/auth/logout"})


def _server_errors(operation: Any, headers: dict[str, str]) -> list[str]:
    found: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def probe(case: Any) -> None:
        try:
            response = case.call(headers=headers)
        except Exception as error:  # the in-process client re-raises server exceptions
            if len(found) < 3:
                found.append(f"{operation.method.upper()} {operation.path} raised {error!r:.300}")
            return
        if response.status_code >= 500 and len(found) < 3:
            found.append(
                f"{operation.method.upper()} {operation.path} -> {response.status_code}: "
                f"{case.path_parameters} {case.query} {str(case.body)[:200]}"
            )

    probe()
    return found


def _operation(
    result: Ok[APIOperation[Any, Any, Any, Any]] | Err[InvalidSchema],
) -> APIOperation[Any, Any, Any, Any]:
    """The operation of a parsed schema entry; an entry the schema does not describe fails the test."""
    assert isinstance(result, Ok), result
    return result.ok()


def test_no_generated_request_makes_a_server_error(world: World) -> None:
    facility = world.facility("north")
    world.user(*[(role, None) for role in Role], username="fuzzer")
    headers = world.login("fuzzer")
    world.pump(headers, facility, "P-1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        schema = schemathesis.openapi.from_asgi("/openapi.json", world.app)
        operations = [_operation(result) for result in schema.get_all_operations()]
        errors: list[str] = []
        for operation in operations:
            if f"{operation.method.upper()} {operation.path}" not in EXCLUDED:
                errors.extend(_server_errors(operation, headers))
    assert len(operations) > 50
    assert errors == []
