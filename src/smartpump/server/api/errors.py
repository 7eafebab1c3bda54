"""Every error leaves the API as ``{"error": {"code", "message", "details"}}`` with a fitting status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartpump.errors import LibraryError, SignatureError, SmartpumpError
from smartpump.server.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ThrottledError,
)

logger = logging.getLogger("smartpump.server")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one error envelope."""
    return {"error": {"code": code, "message": message, "details": details if details is not None else []}}


def status_for(error: SmartpumpError) -> int:
    """HTTP status of one of our errors."""
    if isinstance(error, ThrottledError):
        return 429
    if isinstance(error, AuthenticationError):
        return 401
    if isinstance(error, AccessDeniedError):
        return 403
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    if isinstance(error, InvalidInputError | LibraryError | SignatureError):
        return 422
    return 400


async def _smartpump_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SmartpumpError)
    status = status_for(exc)
    details: Any = list(getattr(exc, "details", ()) or getattr(exc, "problems", ()) or ())
    headers: dict[str, str] = {}
    if isinstance(exc, ThrottledError):
        headers["Retry-After"] = str(exc.retry_after_s)
    elif isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(error_body(exc.code, exc.message, details), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": err.get("type"),
        }
        for err in exc.errors()
    ]
    return JSONResponse(error_body("request.invalid", "the request is not valid", details), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {401: "auth.required", 403: "access.denied", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, f"http.{exc.status_code}"
    )
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("integrity error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body("conflict.integrity", "the change conflicts with stored data"), status_code=409
    )


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        error_body("request.unstorable", "a value cannot be stored (NUL character or out-of-range number)"),
        status_code=422,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
    return JSONResponse(error_body("server.error", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into the error envelope."""
    app.add_exception_handler(SmartpumpError, _smartpump_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected_error)
