"""Every error under the FHIR base (``/api/v1/fhir``) is an OperationOutcome (``application/fhir+json``):
the API's error envelope, whatever raised it (404 included), rewritten with a FHIR issue code."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Final, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartpump.errors import SmartpumpError
from smartpump.server.services.ehr_fhir import operation_outcome

Handler = Callable[[Request, Exception], Awaitable[Response]]
FHIR_PREFIX: Final = "/api/v1/fhir"
FHIR_JSON: Final = "application/fhir+json"
ISSUE_CODES: Final = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    422: "invalid",
    429: "throttled",
}
"""FHIR IssueType per HTTP status (``exception`` for any other)."""


def as_operation_outcome(response: Response) -> Response:
    """The error response rewritten as an OperationOutcome with the same status and headers."""
    try:
        error = json.loads(bytes(response.body))["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = f"http.{response.status_code}", "the request failed"
    outcome = operation_outcome(
        code=ISSUE_CODES.get(response.status_code, "exception"), text=message, error_code=code
    )
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")
    }
    return JSONResponse(outcome, status_code=response.status_code, headers=headers, media_type=FHIR_JSON)


def install_fhir_errors(app: FastAPI) -> None:
    """Wrap the installed error handlers so that FHIR paths answer OperationOutcomes (call it last)."""

    def wrap(original: Handler) -> Handler:
        async def handler(request: Request, exc: Exception) -> Response:
            response = await original(request, exc)
            if request.url.path.startswith(FHIR_PREFIX) and response.status_code >= 400:
                return as_operation_outcome(response)
            return response

        return handler

    for cls in (
        SmartpumpError,
        RequestValidationError,
        StarletteHTTPException,
        IntegrityError,
        DataError,
        Exception,
    ):
        original = cast(Handler | None, app.exception_handlers.get(cls))
        if original is not None:
            app.add_exception_handler(cls, wrap(original))
