"""Browser sessions: the bearer token in an HttpOnly SameSite=Strict cookie, CSRF tokens, HTML errors.

Under ``/ui`` a session cookie stands in for the ``Authorization`` header, so pages use the same
role guards as the API. Every form POST carries a CSRF token bound to the session (or, before login,
to a random pre-session cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Final, cast
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from smartpump.errors import SmartpumpError
from smartpump.server.api.deps import PASSWORD_CHANGE_REQUIRED
from smartpump.server.api.errors import status_for
from smartpump.server.errors import AccessDeniedError
from smartpump.server.settings import Settings

UI_PREFIX: Final = "/ui"
SESSION_COOKIE: Final = "sp_session"
PRESESSION_COOKIE: Final = "sp_csrf"
CSRF_FIELD: Final = "csrf"
Handler = Callable[[Request, Exception], Awaitable[Response]]


class CookieAuthMiddleware:
    """Under /ui, present the session cookie to the route guards as a bearer token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add ``Authorization: Bearer <cookie>`` to /ui requests that carry a session and no header."""
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(UI_PREFIX):
            headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
            if not any(name == b"authorization" for name, _ in headers):
                token = _cookie(headers, SESSION_COOKIE)
                if token:
                    scope = {**scope, "headers": [*headers, (b"authorization", f"Bearer {token}".encode())]}
        await self.app(scope, receive, send)


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name and cookie_value:
                    return cookie_value
    return None


def session_token(request: Request) -> str | None:
    """The session cookie's bearer token, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def csrf_token(settings: Settings, request: Request) -> str:
    """The CSRF token forms of this browser session must carry."""
    basis = session_token(request) or request.cookies.get(PRESESSION_COOKIE) or ""
    return csrf_for(settings, basis)


def csrf_for(settings: Settings, basis: str) -> str:
    """HMAC of a session (or pre-session) value under the server secret."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"csrf|" + basis.encode(), hashlib.sha256).hexdigest()


async def verify_csrf(request: Request) -> None:
    """Refuse a form POST whose CSRF token does not match this browser session (403 csrf.invalid)."""
    settings: Settings = request.app.state.smartpump.settings
    basis = session_token(request) or request.cookies.get(PRESESSION_COOKIE)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not basis or not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_for(settings, basis)):
        raise AccessDeniedError(
            "the form's security token is missing or stale: reload the page and try again",
            code="csrf.invalid",
        )


CsrfChecked = Annotated[None, Depends(verify_csrf)]


def new_presession(request: Request) -> str | None:
    """A random pre-session value (basis of the login CSRF token) for a browser with neither cookie."""
    if session_token(request) is None and PRESESSION_COOKIE not in request.cookies:
        nonce = secrets.token_urlsafe(32)
        request.cookies[PRESESSION_COOKIE] = nonce
        return nonce
    return None


def set_presession(request: Request, response: Response, nonce: str) -> None:
    """Store the pre-session value in its cookie."""
    _set(request, response, PRESESSION_COOKIE, nonce, max_age=None)


def start_session(request: Request, response: Response, token: str, max_age_s: int) -> None:
    """Store the bearer token in the session cookie."""
    _set(request, response, SESSION_COOKIE, token, max_age=max_age_s)
    response.delete_cookie(PRESESSION_COOKIE, path=UI_PREFIX)


def end_session(response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=UI_PREFIX, httponly=True, samesite="strict")


def _set(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    settings: Settings = request.app.state.smartpump.settings
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=UI_PREFIX,
        httponly=True,
        samesite="strict",
        secure=settings.is_production or request.url.scheme == "https",
    )


def wants_html(request: Request) -> bool:
    """True for a browser asking for a page under /ui (API clients keep the JSON error envelope)."""
    return request.url.path.startswith(UI_PREFIX) and "text/html" in request.headers.get("accept", "")


def install_html_errors(app: FastAPI, render_error: Callable[[Request, int, str, str], Response]) -> None:
    """Answer page errors as HTML (401 redirects to the login page, a password that must be changed first
    to the password page); API errors are unchanged."""

    def wrap(original: Handler | None, describe: Callable[[Exception], tuple[int, str, str]]) -> Handler:
        async def handler(request: Request, exc: Exception) -> Response:
            if wants_html(request):
                status, code, message = describe(exc)
                if status == 401:
                    target = quote(request.url.path, safe="/")
                    return RedirectResponse(f"{UI_PREFIX}/login?next={target}", status_code=303)
                if code == PASSWORD_CHANGE_REQUIRED:
                    return RedirectResponse(f"{UI_PREFIX}/password", status_code=303)
                return render_error(request, status, code, message)
            assert original is not None
            return await original(request, exc)

        return handler

    def ours(exc: Exception) -> tuple[int, str, str]:
        assert isinstance(exc, SmartpumpError)
        return status_for(exc), exc.code, exc.message

    def invalid(exc: Exception) -> tuple[int, str, str]:
        assert isinstance(exc, RequestValidationError)
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
        return 422, "request.invalid", f"the form is not valid: {fields}"

    def http(exc: Exception) -> tuple[int, str, str]:
        assert isinstance(exc, StarletteHTTPException)
        return exc.status_code, f"http.{exc.status_code}", str(exc.detail)

    for cls, describe in (
        (SmartpumpError, ours),
        (RequestValidationError, invalid),
        (StarletteHTTPException, http),
    ):
        original = cast(Handler | None, app.exception_handlers.get(cls))
        app.add_exception_handler(cls, wrap(original, describe))
